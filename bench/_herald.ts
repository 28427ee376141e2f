/**
 * Herald's side of the benchmark: a real {@link Worker} on a real
 * {@link PostgresStore}, draining a loaded table (throughput), sending
 * through a slow channel, woken by `NOTIFY` (latency) and starting cold.
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
import type { Route } from "../core/route.ts";
import { PostgresStore } from "../store.ts";
import { Worker } from "../worker.ts";
import { capped, sleep } from "./_db.ts";
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
async function countedStore(
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

/** Runs a worker until `routes` routes are sent or `capMs` passes. */
export async function drain(
  db: BenchDb,
  schema: string,
  options: {
    concurrency: number;
    routesPerTransaction: number;
    routesPerTick: number;
    routes: number;
    capMs: number;
    channel: Channel;
    /** Count queries (slower: the driver then captures a stack per query). */
    countQueries?: boolean;
  },
): Promise<DrainRun> {
  const { concurrency, routes } = options;
  const { store, sql, queries } = await countedStore(
    db.url,
    schema,
    concurrency + 1,
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
  });
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
  try {
    const began = performance.now();
    const running = worker.run();
    const run = await capped(allSent, options.capMs, () => void worker.shutdown());
    const seconds = ((run.capped ? performance.now() : finished) - began) / 1000;
    const used = queries();
    await worker.shutdown();
    await running;
    return { routes: sent, seconds, capped: run.capped, queries: used, unsent };
  } finally {
    await worker.shutdown();
    await store.close();
    await sql.end({ timeout: 5 });
  }
}

/** Wake-up latencies of one paced enqueue run, in milliseconds. */
export interface WakeRun {
  /** `await store.enqueue()` resolved -> send started (negative: the send started first). */
  fromResolved: number[];
  /** `store.enqueue()` called -> send started. */
  fromCall: number[];
  /** Routes whose send never started before the cap. */
  missing: number;
  seconds: number;
  capped: boolean;
  queries: number;
}

/**
 * Enqueues `routes` routes one by one at `rate` per second through
 * `store.enqueue` (which NOTIFYs on commit) while a worker with a 60 s poll
 * interval listens; times each route from the enqueue to its send's start.
 */
export async function wakeLatency(
  db: BenchDb,
  schema: string,
  options: {
    concurrency: number;
    routes: number;
    rate: number;
    capMs: number;
    countQueries?: boolean;
  },
): Promise<WakeRun> {
  const { concurrency, routes, rate } = options;
  const sendAt = new Float64Array(routes).fill(NaN);
  const callAt = new Float64Array(routes);
  const resolvedAt = new Float64Array(routes);
  const channel: Channel = {
    send(route: Route) {
      const i = (route.payload as { i?: unknown } | null)?.i;
      if (typeof i === "number") sendAt[i] = performance.now();
      return Promise.resolve();
    },
  };
  const { store, sql, queries, reset } = await countedStore(
    db.url,
    schema,
    concurrency + 1,
    options.countQueries,
  );
  const producer = new PostgresStore({ url: db.url, schema, max: 1 });
  const worker = new Worker({
    store,
    channels: { noop: channel },
    concurrency,
    routesPerTick: 1000,
    interval: 60_000,
    listen: true,
    logger: silentLogger,
  });
  let sent = 0;
  let done!: () => void;
  const allSent = new Promise<void>((resolve) => (done = resolve));
  worker.addEventListener("sent", () => void (++sent === routes && done()));
  const running = worker.run();
  try {
    await producer.getRoute(crypto.randomUUID()); // open the producer's connection
    await sleep(300); // let the listener subscribe and the first (empty) ticks end
    reset();
    const began = performance.now();
    let stop = false;
    const produce = async (): Promise<void> => {
      for (let i = 0; i < routes && !stop; i++) {
        const wait = began + (i * 1000) / rate - performance.now();
        if (wait > 0) await sleep(wait);
        callAt[i] = performance.now();
        await producer.enqueue({ kind: "bench.wake", payload: { i } }, [
          { channel: "noop", destination: "bench" },
        ]);
        resolvedAt[i] = performance.now();
      }
      await allSent;
    };
    const run = await capped(produce(), options.capMs, () => {
      stop = true;
      void worker.shutdown();
    });
    const seconds = (performance.now() - began) / 1000;
    const fromResolved: number[] = [];
    const fromCall: number[] = [];
    let missing = 0;
    for (let i = 0; i < routes; i++) {
      const at = sendAt[i]!;
      if (Number.isNaN(at) || resolvedAt[i] === 0) {
        missing++;
        continue;
      }
      fromResolved.push(at - resolvedAt[i]!);
      fromCall.push(at - callAt[i]!);
    }
    return { fromResolved, fromCall, missing, seconds, capped: run.capped, queries: queries() };
  } finally {
    await worker.shutdown();
    await running;
    await producer.close();
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
