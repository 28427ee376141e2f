/**
 * Fault: the connection under a route's transaction is cut while its send
 * is in flight (`pg_terminate_backend`, on the shared server, this test's
 * own sessions only). The driver fails the transaction at once while the
 * send goes on; the worker must wait for the send's outcome and record it in
 * a transaction of its own, so the route is neither lost nor sent again.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "../../worker.ts";
import { PostgresStore } from "../../store.ts";
import { DATABASE_URL, useFreshStore } from "../_helpers/pg.ts";
import { recordingLogger, scriptedChannel } from "../_helpers/kit.ts";
import { until } from "./_db.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("fault: the route transaction's connection is cut mid-send", () => {
  const env = useFreshStore();

  it("the send's outcome is salvaged once it ends; the route is not sent again", {
    timeout: 60_000,
  }, async () => {
    const name = `herald_cut_${crypto.randomUUID().slice(0, 8)}`;
    const store = new PostgresStore({
      url: `${DATABASE_URL}?application_name=${name}`,
      schema: env().schema,
      max: 2,
    });
    try {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let started!: () => void;
      const inFlight = new Promise<void>((resolve) => (started = resolve));
      const channel = scriptedChannel(async (_route, _signal, call) => {
        if (call === 1) {
          started();
          await released; // the send outlives its transaction
        }
      });
      const { logger, lines } = recordingLogger();
      const worker = new Worker({ store, channels: { log: channel }, logger });
      const { routeIds: [id] } = await env().store.enqueue({ kind: "k" }, [{
        channel: "log",
        destination: "x",
      }]);
      const ticking = worker.tick();
      await inFlight;
      const { sql } = env();
      const [cut] = await sql`
        SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
        WHERE application_name = ${name} AND backend_xid IS NOT NULL`;
      assert.equal(cut?.["done"], true, "the route transaction's session was cut");
      release();
      assert.equal(await ticking, 1);
      const route = await until("the outcome is recorded", async () => {
        const r = await env().store.getRoute(id!);
        return r?.status === "sent" ? r : undefined;
      });
      assert.equal(route.attempts, 1);
      assert.deepEqual((await env().store.attempts(id!)).map((a) => a.outcome), ["sent"]);
      assert.equal(await worker.tick(), 0, "nothing left to send");
      assert.equal(channel.calls.length, 1, "sent once");
      assert.ok(lines.some((l) => /rolled back; the tick goes on/.test(l.msg)));
    } finally {
      await store.close();
    }
  });
});
