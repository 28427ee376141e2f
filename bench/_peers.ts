/**
 * Herald's peers on the same Postgres, graphile-worker and pg-boss, each in a
 * fresh schema of its own, so their rows sit beside Herald's in one run. Node
 * only. Throughput: jobs loaded first, the clock runs from starting the worker
 * until the peer's own table says every job is done. Latency: the worker runs
 * first, jobs are added one at a time at a fixed rate, and a job's latency
 * runs from just before the add call to the start of its handler.
 *
 * @module
 */
import { performance } from "node:perf_hooks";
import process from "node:process";
import { setTimeout as nodeTimeout } from "node:timers";
import postgres from "postgres";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import type { Runner, RunnerOptions } from "graphile-worker";
import { PgBoss } from "pg-boss";

/**
 * A throughput run: `jobs` completed (all of them unless `capped`: `capMs` passed first) in
 * `seconds` from starting the worker; `note` names the peer and the options it ran with.
 */
export interface PeerThroughput {
  jobs: number;
  seconds: number;
  jobsPerS: number;
  capped: boolean;
  note: string;
}

/** Milliseconds from just before the add call to the handler's start, over `jobs` (no warm-up). */
export interface PeerLatency {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  jobs: number;
}

const WARMUP = 20;
const CHUNK = 2000;

/** graphile-worker's fastest: the configuration on its documentation's performance page. */
const GW_FASTEST: RunnerOptions = {
  concurrency: 24,
  maxPoolSize: 25,
  preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
};
/** pg-boss's batch mode: 100 jobs a fetch, fetching again at once while fetches come back full. */
const BOSS_BATCH = { batchSize: 100, burstWhenBatchFull: true };

// graphile-worker logs every completed job at "info"; only its warnings and errors are shown.
const quiet = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[graphile-worker] ${message}`);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True when `done` resolves, false after `ms` (an unref'd timer: it never holds the process). */
const within = (done: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([
    done.then(() => true),
    new Promise<false>((r) => nodeTimeout(r, Math.max(0, ms), false).unref()),
  ]);

/** A counter whose `all` promise resolves once `bump` has added up to `target`. */
function counter(target: number): { bump: (n?: number) => void; all: Promise<void> } {
  let seen = 0;
  let resolve = (): void => {};
  const all = new Promise<void>((r) => (resolve = r));
  const bump = (n = 1): void => {
    seen += n;
    if (seen >= target) resolve();
  };
  return { bump, all };
}

/**
 * What {@link inSchema} hands its body: a unique schema name (the peer creates it), a connection
 * of ours for counting and the drop, and `closing` to register a close (a worker's `stop`).
 */
interface Scope {
  schema: string;
  admin: postgres.Sql;
  closing: (close: () => Promise<unknown>) => void;
}

/**
 * Runs `body` on a fresh schema `peer_<peer>_<random>`, then, also when it fails, runs the
 * registered closes (last first; a failing one is reported, not thrown), drops the schema and
 * closes the admin connection.
 */
async function inSchema<T>(url: string, peer: string, body: (s: Scope) => Promise<T>): Promise<T> {
  const schema = `peer_${peer}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  const closes: (() => Promise<unknown>)[] = [];
  try {
    return await body({ schema, admin, closing: (c) => closes.unshift(c) });
  } finally {
    for (const close of closes) {
      await close().catch((e) => console.error(`[peers] closing ${schema}: ${e}`));
    }
    try {
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await admin.end({ timeout: 5 });
    }
  }
}

/**
 * The throughput clock: waits until the handlers have run `jobs` times, then reads the peer's
 * table (`completed`) every 5 ms until it agrees, all within `capMs` of `t0`.
 */
async function timeDrain(
  t0: number,
  jobs: number,
  capMs: number,
  handled: Promise<void>,
  completed: () => Promise<number>,
): Promise<Omit<PeerThroughput, "note">> {
  await within(handled, t0 + capMs - performance.now());
  let done = await completed();
  while (done < jobs && performance.now() - t0 < capMs) {
    await sleep(5);
    done = await completed();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { jobs: done, seconds, jobsPerS: done / seconds, capped: done < jobs };
}

/** A started pg-boss in `schema` with queue `queue` created; stopped by `scope`'s closes. */
async function startBoss(url: string, scope: Scope, queue: string): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: url, schema: scope.schema });
  boss.on("error", (e) => console.error(`[pg-boss] ${e.message}`));
  scope.closing(() => boss.stop({ graceful: false }));
  await boss.start();
  await boss.createQueue(queue);
  return boss;
}

