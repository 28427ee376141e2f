/**
 * The retention family: `prune` on a table holding production's history
 * (`--history` sent routes, each with its notification and attempt-log row,
 * finished over the last 30 days), run beside a working worker.
 *
 * - `retention-prune d=…` / `retention-base d=…`: one worker (per-route,
 *   c = 4, no-op channel: it keeps the database as busy as Herald can)
 *   drains a long queue; its send rate beside `prune` removing the oldest
 *   day of history, and as long without, each window from a vacuumed queue:
 *   flat out (`dutyCycle` 1) once, then at the default duty cycle (0.25)
 *   twice, prune first and base first. The Targets line pools the windows of
 *   a duty cycle. `max ms` is the longest gap between two sends in the window
 *   (a stall shows there); a prune row's note gives its ratio to its own base
 *   window, its rate and how long its batches' transactions (the longest any
 *   row stayed locked by it) took.
 * - `retention-size`: the three tables' size (heap, indexes, TOAST) after
 *   the load, then after each of a few days of steady state (a day of new
 *   history written, the oldest day pruned, then `VACUUM` as autovacuum
 *   would run it): bounded when the space freed is used again.
 *
 * The alternative, history partitioned by day, is measured in the same run
 * by bench/_partition.ts.
 *
 * @module
 */
import { silentLogger } from "../observe/logger.ts";
import { PostgresStore } from "../store.ts";
import { Worker } from "../worker.ts";
import { DAY, HISTORY_DAYS as DAYS, sleep } from "./_db.ts";
import type { BenchDb } from "./_db.ts";
import { countedStore, noopChannel } from "./_herald.ts";
import { partitionRows } from "./_partition.ts";
import { scenario } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";
import { latencyFigures, percentile, round, timeCalls } from "./_report.ts";
import type { Result } from "./_report.ts";

/** The newest history is this old (so the newest day never meets the cut). */
const NEWEST_MS = 3_600_000;

/** The worker runs this long before the base window opens (pool, JIT, caches). */
const WARM_MS = 3_000;

/** Steady-state days in the size rows. */
export const CYCLES = 3;

/** The worker beside the prune. */
const SHAPE = { concurrency: 4, routesPerTransaction: 1 } as const;

/** The `retention` rows, then the partitioned alternative's. */
export function planRetention(options: Options): Scenario[] {
  if (!options.only.has("retention")) return [];
  return [
    scenario(
      { name: "retention-prune", ...SHAPE },
      (runtime, db) => retention(db, runtime, options),
    ),
    scenario(
      { name: "partition-drop", concurrency: 4, routesPerTransaction: 1 },
      (runtime, db) => partitionRows(db, runtime, options),
    ),
  ];
}

async function retention(db: BenchDb, runtime: string, options: Options): Promise<Result[]> {
  const schema = await db.fresh(0);
  try {
    const began = performance.now();
    await db.addHistory(schema, options.history, { newestMs: NEWEST_MS, spanMs: DAYS * DAY });
    const loaded = (performance.now() - began) / 1000;
    const size0 = await sizes(db, schema);
    // Enough queue for the windows and the prunes beside a worker at ~3,000 routes/s.
    const queue = Math.max(options.routes, 150_000 + Math.ceil(options.history / DAYS) * 4);
    await db.add(schema, queue);
    const rows = await pruneBesideWorker(db, schema, runtime, options);
    rows.push(await destinationList(db, schema, runtime, options.history));
    rows.push({
      ...sizeRow(runtime, "loaded", 0, loaded, size0),
      note: `${options.history} sent routes over ${DAYS} days, loaded in ${round(loaded, 1)} s; ${
        describe(size0)
      }`,
    });
    // What the worker sent is history now too: the steady state starts from here.
    await db.vacuum(schema, ["notifications", "notification_routes", "route_attempts"]);
    const drained = await sizes(db, schema);
    rows.push({
      ...sizeRow(runtime, "pruned", 0, 0, drained),
      note: `after the worker's run and the prunes beside it, VACUUM; ${describe(drained)}`,
    });
    rows.push(...await steadyState(db, schema, runtime, options));
    return rows;
  } finally {
    await db.drop(schema);
  }
}

