/**
 * The per-route family: at each concurrency, the two ceiling references
 * (`raw`, the same driver; `pgbench`, the C client) right before Herald's
 * own `per-route` run, so the three are measured side by side.
 *
 * @module
 */
import { drain, noopChannel } from "./_herald.ts";
import { empty, fromDrain, loaded } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";
import { findPgbench, pgbench, rawLoop } from "./_raw.ts";
import { round } from "./_report.ts";

/** Concurrencies of the per-route comparisons (10: graphile-worker's published figure). */
const PER_ROUTE_CONCURRENCY = [1, 4, 8, 10] as const;

/** The `raw`, `pgbench` and `per-route` rows `options` selects, in run order. */
export function planPerRoute(options: Options): Scenario[] {
  const { only } = options;
  const bin = only.has("pgbench") ? findPgbench() : undefined;
  return PER_ROUTE_CONCURRENCY.flatMap((c) => [
    ...(only.has("raw") ? [raw(options, c)] : []),
    ...(only.has("pgbench") ? [pgbenchRow(options, c, bin)] : []),
    ...(only.has("per-route") ? [perRoute(options, c)] : []),
  ]);
}

function raw({ routes, capMs }: Options, c: number): Scenario {
  const shape = { name: "raw", concurrency: c, routesPerTransaction: 1 };
  return loaded(shape, routes, async (db, schema) => {
    const run = await rawLoop(db, schema, c, capMs);
    return {
      routes: run.routes,
      seconds: round(run.seconds, 3),
      routes_per_s: round(run.routes / run.seconds, 1),
      capped: run.capped,
    };
  });
}

/** pgbench's row, or a skipped row when `bin` (pgbench's path) is not known. */
function pgbenchRow({ routes, capMs, url }: Options, c: number, bin?: string): Scenario {
  const shape = { name: "pgbench", concurrency: c, routesPerTransaction: 1 };
  if (!bin) {
    return {
      run: (_db, runtime) =>
        Promise.resolve([{ ...empty(shape, runtime), note: "pgbench not found; skipped" }]),
    };
  }
  return loaded(shape, routes, async (_db, schema) => {
    const run = await pgbench(bin, url, schema, c, routes, capMs);
    return {
      routes: run.transactions,
      seconds: run.tps > 0 ? round(run.transactions / run.tps, 3) : 0,
      routes_per_s: round(run.tps, 1),
      capped: run.capped,
      note: "C client, -M prepared",
    };
  });
}

function perRoute({ routes, capMs, routesPerTick }: Options, c: number): Scenario {
  const shape = { name: "per-route", concurrency: c, routesPerTransaction: 1 };
  return loaded(shape, routes, async (db, schema) =>
    fromDrain(
      await drain(db, schema, {
        concurrency: c,
        routesPerTransaction: 1,
        routesPerTick,
        routes,
        capMs,
        channel: noopChannel,
      }),
    ));
}
