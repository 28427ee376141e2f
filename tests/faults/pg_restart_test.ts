/**
 * Fault: Postgres restarts mid-run (a private cluster: this test stops the
 * server, so it never uses the shared one).
 *
 * A Deno, a Bun and a Node worker (3 claim loops each) drain webhook routes
 * to a receiver that answers at once, so most of the time goes to queries and
 * a restart lands while claims and finalises are in flight. Each wave
 * enqueues routes; once a fifth of the wave is delivered, `pg_ctl restart -m
 * fast` terminates every session. The workers must log warnings (their route
 * transactions are lost), keep running, reconnect unaided, re-`LISTEN` and
 * run a catch-up tick: the poll interval is an hour, so only the listener's
 * reconnect brings out what was left, and only a working `LISTEN` brings out
 * the next wave. Every route must end `sent`.
 *
 * Figures: lost (must be 0), duplicates (sends that reached the receiver but
 * whose commit was cut by the restart), the restart's own duration, recovery
 * (server accepting connections again -> first delivery after it) and drain
 * time, per restart.
 *
 * Size: 3 restarts, waves of 600 routes under CI; 5 restarts, waves of 2,000
 * with HERALD_FAULTS_FULL=1.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { PostgresStore } from "../../store.ts";
import { type Cluster, startCluster } from "./_cluster.ts";
import { deathNote, killAll, type Program, RUNTIMES, startWorker } from "./_procs.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { deliveryCounts, enqueueMany, listenerOf, relistened, statusCounts, until } from "./_db.ts";
import { ms, printFigures, size, summary } from "./_figures.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const SCHEMA = "herald_faults";
const RESTARTS = size(3, 5);
const WAVE = size(600, 2_000);
const HOUR = 3_600_000;

describe("fault: Postgres restarts mid-run (private cluster)", () => {
  let cluster: Cluster | undefined;
  let store: PostgresStore | undefined;
  let sql: postgres.Sql | undefined;
  let receiver: Receiver | undefined;

  before(async () => {
    cluster = await startCluster();
    store = new PostgresStore({ url: cluster.url, schema: SCHEMA, max: 2 });
    await store.migrate();
    // No type fetch, as in Herald's own handles: a fresh connection's type
    // fetch cut by the restart rejects where nothing awaits it.
    sql = postgres(cluster.url, { max: 2, onnotice: () => {}, fetch_types: false });
    receiver = await startReceiver(() => 204);
  });
  after(async () => {
    await killAll();
    await receiver?.close();
    await sql?.end({ timeout: 1 });
    await store?.close();
    await cluster?.destroy();
  });

  it(
    `${RESTARTS} restarts: workers on Deno, Bun and Node warn, reconnect (listener too), send all`,
    {
      timeout: 240_000,
    },
    async () => {
      const rx = receiver!;
      const vars = {
        DATABASE_URL: cluster!.url,
        HERALD_SCHEMA: SCHEMA,
        HERALD_ALLOW_HOSTS: "127.0.0.1",
      };
      const flags = ["--interval", String(HOUR), "--concurrency", "3"];
      const workers: Program[] = [];
      for (const runtime of RUNTIMES) workers.push(await startWorker(runtime, flags, vars));
      const listeners = new Map<string, number>();
      for (const w of workers) {
        listeners.set(
          w.name,
          await until(`${w.name} listens`, () => listenerOf(sql!, w.name, SCHEMA)),
        );
      }
      const alive = (): void => {
        for (const w of workers) {
          assert.equal(w.exit, undefined, `the ${w.runtime} worker died:\n${deathNote(w)}`);
        }
      };

      const ids: string[] = [];
      const restartMs: number[] = [];
      const recoveryMs: number[] = [];
      for (let r = 0; r < RESTARTS; r++) {
        const before = rx.counts.size;
        ids.push(...await enqueueMany(store!, rx.url, WAVE, `wave${r}`));
        await rx.waitForDistinct(before + WAVE / 5);
        const restartAt = performance.now();
        await cluster!.restart();
        const upAt = performance.now();
        restartMs.push(upAt - restartAt);
        const next = await rx.waitFor((a) => a.at > upAt);
        recoveryMs.push(next.at - upAt);
      }
      // Written after the last restart: only a re-established LISTEN (or an hour's poll) finds them.
      const lastUp = performance.now();
      ids.push(...await enqueueMany(store!, rx.url, WAVE, "last"));
      await rx.waitForDistinct(ids.length);
      const drainMs = performance.now() - lastUp;
      const counts = await until("every route sent", async () => {
        const c = await statusCounts(sql!, SCHEMA);
        return (c["sent"] ?? 0) === ids.length ? c : undefined;
      });

      const relisten = await relistened(sql!, workers, SCHEMA, listeners);
      const warnings = workers.map((w) => w.logs.filter((l) => l.level === "warn").length);
      const { lost, duplicates } = deliveryCounts(ids, rx.counts);
      printFigures("pg_restart", {
        workers: workers.map((w) => w.runtime),
        restarts: RESTARTS,
        routes: ids.length,
        crashed: workers.filter((w) => w.exit !== undefined).map((w) => w.runtime),
        lost,
        duplicates,
        restart_ms: summary(restartMs),
        recovery_ms: summary(recoveryMs),
        drain_last_wave_ms: ms(drainMs),
        warnings: Object.fromEntries(workers.map((w, i) => [w.runtime, warnings[i]])),
      });
      alive();
      assert.equal(lost, 0);
      assert.deepEqual(counts, { sent: ids.length });
      assert.deepEqual(relisten, [true, true, true], "each worker LISTENs on a new session");
      assert.ok(warnings.some((n) => n > 0), "the lost transactions were logged as warnings");
      for (const w of workers) {
        const errors = w.logs.filter((l) => l.level === "error");
        assert.equal(errors.length, 0, `${w.runtime}: no errors: ${JSON.stringify(errors)}`);
      }
    },
  );
});
