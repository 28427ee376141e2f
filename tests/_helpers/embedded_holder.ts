/**
 * A second process for the embedded-database tests: opens the data directory
 * given as the first argument, enqueues one route, prints `ready <pid>
 * <routeId>`, and holds the database until its stdin ends (then closes it and
 * prints `closed`) or it is killed.
 */
import process from "node:process";
import { openEmbedded } from "../../embedded.ts";

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: embedded_holder.ts <dataDir>");
const db = await openEmbedded({ dataDir });
await db.store.migrate();
const { routeIds } = await db.store.enqueue({ kind: "held" }, [{
  channel: "log",
  destination: "x",
}]);
process.stdout.write(`ready ${process.pid} ${routeIds[0]}\n`);
process.stdin.resume();
process.stdin.on("end", async () => {
  await db.close();
  process.stdout.write("closed\n");
  process.stdin.pause();
});
