/**
 * Herald's side of the benchmark: a real {@link Worker} on a real
 * {@link PostgresStore}, draining a loaded table (throughput), sending
 * through a slow channel and starting cold. The wake-up run (woken by
 * `NOTIFY`, timed per route) is bench/_wake.ts, on this file's counted
 * store and send counter.
 *
 * The store gets its own `postgres` handle, built with the options
 * `PostgresStore` uses for a URL plus a `debug` hook, so each row can report
 * how many queries (round trips, unless pipelined) a route cost.
 *
 * @module
 */
import postgres from "postgres";
import type { Channel } from "../channels/channel.ts";
import { silentLogger } from "../observe/logger.ts";
import { PostgresStore } from "../store.ts";
import { Worker } from "../worker.ts";
import { capped } from "./_db.ts";
import type { BenchDb } from "./_db.ts";
import { percentile } from "./_report.ts";

/** A channel that does nothing. */
export const noopChannel: Channel = { send: () => Promise.resolve() };

/** A channel whose every send takes `ms` (a timer, no CPU). */
export function slowChannel(ms: number): Channel {
  return { send: () => new Promise<void>((resolve) => setTimeout(resolve, ms)) };
}

/** How one drain went. */
export interface DrainRun {
  routes: number;
  seconds: number;
  capped: boolean;
  queries: number;
  /** Routes that ended as `retry` or `failed`: should be 0. */
  unsent: number;
}

/** A store on its own counted connection pool, warmed to `max` connections. */
export async function countedStore(
  url: string,
  schema: string,
  max: number,
  count = false,
): Promise<{ store: PostgresStore; sql: postgres.Sql; queries: () => number; reset(): void }> {
  let queries = 0;
  // The options PostgresStore itself uses for a URL. The driver's `debug` hook
  // counts queries but also captures a stack per query, so timed runs go without.
  const sql = postgres(url, {
    max,
    onnotice: () => {},
    connection: { application_name: "herald" },
    ...(count ? { debug: () => void queries++ } : {}),
  });
  await Promise.all(Array.from({ length: max }, () => sql`SELECT pg_sleep(0.01)`));
  queries = 0;
  const store = new PostgresStore({ sql, schema });
  return { store, sql, queries: () => queries, reset: () => void (queries = 0) };
}

/** What {@link drain} runs. */
export interface DrainOptions {
  concurrency: number;
  routesPerTransaction: number;
  routesPerTick: number;
  routes: number;
  capMs: number;
  channel: Channel;
  /** Count queries (slower: the driver then captures a stack per query). */
  countQueries?: boolean;
  /** `false`: Herald's spans off (the `tracing` rows); default the API's tracer. */
  tracer?: false;
}

/** A worker's outcomes so far; `allSent` resolves at the `routes`th `sent` event. */
export interface Sends {
  allSent: Promise<void>;
  sent(): number;
  /** Routes that ended as `retry` or `failed`. */
  unsent(): number;
  /** `performance.now()` at the `routes`th `sent`, 0 before. */
  finished(): number;
}

/** Counts `worker`'s outcomes; listens before the worker runs, so none is missed. */
export function countSends(worker: Worker, routes: number): Sends {
  let sent = 0;
  let unsent = 0;
  let finished = 0;
  let done!: () => void;
  const allSent = new Promise<void>((resolve) => (done = resolve));
  worker.addEventListener("sent", () => {
    if (++sent === routes) {
      finished = performance.now();
      done();
    }
  });
  const notSent = (): void => void unsent++;
  worker.addEventListener("retry", notSent);
  worker.addEventListener("failed", notSent);
  return { allSent, sent: () => sent, unsent: () => unsent, finished: () => finished };
}

/** Runs a worker until `routes` routes are sent or `capMs` passes. */
export async function drain(
  db: BenchDb,
  schema: string,
  options: DrainOptions,
): Promise<DrainRun> {
  const { concurrency, routes } = options;
  const { store, sql, queries } = await countedStore(
    db.url,
    schema,
    // As the CLI sizes it: in batch mode a loop's next batch claims while the last commits.
    concurrency * (options.routesPerTransaction > 1 ? 2 : 1) + 1,
    options.countQueries,
  );
  const worker = new Worker({
    store,
    channels: { noop: options.channel },
    concurrency,
    routesPerTransaction: options.routesPerTransaction,
    routesPerTick: options.routesPerTick,
    interval: 60_000,
    listen: false,
    logger: silentLogger,
    ...(options.tracer === false ? { tracer: false as const } : {}),
  });
  const sends = countSends(worker, routes);
  try {
    const began = performance.now();
    const running = worker.run();
    const run = await capped(sends.allSent, options.capMs, () => void worker.shutdown());
    const seconds = ((run.capped ? performance.now() : sends.finished()) - began) / 1000;
    const used = queries();
    await worker.shutdown();
    await running;
    return {
      routes: sends.sent(),
      seconds,
      capped: run.capped,
      queries: used,
      unsent: sends.unsent(),
    };
  } finally {
    await worker.shutdown();
    await store.close();
    await sql.end({ timeout: 5 });
  }
}

/**
 * `new Worker` + `run()` on a cold store with routes already queued, to the
 * first `claimed` event; repeated `times` times, in milliseconds.
 */
export async function startToFirstClaim(
  db: BenchDb,
  schema: string,
  options: { concurrency: number; times: number; capMs: number },
): Promise<number[]> {
  const took: number[] = [];
  for (let n = 0; n < options.times; n++) {
    const store = new PostgresStore({ url: db.url, schema, max: options.concurrency + 1 });
    try {
      const began = performance.now();
      const worker = new Worker({
        store,
        channels: { noop: noopChannel },
        concurrency: options.concurrency,
        interval: 60_000,
        logger: silentLogger,
      });
      let claimedAt = 0;
      const claimed = new Promise<void>((resolve) => {
        worker.addEventListener("claimed", () => {
          if (claimedAt === 0) claimedAt = performance.now();
          void worker.shutdown();
          resolve();
        }, { once: true });
      });
      const running = worker.run();
      const run = await capped(claimed, options.capMs, () => void worker.shutdown());
      await worker.shutdown();
      await running;
      if (!run.capped) took.push(claimedAt - began);
    } finally {
      await store.close();
    }
  }
  return took;
}

/** p50, p99 and max of `values`, clamping negatives to 0 when `clamp`. */
export function summary(
  values: readonly number[],
  clamp = false,
): { p50_ms: number; p99_ms: number; max_ms: number } {
  const v = clamp ? values.map((x) => Math.max(0, x)) : values;
  return {
    p50_ms: percentile(v, 50),
    p99_ms: percentile(v, 99),
    max_ms: v.length === 0 ? 0 : Math.max(...v),
  };
}