/**
 * What the destination list (`herald destinations`, the dashboard's page)
 * costs here: its last hour's attempts are the worker's run just now, on
 * top of the history's.
 */
async function destinationList(
  db: BenchDb,
  schema: string,
  runtime: string,
  history: number,
): Promise<Result> {
  const store = new PostgresStore({ url: db.url, schema, max: 1 });
  try {
    const [hour] = await db.admin`
      SELECT count(*)::int AS n FROM ${db.admin(schema)}.route_attempts
      WHERE started_at > now() - interval '1 hour'`;
    const { times } = await timeCalls(() => store.destinations(), 5);
    return {
      name: "destinations-list",
      runtime,
      ...SHAPE,
      ...latencyFigures(times),
      note: `store.destinations() (herald destinations, the dashboard's destinations page) ` +
        `beside ${history} routes of history, ${hour?.["n"]} attempts in the last hour`,
    };
  } finally {
    await store.close();
  }
}

/**
 * The windows beside the worker, one day pruned in each: flat out once, then
 * the default twice, in both orders (prune then base, base then prune), so
 * a drift of the worker's rate over the run does not favour either side.
 */
const PAIRS = [
  { dutyCycle: 1, pruneFirst: true },
  { dutyCycle: 0.25, pruneFirst: true },
  { dutyCycle: 0.25, pruneFirst: false },
] as const;

/**
 * The worker's send rate beside a prune of the oldest day, and as long
 * without it, for each of {@link PAIRS}.
 */
async function pruneBesideWorker(
  db: BenchDb,
  schema: string,
  runtime: string,
  options: Options,
): Promise<Result[]> {
  const { store, sql } = await countedStore(db.url, schema, SHAPE.concurrency + 1);
  const pruner = new PostgresStore({ url: db.url, schema, max: 1 });
  const worker = new Worker({
    store,
    channels: { noop: noopChannel },
    ...SHAPE,
    routesPerTick: options.routesPerTick,
    interval: 60_000,
    listen: false,
    logger: silentLogger,
  });
  const sends: number[] = [];
  worker.addEventListener("sent", () => void sends.push(performance.now()));
  const running = worker.run();
  running.catch(() => {}); // awaited in `finally`; not unhandled meanwhile
  // Autovacuum may be off (it is on this project's CI machine): each window
  // starts from a vacuumed queue, as autovacuum keeps it in production, or
  // the dead entries of the routes just sent would slow whichever came later.
  const vacuumed = (): Promise<unknown> => db.vacuum(schema, ["notification_routes"]);
  const baseWindow = async (ms: number): Promise<ReturnType<typeof windowOf>> => {
    await vacuumed();
    const from = performance.now();
    await sleep(ms);
    return windowOf(sends, from, performance.now());
  };
  try {
    await sleep(WARM_MS);
    const rows: Result[] = [];
    // A base window measured first is as long as the last prune at its duty cycle.
    const lastMs = new Map<number, number>();
    for (const [i, { dutyCycle, pruneFirst }] of PAIRS.entries()) {
      const before = pruneFirst ? undefined : await baseWindow(lastMs.get(dutyCycle) ?? 10_000);
      await vacuumed();
      const batches: number[] = [];
      const from = performance.now();
      const n = await pruner.prune({
        olderThanMs: NEWEST_MS + (DAYS - 1 - i) * DAY,
        dutyCycle,
        onProgress: (_, ms) => void batches.push(ms),
      });
      const to = performance.now();
      lastMs.set(dutyCycle, to - from);
      const during = windowOf(sends, from, to);
      const quiet = before ?? await baseWindow(to - from);
      const seconds = (to - from) / 1000;
      const dry = sends.length > 0 && sends[sends.length - 1]! < performance.now() - 1_000;
      const prune: Result = {
        name: `retention-prune d=${dutyCycle}`,
        runtime,
        ...SHAPE,
        ...during,
        lock_ms: round(Math.max(0, ...batches), 1),
        note: `${round(during.routes_per_s / quiet.routes_per_s, 2)}x of its base window; pruned ${
          n.toLocaleString("en-US")
        } routes (a day) in ${round(seconds, 1)} s = ${
          Math.round(n / seconds).toLocaleString("en-US")
        } routes/s; ${batches.length} batches, each one transaction: p50 ${
          round(percentile(batches, 50), 1)
        } ms, max ${round(Math.max(0, ...batches), 1)} ms`,
        ...(dry ? { error: "the queue ran dry before the windows ended; load more routes" } : {}),
      };
      const base: Result = {
        name: `retention-base d=${dutyCycle}`,
        runtime,
        ...SHAPE,
        ...quiet,
        note: `the same worker without a prune, as long, ${
          pruneFirst ? "right after" : "right before"
        } (each window from a VACUUM)`,
      };
      rows.push(...(pruneFirst ? [prune, base] : [base, prune]));
    }
    return rows;
  } finally {
    await worker.shutdown();
    // Each closes even when one before it fails; a failed run shows in its rows.
    await Promise.allSettled([running, pruner.close(), store.close()]);
    await sql.end({ timeout: 5 });
  }
}

