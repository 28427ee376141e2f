/**
 * Fault: the workers' connections are terminated (`pg_terminate_backend`) on
 * the shared server. Only our own sessions are touched: each spawned worker
 * sets an `application_name` unique to this test.
 *
 * A Deno, a Bun and a Node worker (3 claim loops each, poll interval an hour)
 * drain webhook routes to a receiver that answers at once. Each round
 * enqueues a wave; once a fifth of it is delivered, every session of the
 * three workers (route transactions and listeners) is terminated. The
 * workers must warn, keep running, reconnect unaided, re-`LISTEN` and run a
 * catch-up tick (with an hour's interval nothing else would bring out the
 * rest of the wave, or the last wave enqueued after the final round).
 *
 * Figures: lost (must be 0), duplicates (sends whose commit was cut), and
 * recovery time (termination -> first delivery after it).
 *
 * Size: 3 rounds, waves of 600 under CI; 5 rounds of 2,000 in full.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { deathNote, killAll, type Program, RUNTIMES, startWorker } from "./_procs.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { deliveryCounts, enqueueMany, listenerOf, relistened, statusCounts, until } from "./_db.ts";
import { ms, printFigures, size, summary } from "./_figures.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const ROUNDS = size(3, 5);
const WAVE = size(600, 2_000);
const HOUR = 3_600_000;

describe("fault: the workers' connections are terminated", () => {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;
  let receiver: Receiver | undefined;

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    receiver = await startReceiver(() => 204);
  });
  after(async () => {
    await killAll();
    await receiver?.close();
    await env?.cleanup();
  });

  it(`${ROUNDS} rounds: workers on Deno, Bun and Node warn, reconnect (listener too), send all`, {
    timeout: 240_000,
  }, async () => {
    const { store, sql, schema } = env!;
    const rx = receiver!;
    const label = `hf_term_${schema.slice(-8)}`;
    const vars = { DATABASE_URL, HERALD_SCHEMA: schema, HERALD_ALLOW_HOSTS: "127.0.0.1" };
    const flags = ["--interval", String(HOUR), "--concurrency", "3"];
    const workers: Program[] = [];
    for (const runtime of RUNTIMES) workers.push(await startWorker(runtime, flags, vars, label));
    const listeners = new Map<string, number>();
    for (const w of workers) {
      listeners.set(
        w.name,
        await until(`${w.name} listens`, () => listenerOf(sql, w.name, schema)),
      );
    }

    const ids: string[] = [];
    const recoveryMs: number[] = [];
    let terminated = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const before = rx.counts.size;
      ids.push(...await enqueueMany(store, rx.url, WAVE, `wave${r}`));
      await rx.waitForDistinct(before + WAVE / 5);
      const cutAt = performance.now();
      const rows = await sql`
        SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
        WHERE starts_with(application_name, ${label})`;
      terminated += rows.filter((row) => row["done"]).length;
      const next = await rx.waitFor((a) => a.at > cutAt);
      recoveryMs.push(next.at - cutAt);
    }
    const lastAt = performance.now();
    ids.push(...await enqueueMany(store, rx.url, WAVE, "last"));
    await rx.waitForDistinct(ids.length);
    const drainMs = performance.now() - lastAt;
    const counts = await until("every route sent", async () => {
      const c = await statusCounts(sql, schema);
      return (c["sent"] ?? 0) === ids.length ? c : undefined;
    });
    const relisten = await relistened(sql, workers, schema, listeners);
    const warnings = workers.map((w) => w.logs.filter((l) => l.level === "warn").length);
    const { lost, duplicates } = deliveryCounts(ids, rx.counts);
    printFigures("connections_terminated", {
      workers: workers.map((w) => w.runtime),
      rounds: ROUNDS,
      sessions_terminated: terminated,
      routes: ids.length,
      crashed: workers.filter((w) => w.exit !== undefined).map((w) => w.runtime),
      lost,
      duplicates,
      recovery_ms: summary(recoveryMs),
      drain_last_wave_ms: ms(drainMs),
      warnings: Object.fromEntries(workers.map((w, i) => [w.runtime, warnings[i]])),
    });
    for (const w of workers) {
      assert.equal(w.exit, undefined, `the ${w.runtime} worker died:\n${deathNote(w)}`);
    }
    assert.equal(lost, 0);
    assert.deepEqual(counts, { sent: ids.length });
    assert.deepEqual(relisten, [true, true, true], "each worker LISTENs on a new session");
    assert.ok(warnings.some((n) => n > 0), "the lost transactions were logged as warnings");
  });
});
