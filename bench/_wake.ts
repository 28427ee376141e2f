/**
 * Wake-up latency: routes enqueued one at a time through `store.enqueue`
 * (which NOTIFYs on commit) while a worker with a 60 s poll interval
 * listens, each timed from its enqueue to its send's start.
 *
 * @module
 */
import type { Channel } from "../channels/channel.ts";
import type { Route } from "../core/route.ts";
import { silentLogger } from "../observe/logger.ts";
import { PostgresStore } from "../store.ts";
import { Worker } from "../worker.ts";
import { capped, sleep } from "./_db.ts";
import type { BenchDb } from "./_db.ts";
import { countedStore, countSends } from "./_herald.ts";

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

/** What {@link wakeLatency} runs. */
export interface WakeOptions {
  concurrency: number;
  routes: number;
  rate: number;
  capMs: number;
  countQueries?: boolean;
}

/**
 * Per route (by its payload's index `i`): when its enqueue was called and
 * resolved, and when its send began.
 */
interface Stamps {
  callAt: Float64Array;
  resolvedAt: Float64Array;
  /** NaN until the send starts. */
  sendAt: Float64Array;
}

function stamps(routes: number): Stamps {
  return {
    callAt: new Float64Array(routes),
    resolvedAt: new Float64Array(routes),
    sendAt: new Float64Array(routes).fill(NaN),
  };
}

/** A no-op channel that stamps each send's start in `sendAt[payload.i]`. */
function stampingChannel(sendAt: Float64Array): Channel {
  return {
    send(route: Route) {
      const i = (route.payload as { i?: unknown } | null)?.i;
      if (typeof i === "number") sendAt[i] = performance.now();
      return Promise.resolve();
    },
  };
}

/**
 * Enqueues route i at `began + i / rate` seconds, one at a time through
 * `producer` (which NOTIFYs on commit), stamping the call and its
 * resolution, until every route is in or `stopped()`.
 */
async function pacedEnqueue(
  producer: PostgresStore,
  at: Stamps,
  pace: { began: number; rate: number; stopped: () => boolean },
): Promise<void> {
  for (let i = 0; i < at.callAt.length && !pace.stopped(); i++) {
    const wait = pace.began + (i * 1000) / pace.rate - performance.now();
    if (wait > 0) await sleep(wait);
    at.callAt[i] = performance.now();
    await producer.enqueue({ kind: "bench.wake", payload: { i } }, [
      { channel: "noop", destination: "bench" },
    ]);
    at.resolvedAt[i] = performance.now();
  }
}

/** The latencies of the routes whose send started after their enqueue was in. */
function latencies(at: Stamps): Pick<WakeRun, "fromResolved" | "fromCall" | "missing"> {
  const fromResolved: number[] = [];
  const fromCall: number[] = [];
  let missing = 0;
  for (let i = 0; i < at.sendAt.length; i++) {
    const sendAt = at.sendAt[i]!;
    if (Number.isNaN(sendAt) || at.resolvedAt[i] === 0) {
      missing++;
      continue;
    }
    fromResolved.push(sendAt - at.resolvedAt[i]!);
    fromCall.push(sendAt - at.callAt[i]!);
  }
  return { fromResolved, fromCall, missing };
}

/**
 * Enqueues `routes` routes one by one at `rate` per second through
 * `store.enqueue` (which NOTIFYs on commit) while a worker with a 60 s poll
 * interval listens; times each route from the enqueue to its send's start.
 */
export async function wakeLatency(
  db: BenchDb,
  schema: string,
  options: WakeOptions,
): Promise<WakeRun> {
  const { concurrency, routes, rate } = options;
  const at = stamps(routes);
  const { store, sql, queries, reset } = await countedStore(
    db.url,
    schema,
    concurrency + 1,
    options.countQueries,
  );
  const producer = new PostgresStore({ url: db.url, schema, max: 1 });
  const worker = new Worker({
    store,
    channels: { noop: stampingChannel(at.sendAt) },
    concurrency,
    routesPerTick: 1000,
    interval: 60_000,
    listen: true,
    logger: silentLogger,
  });
  const sends = countSends(worker, routes);
  const running = worker.run();
  try {
    await producer.getRoute(crypto.randomUUID()); // open the producer's connection
    await sleep(300); // let the listener subscribe and the first (empty) ticks end
    reset();
    const began = performance.now();
    let stop = false;
    const produce = async (): Promise<void> => {
      await pacedEnqueue(producer, at, { began, rate, stopped: () => stop });
      await sends.allSent;
    };
    const run = await capped(produce(), options.capMs, () => {
      stop = true;
      void worker.shutdown();
    });
    const seconds = (performance.now() - began) / 1000;
    return { ...latencies(at), seconds, capped: run.capped, queries: queries() };
  } finally {
    await worker.shutdown();
    await running;
    await producer.close();
    await store.close();
    await sql.end({ timeout: 5 });
  }
}
