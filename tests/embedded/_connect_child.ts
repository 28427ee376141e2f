/**
 * Another process reaching an embedded database the test process holds
 * (`whenInUse: "connect"`). Arguments: the data directory, then what to do:
 * `enqueue` (enqueue one route in schema `herald_share`, read the stats,
 * print them as one JSON line with the pid it went through) or `hold` (open
 * a transaction that writes a row, print `in-tx`, and wait to be killed).
 * A refusal prints its `code` and `message`.
 */
import process from "node:process";
import { openEmbedded } from "../../embedded.ts";
import type postgres from "postgres";

const [dataDir, mode] = process.argv.slice(2);
if (dataDir === undefined || (mode !== "enqueue" && mode !== "hold")) {
  throw new Error("usage: _connect_child.ts <dataDir> enqueue|hold");
}
const say = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
try {
  const db = await openEmbedded({ dataDir, schema: "herald_share", whenInUse: "connect" });
  if (mode === "enqueue") {
    const { routeIds } = await db.store.enqueue({ kind: "from.another.process" }, [
      { channel: "log", destination: "x" },
    ]);
    const stats = await db.store.stats();
    say({ through: db.throughProcess, routeId: routeIds[0], queued: stats.byStatus.queued });
    await db.close();
  } else {
    await (db.sql as postgres.Sql).begin(async (tx) => {
      await tx.unsafe("INSERT INTO herald_share_leftover VALUES (1)");
      say("in-tx");
      await new Promise(() => {}); // until killed
    });
  }
} catch (err) {
  const e = err as { code?: unknown; message?: unknown };
  say({ code: e.code, message: e.message });
}
