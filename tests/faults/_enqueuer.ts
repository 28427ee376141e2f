/**
 * The failover test's application, in a process of its own as a real one
 * would be: enqueues one webhook route after another until SIGTERM, printing
 * one JSON line per enqueue (`{"ok": routeId}` or `{"failed": true}`), with
 * the program's guard installed (the driver can throw outside any promise
 * when its server crashes; see cli/_guard.ts).
 *
 * Environment: DATABASE_URL (both hosts), HERALD_SCHEMA, TARGET (receiver URL).
 *
 * @module
 */
import process from "node:process";
import { PostgresStore } from "../../store.ts";
import { guardUncaught } from "../../cli/_guard.ts";
import { jsonLogger } from "../../observe/logger.ts";
import { sleep } from "../../core/_async.ts";

const url = process.env["DATABASE_URL"]!;
guardUncaught(jsonLogger(), [url]);
const store = new PostgresStore({ url, schema: process.env["HERALD_SCHEMA"]!, max: 2 });
let running = true;
process.on("SIGTERM", () => (running = false));
for (let i = 0; running; i++) {
  try {
    const { routeIds } = await store.enqueue({ kind: "fault.failover" }, [
      { channel: "webhook", destination: `${process.env["TARGET"]}/fo/${i}` },
    ]);
    console.log(JSON.stringify({ ok: routeIds[0] }));
  } catch {
    console.log(JSON.stringify({ failed: true })); // rejected: never counted as done
  }
  await sleep(2);
}
await store.close();
