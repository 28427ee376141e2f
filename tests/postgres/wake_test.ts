/**
 * Wake-ups on a real database: LISTEN/NOTIFY brings a sleeping worker to a new
 * route at once, and a listener that loses its connection catches up.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "../../worker.ts";
import { silentLogger } from "../../observe/logger.ts";
import postgres from "postgres";
import { PostgresStore, wakeChannel } from "../../store.ts";
import { DATABASE_URL, useFreshStore } from "../_helpers/pg.ts";
import { nextEvent, scriptedChannel } from "../_helpers/kit.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const HOUR = 3_600_000;

describe("wake-ups on Postgres", () => {
  const env = useFreshStore();

  // The worker's own pool, named, so its listener's session can be told apart
  // from those of tests running alongside.
  const appName = `herald_wake_${crypto.randomUUID().slice(0, 8)}`;
  let workerSql: postgres.Sql;
  let store: PostgresStore;
  before(() => {
    workerSql = postgres(DATABASE_URL, {
      max: 2,
      onnotice: () => {},
      fetch_types: false, // as Herald's own: its listener's connection is cut below
      connection: { application_name: appName },
    });
    store = new PostgresStore({ sql: workerSql, schema: env().schema });
  });
  after(async () => {
    await workerSql.end({ timeout: 5 });
  });

  function startWorker(): { worker: Worker; stop: AbortController; running: Promise<void> } {
    const worker = new Worker({
      store,
      channels: { log: scriptedChannel(() => Promise.resolve()) },
      interval: HOUR,
      logger: silentLogger,
    });
    const stop = new AbortController();
    return { worker, stop, running: worker.run(stop.signal) };
  }

  /** Resolves once the worker's LISTEN is in place. */
  async function listenerPid(): Promise<number> {
    for (;;) {
      const rows = await env().sql`
        SELECT pid FROM pg_stat_activity
        WHERE application_name = ${appName} AND query LIKE 'listen %' AND state = 'idle'`;
      if (rows[0]) return rows[0]["pid"] as number;
      await new Promise((r) => setImmediate(r));
    }
  }

  it("a route enqueued while the worker waits on a long interval is sent at once", async () => {
    const { worker, stop, running } = startWorker();
    try {
      await listenerPid();
      const sent = nextEvent<{ routeId: string }>(worker, "sent");
      const { routeIds } = await env().store.enqueue({ kind: "k" }, [{
        channel: "log",
        destination: "x",
      }]);
      assert.equal((await sent).routeId, routeIds[0]);
    } finally {
      stop.abort();
      await running;
    }
  });

  it("after the listener's connection is cut, it reconnects and runs a catch-up tick", async () => {
    const { worker, stop, running } = startWorker();
    try {
      const pid = await listenerPid();
      // A route written without a notification, as if announced while the listener was away.
      const routeId = crypto.randomUUID();
      const notificationId = crypto.randomUUID();
      const s = env().sql(env().schema);
      await env().sql`INSERT INTO ${s}.notifications (id, kind) VALUES (${notificationId}, 'k')`;
      await env().sql`
        INSERT INTO ${s}.notification_routes (route_id, notification_id, channel, destination)
        VALUES (${routeId}, ${notificationId}, 'log', 'x')`;
      const sent = nextEvent<{ routeId: string }>(worker, "sent");
      await env().sql`SELECT pg_terminate_backend(${pid})`;
      assert.equal((await sent).routeId, routeId);
      assert.notEqual(await listenerPid(), pid, "listening again on a new connection");
    } finally {
      stop.abort();
      await running;
    }
  });

  it("a subscription that heard the channel since its last check sends no probe of its own", async () => {
    const { sql, schema, store } = env();
    // A bystander on the wake-up channel sees every probe sent on it; a marker on
    // a channel of its own (same session: one queue, in commit order) tells when
    // every NOTIFY committed before it has arrived, and no subscription hears it.
    const probes: string[] = [];
    const markers = new Map<string, () => void>();
    const markerChannel = `${wakeChannel(schema)}_marker`;
    const bystander = await sql.listen(wakeChannel(schema), (payload) => {
      if (payload.startsWith("probe:")) probes.push(payload);
    });
    const marking = await sql.listen(markerChannel, (payload) => markers.get(payload)?.());
    const drained = async (): Promise<void> => {
      const marker = crypto.randomUUID();
      const seen = new Promise<void>((resolve) => markers.set(marker, resolve));
      await sql`SELECT pg_notify(${markerChannel}, ${marker})`;
      await seen;
    };
    let notified!: () => void;
    const notify = new Promise<void>((resolve) => (notified = resolve));
    const sub = await store.listen({ onNotify: () => notified(), onConnect: () => {} });
    try {
      await store.enqueue({ kind: "k" }, [{ channel: "log", destination: "x" }]);
      await notify;
      assert.equal(await sub.alive!(30_000), true, "the enqueue's notification was heard");
      await drained();
      assert.equal(probes.length, 0, "no probe: the enqueue proved the channel is heard");

      // Quiet since the last check: it probes, and hears its own probe.
      assert.equal(await sub.alive!(30_000), true);
      await drained();
      assert.equal(probes.length, 1, "one probe of its own");
    } finally {
      await sub.close();
      await bystander.unlisten();
      await marking.unlisten();
    }
  });
});
