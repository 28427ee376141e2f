/**
 * The batch family: a real worker draining the table with
 * `routesPerTransaction: K`, for each K and concurrency, with its CPU per
 * route on both sides.
 *
 * @module
 */
import { cpuMeter } from "./_cpu.ts";
import { drain, noopChannel } from "./_herald.ts";
import { fromDrain, loaded } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";

const BATCH_SIZES = [50, 100] as const;
const BATCH_CONCURRENCY = [1, 2, 3, 4] as const;

/** The `batch` rows, K by K, each over every concurrency. */
export function planBatch(options: Options): Scenario[] {
  if (!options.only.has("batch")) return [];
  return BATCH_SIZES.flatMap((k) => BATCH_CONCURRENCY.map((c) => batch(options, c, k)));
}

function batch({ routes, capMs, routesPerTick }: Options, c: number, k: number): Scenario {
  const shape = { name: "batch", concurrency: c, routesPerTransaction: k };
  return loaded(shape, routes, async (db, schema) => {
    const cpu = await cpuMeter(db.url);
    const run = await drain(db, schema, {
      concurrency: c,
      routesPerTransaction: k,
      // A tick must claim at least one whole batch.
      routesPerTick: Math.max(routesPerTick, k),
      routes,
      capMs,
      channel: noopChannel,
    });
    return { ...fromDrain(run), ...(await cpu(run.routes)) };
  });
}
