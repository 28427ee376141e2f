/**
 * The startup family: `new Worker` + `run()` on a cold store, routes
 * already queued, to the first `claimed` event, a few times over.
 *
 * @module
 */
import { startToFirstClaim, summary } from "./_herald.ts";
import { loaded } from "./_plan.ts";
import type { Figures, Options, Scenario } from "./_plan.ts";
import { round } from "./_report.ts";

const STARTUP_RUNS = 5;
const STARTUP_CONCURRENCY = 4;
const STARTUP_ROUTES = 1000;

/** The one `startup` row. */
export function planStartup(options: Options): Scenario[] {
  if (!options.only.has("startup")) return [];
  const shape = { name: "startup", concurrency: STARTUP_CONCURRENCY, routesPerTransaction: 1 };
  return [
    loaded(shape, STARTUP_ROUTES, async (db, schema) => {
      const took = await startToFirstClaim(db, schema, {
        concurrency: STARTUP_CONCURRENCY,
        times: STARTUP_RUNS,
        capMs: options.capMs,
      });
      return startupFigures(took);
    }),
  ];
}

/** The figures of the runs that reached a claim, `took` in milliseconds each. */
function startupFigures(took: readonly number[]): Figures {
  const s = summary(took);
  return {
    routes: took.length,
    seconds: round(took.reduce((a, b) => a + b, 0) / 1000, 3),
    routes_per_s: 0,
    p50_ms: round(s.p50_ms, 2),
    p99_ms: round(s.p99_ms, 2),
    max_ms: round(s.max_ms, 2),
    note: `new Worker + run() -> first 'claimed', cold pool, listen on; ${took.length} of ` +
      `${STARTUP_RUNS} runs`,
    ...(took.length < STARTUP_RUNS ? { capped: true } : {}),
  };
}