/**
 * graphile-worker on `scope`'s schema with one task, `t`, quiet, no signal handlers; `scope` stops
 * it. Its NOTIFY channels are database-wide: a graphile-worker migrating a fresh schema on this
 * database (a concurrent run of this module) shuts every running one down, setting exit code 57.
 * `guard(p)` races `p` with that, turned into an error (and the exit code put back).
 */
async function runGraphile(
  url: string,
  scope: Scope,
  options: RunnerOptions,
  task: (payload: unknown) => void,
): Promise<{ runner: Runner; guard: <T>(p: Promise<T>) => Promise<T> }> {
  const exitCode = process.exitCode;
  const taskList = { t: task };
  const base = { connectionString: url, schema: scope.schema, logger: quiet, taskList };
  const runner = await run({ ...options, ...base, noHandleSignals: true });
  let state: "running" | "stopping" | "died" = "running";
  scope.closing(async () => {
    if (state !== "running") return;
    state = "stopping";
    await runner.stop();
  });
  const died = runner.promise.finally(() => {
    if (state === "stopping") return;
    state = "died";
    if (process.exitCode === 57) process.exitCode = exitCode;
    throw new Error("graphile-worker shut down mid-run (did another one migrate on this db?)");
  });
  const guard = <T>(p: Promise<T>): Promise<T> => {
    const raced = Promise.race([p, died as Promise<never>]);
    raced.catch(() => {}); // Marked handled: a caller may await it only later.
    return raced;
  };
  return { runner, guard };
}

/**
 * Adds `WARMUP + jobs` jobs one at a time, job i at `start + i * 1000 / rate`, each add awaited,
 * noting `performance.now()` just before each call; the handlers fill in `startedAt[i]`. Resolves
 * with the latencies (warm-up left out) once every handler has started.
 */
async function paced(
  opts: { ratePerS: number; jobs: number },
  add: (i: number) => Promise<unknown>,
  started: { startedAt: number[]; all: Promise<void> },
): Promise<PeerLatency> {
  const total = WARMUP + opts.jobs;
  const calledAt: number[] = new Array(total);
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / opts.ratePerS - performance.now();
    if (wait > 0) await sleep(wait);
    calledAt[i] = performance.now();
    await add(i);
  }
  // Generous: the whole stream again plus 30 s, so a stalled peer fails instead of hanging.
  const waitMs = 30_000 + (total * 1000) / opts.ratePerS;
  if (!(await within(started.all, waitMs))) {
    const seen = started.startedAt.filter((t) => t !== undefined).length;
    throw new Error(`only ${seen} of ${total} handlers started within ${waitMs} ms`);
  }
  const lat: number[] = [];
  for (let i = WARMUP; i < total; i++) lat.push(started.startedAt[i]! - calledAt[i]!);
  lat.sort((a, b) => a - b);
  const at = (q: number): number => lat[Math.max(0, Math.ceil(q * lat.length) - 1)] ?? NaN;
  return { p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1), jobs: lat.length };
}

/**
 * graphile-worker's throughput on `opts.jobs` no-op jobs, added first (`WorkerUtils.migrate()` into
 * a fresh schema, then `addJobs` in chunks of 2,000), timed from calling `run()` until the jobs
 * table is empty (a completed job is deleted) or `opts.capMs` passes; the schema is dropped
 * afterwards, also on failure. `"defaults"`: `concurrency: 10`, all else default. `"fastest"`: its
 * docs' performance configuration, `concurrency: 24`, `maxPoolSize: 25`,
 * `preset.worker.localQueue: { size: 500 }`, `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`.
 */
export async function graphileThroughput(
  url: string,
  opts: { jobs: number; mode: "defaults" | "fastest"; capMs: number },
): Promise<PeerThroughput> {
  return await inSchema(url, "gw", async (scope) => {
    const { schema, admin } = scope;
    const utils = await makeWorkerUtils({ connectionString: url, schema, logger: quiet });
    try {
      await utils.migrate();
      for (let from = 0; from < opts.jobs; from += CHUNK) {
        const n = Math.min(CHUNK, opts.jobs - from);
        await utils.addJobs(
          Array.from({ length: n }, (_, k) => ({ identifier: "t", payload: { i: from + k } })),
        );
      }
    } finally {
      await utils.release();
    }
    const options = opts.mode === "fastest" ? GW_FASTEST : { concurrency: 10 };
    const { bump, all } = counter(opts.jobs);
    const t0 = performance.now();
    const { guard } = await runGraphile(url, scope, options, () => bump());
    const completed = async (): Promise<number> => {
      const [row] = await admin.unsafe(`SELECT count(*)::int AS n FROM "${schema}"._private_jobs`);
      return opts.jobs - (row?.n as number);
    };
    const r = await timeDrain(t0, opts.jobs, opts.capMs, guard(all), completed);
    const note = `graphile-worker 0.18 run(${JSON.stringify(options)}), other options default;` +
      ` timed from calling run()`;
    return { ...r, note };
  });
}

