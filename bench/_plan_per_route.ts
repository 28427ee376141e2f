/**
 * The per-route family: at each concurrency, the ceiling references (`raw`,
 * the same driver; `pgbench`, the C client; `pgbench-herald`, Herald's own
 * statements in the C client) right before Herald's own `per-route` run, so
 * they are measured side by side, each with its CPU per route on both sides.
 *
 * @module
 */
import { cpuMeter } from "./_cpu.ts";
import { drain, noopChannel } from "./_herald.ts";
import { empty, fromDrain, loaded } from "./_plan.ts";
import type { Options, Scenario, Shape } from "./_plan.ts";
import { findPgbench, pgbench, rawLoop } from "./_raw.ts";
import { heraldScript } from "./_replay.ts";
import { round } from "./_report.ts";

/** Concurrencies of the per-route comparisons (10: graphile-worker's published figure). */
const PER_ROUTE_CONCURRENCY = [1, 4, 8, 10] as const;

/** The `raw`, `pgbench` and `per-route` rows `options` selects, in run order. */
export function planPerRoute(options: Options): Scenario[] {
  const { only } = options;
  const bin = only.has("pgbench") ? findPgbench() : undefined;
  return PER_ROUTE_CONCURRENCY.flatMap((c) => [
    ...(only.has("raw") ? [raw(options, c)] : []),
    ...(only.has("pgbench")
      ? [pgbenchRow(options, c, bin), pgbenchRow(options, c, bin, true)]
      : []),
    ...(only.has("per-route") ? [perRoute(options, c)] : []),
  ]);
}

function raw({ routes, capMs }: Options, c: number): Scenario {
  const shape = { name: "raw", concurrency: c, routesPerTransaction: 1 };
  return loaded(shape, routes, async (db, schema) => {
    const cpu = await cpuMeter(db.url);
    const run = await rawLoop(db, schema, c, capMs);
    return {
      routes: run.routes,
      seconds: round(run.seconds, 3),
      routes_per_s: round(run.routes / run.seconds, 1),
      capped: run.capped,
      ...(await cpu(run.routes)),
    };
  });
}

/**
 * pgbench's row (`herald`: with Herald's own transaction), or a skipped row
 * when `bin` (pgbench's path) is not known.
 */
function pgbenchRow(
  { routes, capMs, url }: Options,
  c: number,
  bin: string | undefined,
  herald = false,
): Scenario {
  const name = herald ? "pgbench-herald" : "pgbench";
  const shape: Shape = { name, concurrency: c, routesPerTransaction: 1 };
  if (!bin) {
    return {
      run: (_db, runtime) =>
        Promise.resolve([{ ...empty(shape, runtime), note: "pgbench not found; skipped" }]),
    };
  }
  return loaded(shape, routes, async (db, schema) => {
    const script = herald ? await heraldScript(db, schema) : undefined;
    const cpu = await cpuMeter(db.url, false);
    const run = await pgbench(bin, url, schema, c, routes, capMs, script);
    return {
      routes: run.transactions,
      seconds: run.tps > 0 ? round(run.transactions / run.tps, 3) : 0,
      routes_per_s: round(run.tps, 1),
      capped: run.capped,
      ...(await cpu(run.transactions)),
      note: herald ? "Herald's statements for one route, in the C client" : "C client, -M prepared",
    };
  });
}

function perRoute({ routes, capMs, routesPerTick }: Options, c: number): Scenario {
  const shape = { name: "per-route", concurrency: c, routesPerTransaction: 1 };
  return loaded(shape, routes, async (db, schema) => {
    const cpu = await cpuMeter(db.url);
    const run = await drain(db, schema, {
      concurrency: c,
      routesPerTransaction: 1,
      routesPerTick,
      routes,
      capMs,
      channel: noopChannel,
    });
    return { ...fromDrain(run), ...(await cpu(run.routes)) };
  });
}