/** Sends per second within `[from, to)` and the longest gap between two of them (or the edges). */
function windowOf(
  sends: readonly number[],
  from: number,
  to: number,
): { routes: number; seconds: number; routes_per_s: number; max_ms: number } {
  const inside = sends.filter((t) => t >= from && t < to);
  let gap = 0;
  let prev = from;
  for (const t of [...inside, to]) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  const seconds = (to - from) / 1000;
  return {
    routes: inside.length,
    seconds: round(seconds, 3),
    routes_per_s: round(inside.length / seconds, 1),
    max_ms: round(gap, 1),
  };
}

/** A few days of steady state: a day of history in, the oldest day out, VACUUM. */
async function steadyState(
  db: BenchDb,
  schema: string,
  runtime: string,
  options: Options,
): Promise<Result[]> {
  const rows: Result[] = [];
  const perDay = Math.ceil(options.history / DAYS);
  const pruner = new PostgresStore({ url: db.url, schema, max: 1 });
  try {
    for (let day = 1; day <= CYCLES; day++) {
      // Today's history is `day` days younger than the load's newest; the
      // cut moves a day forward each time, so each prune takes one day.
      await db.addHistory(schema, perDay, { newestMs: 0, spanMs: NEWEST_MS });
      const began = performance.now();
      const pruned = await pruner.prune({
        olderThanMs: NEWEST_MS + (DAYS - PAIRS.length - day) * DAY,
      });
      const seconds = (performance.now() - began) / 1000;
      await db.vacuum(schema, ["notifications", "notification_routes", "route_attempts"]);
      const size = await sizes(db, schema);
      rows.push({
        ...sizeRow(runtime, `day ${day}`, pruned, seconds, size),
        note: `day ${day}: +${perDay} routes, pruned ${pruned} in ${round(seconds, 1)} s; ${
          describe(size)
        }`,
      });
    }
  } finally {
    await pruner.close();
  }
  return rows;
}

/** Bytes on disk (heap, indexes, TOAST) of the three tables a prune touches. */
interface Sizes {
  routes: number;
  attempts: number;
  notifications: number;
}

async function sizes(db: BenchDb, schema: string): Promise<Sizes> {
  const total = async (table: string): Promise<number> => {
    const [row] = await db
      .admin`SELECT pg_total_relation_size(${`"${schema}".${table}`})::float8 AS b`;
    return Number(row?.["b"] ?? 0);
  };
  return {
    routes: await total("notification_routes"),
    attempts: await total("route_attempts"),
    notifications: await total("notifications"),
  };
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MB`;
}

function describe(s: Sizes): string {
  return `routes ${mb(s.routes)}, attempts ${mb(s.attempts)}, notifications ${
    mb(s.notifications)
  }, total ${mb(s.routes + s.attempts + s.notifications)}`;
}

function sizeRow(
  runtime: string,
  label: string,
  routes: number,
  seconds: number,
  size: Sizes,
): Result {
  return {
    name: `retention-size ${label}`,
    runtime,
    concurrency: 1,
    routesPerTransaction: 1,
    routes,
    seconds: round(seconds, 3),
    routes_per_s: seconds > 0 ? round(routes / seconds, 1) : 0,
    size_mb: round((size.routes + size.attempts + size.notifications) / 1048576, 1),
  };
}
