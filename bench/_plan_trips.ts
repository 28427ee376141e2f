/**
 * The round-trip family: queries per route, counted with the driver's
 * `debug` hook, for raw, per-route and batch K = 100 at c = 1. The hook
 * captures a stack per query, so these rows are not throughput figures.
 *
 * @module
 */
import { drain, noopChannel } from "./_herald.ts";
import { fromDrain, loaded } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";
import { rawLoop } from "./_raw.ts";
import { round } from "./_report.ts";

/** Routes per counted run, at most (the debug hook slows every query). */
const TRIPS_ROUTES = 1000;
const NOTE = "queries counted with the driver's debug hook (slower: not a throughput figure)";

/** The `trips:raw`, `trips:per-route` and `trips:batch` rows. */
export function planTrips(options: Options): Scenario[] {
  if (!options.only.has("trips")) return [];
  const n = Math.min(options.routes, TRIPS_ROUTES);
  return [tripsRaw(options, n), tripsHerald(options, n, 1), tripsHerald(options, n, 100)];
}

function tripsRaw({ capMs }: Options, n: number): Scenario {
  const shape = { name: "trips:raw", concurrency: 1, routesPerTransaction: 1 };
  return loaded(shape, n, async (db, schema) => {
    const run = await rawLoop(db, schema, 1, capMs, true);
    return {
      routes: run.routes,
      seconds: round(run.seconds, 3),
      routes_per_s: round(run.routes / run.seconds, 1),
      queries_per_route: round(run.queries / Math.max(1, run.routes), 2),
      note: NOTE,
    };
  });
}

/** A counted drain, K = `k`: `trips:per-route` for 1, else `trips:batch`. */
function tripsHerald({ capMs, routesPerTick }: Options, n: number, k: number): Scenario {
  const name = k === 1 ? "trips:per-route" : "trips:batch";
  return loaded({ name, concurrency: 1, routesPerTransaction: k }, n, async (db, schema) => ({
    ...fromDrain(
      await drain(db, schema, {
        concurrency: 1,
        routesPerTransaction: k,
        routesPerTick,
        routes: n,
        capMs,
        channel: noopChannel,
        countQueries: true,
      }),
    ),
    note: NOTE,
  }));
}
