/**
 * The slow-channel family: every send awaits a timer, so the figure to
 * reach is the ideal rate (sends in flight / send time), not the database's.
 *
 * @module
 */
import { drain, slowChannel } from "./_herald.ts";
import { fromDrain, loaded } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";

const SLOW_SEND_MS = 50;
/** Slow scenarios load about this many seconds of ideal work. */
const SLOW_SECONDS = 6;
/** Per-route at c = 8 (`slow`), batch K = 50 at c = 4 (`slow-batch`). */
const SLOW_RUNS = [[8, 1], [4, 50]] as const;

/** The `slow` and `slow-batch` rows. */
export function planSlow(options: Options): Scenario[] {
  if (!options.only.has("slow")) return [];
  return SLOW_RUNS.map(([c, k]) => slow(options, c, k));
}

function slow({ routes, capMs, routesPerTick }: Options, c: number, k: number): Scenario {
  const ideal = (c * k * 1000) / SLOW_SEND_MS;
  const n = Math.min(routes, Math.round(ideal * SLOW_SECONDS));
  const name = k === 1 ? "slow" : "slow-batch";
  return loaded({ name, concurrency: c, routesPerTransaction: k }, n, async (db, schema) => {
    const run = await drain(db, schema, {
      concurrency: c,
      routesPerTransaction: k,
      routesPerTick: Math.max(routesPerTick, k),
      routes: n,
      capMs,
      channel: slowChannel(SLOW_SEND_MS),
    });
    return { ...fromDrain(run), ideal_routes_per_s: ideal };
  });
}
