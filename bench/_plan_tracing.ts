/**
 * The tracing family: what the OpenTelemetry API costs with no SDK
 * registered. The same drains as `per-route` (c = 4) and `batch` (K = 100,
 * c = 4), each with Herald's spans on (the API's no-op tracer: the default)
 * and off (`tracer: false`), alternated so drift hits both alike.
 *
 * @module
 */
import { drain, noopChannel } from "./_herald.ts";
import { fromDrain, loaded } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";

/** The `tracing-on` / `tracing-off` rows. */
export function planTracing(options: Options): Scenario[] {
  if (!options.only.has("tracing")) return [];
  return [1, 100].flatMap((k) => [true, false, true, false].map((on) => traced(options, k, on)));
}

function traced({ routes, capMs, routesPerTick }: Options, k: number, on: boolean): Scenario {
  const shape = {
    name: on ? "tracing-on" : "tracing-off",
    concurrency: 4,
    routesPerTransaction: k,
  };
  return loaded(shape, routes, async (db, schema) =>
    fromDrain(
      await drain(db, schema, {
        concurrency: 4,
        routesPerTransaction: k,
        routesPerTick: Math.max(routesPerTick, k),
        routes,
        capMs,
        channel: noopChannel,
        ...(on ? {} : { tracer: false as const }),
      }),
    ));
}
