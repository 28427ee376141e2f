/**
 * A child process for the embedded database's error tests: opens the data
 * directory given as the first argument, closes it, and prints one JSON line,
 * `{"ok":true}` or the error's `code`, `name`, `field` and `message`.
 * `_conditions.ts` runs it, as another user where the test needs one.
 */
import process from "node:process";
import { openEmbedded } from "../../embedded.ts";

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: _open_child.ts <dataDir>");
try {
  const db = await openEmbedded({ dataDir });
  await db.close();
  process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
} catch (err) {
  const e = err as { code?: unknown; name?: unknown; field?: unknown; message?: unknown };
  process.stdout.write(
    `${JSON.stringify({ code: e.code, name: e.name, field: e.field, message: e.message })}\n`,
  );
}