/**
 * pg-boss's throughput on `opts.jobs` jobs of one queue: `start()` installs it into a fresh schema,
 * `createQueue` and `insert` (chunks of 2,000) load it, then the clock runs from calling `work()`
 * until every job is `completed` or `opts.capMs` passes; then `stop({ graceful: false })` and the
 * schema dropped, also on failure. `"defaults"`: `work(queue, {}, handler)`, one worker taking one
 * job a fetch and waiting the 2 s poll between fetches, so about 0.5 jobs/s: expect `capped`.
 * `"batch"`: `batchSize: 100`, `burstWhenBatchFull: true` (fetch again at once after a full batch).
 */
export async function pgBossThroughput(
  url: string,
  opts: { jobs: number; mode: "defaults" | "batch"; capMs: number },
): Promise<PeerThroughput> {
  return await inSchema(url, "boss", async (scope) => {
    const boss = await startBoss(url, scope, "noop");
    for (let from = 0; from < opts.jobs; from += CHUNK) {
      const n = Math.min(CHUNK, opts.jobs - from);
      await boss.insert("noop", Array.from({ length: n }, (_, k) => ({ data: { i: from + k } })));
    }
    const workOptions = opts.mode === "batch" ? BOSS_BATCH : {};
    const { bump, all } = counter(opts.jobs);
    const t0 = performance.now();
    await boss.work("noop", workOptions, (jobs) => Promise.resolve(bump(jobs.length)));
    const completed = async (): Promise<number> => {
      const [row] = await scope.admin.unsafe(`SELECT count(*)::int AS n FROM "${scope.schema}".job
        WHERE name = 'noop' AND state = 'completed'`);
      return row?.n as number;
    };
    const r = await timeDrain(t0, opts.jobs, opts.capMs, all, completed);
    const note = `pg-boss 12 work(${JSON.stringify(workOptions)}), other options default ` +
      `(localConcurrency 1, pollingIntervalSeconds 2); timed from calling work()`;
    return { ...r, note };
  });
}

/**
 * graphile-worker's pick-up latency: `run()` with `concurrency: 10`, defaults otherwise (it LISTENs
 * for new jobs), then `runner.addJob` one job at a time at `opts.ratePerS`, 20 warm-up jobs first
 * (not counted). Latency: the task handler's start minus the moment just before `addJob` was
 * called. The schema is dropped afterwards, also on failure.
 */
export async function graphileLatency(
  url: string,
  opts: { ratePerS: number; jobs: number },
): Promise<PeerLatency> {
  return await inSchema(url, "gw", async (scope) => {
    const startedAt: number[] = [];
    const { bump, all } = counter(WARMUP + opts.jobs);
    const { runner, guard } = await runGraphile(url, scope, { concurrency: 10 }, (payload) => {
      startedAt[(payload as { i: number }).i] = performance.now();
      bump();
    });
    const add = (i: number) => guard(runner.addJob("t", { i }));
    return await paced(opts, add, { startedAt, all: guard(all) });
  });
}

/**
 * pg-boss's pick-up latency: `work()` on a fresh queue, then `send` one job at a time at
 * `opts.ratePerS`, 20 warm-up jobs first (not counted). pg-boss polls (every 2 s by default, kept;
 * its opt-in LISTEN/NOTIFY stays off). Its default worker takes one job a poll (0.5 jobs/s), which
 * no stream keeps up with, so it fetches as `"batch"` throughput does (`batchSize: 100`,
 * `burstWhenBatchFull: true`). Latency: the handler's start (one time for every job of a batch)
 * minus the moment just before `send` was called. The schema is dropped afterwards.
 */
export async function pgBossLatency(
  url: string,
  opts: { ratePerS: number; jobs: number },
): Promise<PeerLatency> {
  return await inSchema(url, "boss", async (scope) => {
    const boss = await startBoss(url, scope, "lat");
    const startedAt: number[] = [];
    const { bump, all } = counter(WARMUP + opts.jobs);
    await boss.work<{ i: number }>("lat", BOSS_BATCH, (jobs) => {
      const now = performance.now();
      for (const job of jobs) startedAt[job.data.i] = now;
      return Promise.resolve(bump(jobs.length));
    });
    return await paced(opts, (i) => boss.send("lat", { i }), { startedAt, all });
  });
}
