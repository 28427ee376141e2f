/**
 * What every scenario planner shares: the options, the {@link Scenario}
 * step, and the wrapper that loads a fresh schema, samples RSS and turns a
 * throw into an error row instead of ending the run.
 *
 * @module
 */
import type { BenchDb } from "./_db.ts";
import { withSchema } from "./_db.ts";
import type { DrainRun } from "./_herald.ts";
import { round, RssSampler } from "./_report.ts";
import type { Result } from "./_report.ts";

/** Parsed command-line options. */
export interface Options {
  only: Set<string>;
  routes: number;
  routesPerTick: number;
  /** Sent routes of history in the big-table rows. */
  history: number;
  /** Routes not yet due in the big-table rows. */
  future: number;
  /** Also run graphile-worker and pg-boss (Node only). */
  peers: boolean;
  capMs: number;
  url: string;
  json: boolean;
}

/** One step of the run. */
export interface Scenario {
  run(db: BenchDb, runtime: string): Promise<Result[]>;
}

/** What names a row: the scenario and its concurrency and batch size. */
export type Shape = Pick<Result, "name" | "concurrency" | "routesPerTransaction">;

/** A row's figures, without what {@link Shape} and the runtime fill in. */
export type Figures = Omit<Result, keyof Shape | "runtime">;

/** A row with zero figures, for a scenario that failed or was skipped. */
export function empty(shape: Shape, runtime: string): Result {
  return { ...shape, runtime, routes: 0, seconds: 0, routes_per_s: 0 };
}

/**
 * Runs `fn` with RSS sampling; a throw becomes an error row. `fn` returns
 * the figures of the one row `shape` names, or whole rows.
 */
export function scenario(
  shape: Shape,
  fn: (runtime: string, db: BenchDb) => Promise<Result[] | Figures>,
): Scenario {
  return {
    async run(db, runtime) {
      const rss = new RssSampler();
      rss.start();
      try {
        const out = await fn(runtime, db);
        const peak = rss.peakMb();
        if (Array.isArray(out)) return out.map((r) => ({ ...r, rss_peak_mb: peak }));
        return [{ ...shape, runtime, ...out, rss_peak_mb: out.rss_peak_mb ?? peak }];
      } catch (err) {
        return [{ ...empty(shape, runtime), error: String((err as Error)?.message ?? err) }];
      } finally {
        rss.stop();
      }
    },
  };
}

/**
 * A {@link scenario} on a fresh schema of `routes` queued routes, dropped
 * afterwards; the schema's load and drop fall inside the RSS sampling.
 */
export function loaded(
  shape: Shape,
  routes: number,
  fn: (db: BenchDb, schema: string, runtime: string) => Promise<Result[] | Figures>,
): Scenario {
  return scenario(
    shape,
    (runtime, db) => withSchema(db, routes, (schema) => fn(db, schema, runtime)),
  );
}

/** The figures of one drain; `error` is set when some routes were not sent. */
export function fromDrain(run: DrainRun): Figures {
  return {
    routes: run.routes,
    seconds: round(run.seconds, 3),
    routes_per_s: run.seconds > 0 ? round(run.routes / run.seconds, 1) : 0,
    // Zero when the run did not count (timed runs go without the driver's debug hook).
    ...(run.queries > 0 && run.routes > 0
      ? { queries_per_route: round(run.queries / run.routes, 2) }
      : {}),
    capped: run.capped,
    ...(run.unsent > 0 ? { error: `${run.unsent} routes were not sent` } : {}),
  };
}
