/**
 * The scenarios and the order they run in. Each one loads its own fresh
 * schema, runs, drops it, and turns into one or more {@link Result}s; a
 * failure becomes a row with `error` set instead of ending the run.
 *
 * @module
 */
import { execFile } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { BenchDb } from "./_db.ts";
import { withSchema } from "./_db.ts";
import {
  drain,
  noopChannel,
  slowChannel,
  startToFirstClaim,
  summary,
  wakeLatency,
} from "./_herald.ts";
import type { DrainRun } from "./_herald.ts";
import { findPgbench, pgbench, rawLoop } from "./_raw.ts";
import { round, RssSampler } from "./_report.ts";
import type { Result } from "./_report.ts";
import { runtimeKey, scriptArgv } from "../core/_runtime.ts";

/** Names `--only` accepts. */
export const SCENARIOS = [
  "raw",
  "pgbench",
  "per-route",
  "batch",
  "slow",
  "wakeup",
  "startup",
  "rss",
  "trips",
] as const;

/** Parsed command-line options. */
export interface Options {
  only: Set<string>;
  routes: number;
  routesPerTick: number;
  capMs: number;
  url: string;
  json: boolean;
}

/** One step of the run. */
export interface Scenario {
  run(db: BenchDb, runtime: string): Promise<Result[]>;
}

/** Concurrencies of the per-route comparisons (10: graphile-worker's published figure). */
const PER_ROUTE_CONCURRENCY = [1, 4, 8, 10] as const;
const BATCH_SIZES = [50, 100] as const;
const BATCH_CONCURRENCY = [1, 2, 3, 4] as const;
const SLOW_SEND_MS = 50;
/** Slow scenarios load about this many seconds of ideal work. */
const SLOW_SECONDS = 6;
const WAKE_ROUTES = 1000;
const WAKE_RATE = 200;

type Shape = Pick<Result, "name" | "concurrency" | "routesPerTransaction">;

function empty(shape: Shape, runtime: string): Result {
  return { ...shape, runtime, routes: 0, seconds: 0, routes_per_s: 0 };
}

/** Runs `fn` with RSS sampling; a throw becomes an error row. */
function scenario(
  shape: Shape,
  fn: (runtime: string, db: BenchDb) => Promise<Result[] | Omit<Result, keyof Shape | "runtime">>,
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

function fromDrain(run: DrainRun): Omit<Result, keyof Shape | "runtime"> {
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

/** The scenarios `options` selects, in run order. */
export function planScenarios(options: Options): Scenario[] {
  const { only, routes, capMs, routesPerTick, url } = options;
  const plan: Scenario[] = [];
  const bin = only.has("pgbench") ? findPgbench() : undefined;
  // Side by side: each concurrency's references right before Herald's run.
  for (const c of PER_ROUTE_CONCURRENCY) {
    if (only.has("raw")) {
      plan.push(
        scenario(
          { name: "raw", concurrency: c, routesPerTransaction: 1 },
          (_, db) =>
            withSchema(db, routes, async (schema) => {
              const run = await rawLoop(db, schema, c, capMs);
              return {
                routes: run.routes,
                seconds: round(run.seconds, 3),
                routes_per_s: round(run.routes / run.seconds, 1),
                capped: run.capped,
              };
            }),
        ),
      );
    }
    if (only.has("pgbench")) {
      const shape = { name: "pgbench", concurrency: c, routesPerTransaction: 1 };
      if (!bin) {
        plan.push({
          run: (_db, runtime) =>
            Promise.resolve([{ ...empty(shape, runtime), note: "pgbench not found; skipped" }]),
        });
      } else {
        plan.push(scenario(shape, (_, db) =>
          withSchema(db, routes, async (schema) => {
            const run = await pgbench(bin, url, schema, c, routes, capMs);
            return {
              routes: run.transactions,
              seconds: run.tps > 0 ? round(run.transactions / run.tps, 3) : 0,
              routes_per_s: round(run.tps, 1),
              capped: run.capped,
              note: "C client, -M prepared",
            };
          })));
      }
    }
    if (only.has("per-route")) {
      plan.push(
        scenario(
          { name: "per-route", concurrency: c, routesPerTransaction: 1 },
          (_, db) =>
            withSchema(db, routes, async (schema) =>
              fromDrain(
                await drain(db, schema, {
                  concurrency: c,
                  routesPerTransaction: 1,
                  routesPerTick,
                  routes,
                  capMs,
                  channel: noopChannel,
                }),
              )),
        ),
      );
    }
  }
  if (only.has("batch")) {
    for (const k of BATCH_SIZES) {
      for (const c of BATCH_CONCURRENCY) {
        plan.push(
          scenario(
            { name: "batch", concurrency: c, routesPerTransaction: k },
            (_, db) =>
              withSchema(db, routes, async (schema) =>
                fromDrain(
                  await drain(db, schema, {
                    concurrency: c,
                    routesPerTransaction: k,
                    routesPerTick: Math.max(routesPerTick, k),
                    routes,
                    capMs,
                    channel: noopChannel,
                  }),
                )),
          ),
        );
      }
    }
  }
  if (only.has("slow")) {
    for (const [c, k] of [[8, 1], [4, 50]] as const) {
      const ideal = (c * k * 1000) / SLOW_SEND_MS;
      const n = Math.min(routes, Math.round(ideal * SLOW_SECONDS));
      const name = k === 1 ? "slow" : "slow-batch";
      plan.push(
        scenario(
          { name, concurrency: c, routesPerTransaction: k },
          (_, db) =>
            withSchema(db, n, async (schema) => {
              const run = await drain(db, schema, {
                concurrency: c,
                routesPerTransaction: k,
                routesPerTick: Math.max(routesPerTick, k),
                routes: n,
                capMs,
                channel: slowChannel(SLOW_SEND_MS),
              });
              return { ...fromDrain(run), ideal_routes_per_s: ideal };
            }),
        ),
      );
    }
  }
  if (only.has("wakeup")) {
    for (const c of [1, 4]) {
      plan.push(
        scenario(
          { name: "wakeup", concurrency: c, routesPerTransaction: 1 },
          (runtime, db) =>
            withSchema(db, 0, async (schema): Promise<Result[]> => {
              const run = await wakeLatency(db, schema, {
                concurrency: c,
                routes: WAKE_ROUTES,
                rate: WAKE_RATE,
                capMs,
              });
              const n = run.fromResolved.length;
              const early = run.fromResolved.filter((x) => x < 0).length;
              const common = {
                concurrency: c,
                routesPerTransaction: 1,
                runtime,
                routes: n,
                seconds: round(run.seconds, 3),
                routes_per_s: round(n / run.seconds, 1),
                capped: run.capped,
              };
              const rounded = (s: ReturnType<typeof summary>): ReturnType<typeof summary> => ({
                p50_ms: round(s.p50_ms, 3),
                p99_ms: round(s.p99_ms, 3),
                max_ms: round(s.max_ms, 3),
              });
              const missing = run.missing > 0 ? `; ${run.missing} never sent` : "";
              return [
                {
                  name: "wakeup",
                  ...common,
                  ...rounded(summary(run.fromResolved, true)),
                  note: `enqueue resolved -> send start at ${WAKE_RATE}/s; ${early} of ${n} ` +
                    `sends started before enqueue resolved (counted as 0)${missing}`,
                },
                {
                  name: "wakeup-call",
                  ...common,
                  ...rounded(summary(run.fromCall)),
                  note: "enqueue called -> send start (includes the enqueue's own round trips)",
                },
              ];
            }),
        ),
      );
    }
  }
  if (only.has("startup")) {
    const times = 5;
    plan.push(
      scenario(
        { name: "startup", concurrency: 4, routesPerTransaction: 1 },
        (_, db) =>
          withSchema(db, 1000, async (schema) => {
            const took = await startToFirstClaim(db, schema, { concurrency: 4, times, capMs });
            const s = summary(took);
            return {
              routes: took.length,
              seconds: round(
                took.reduce((a, b) => a + b, 0) / 1000,
                3,
              ),
              routes_per_s: 0,
              p50_ms: round(s.p50_ms, 2),
              p99_ms: round(s.p99_ms, 2),
              max_ms: round(s.max_ms, 2),
              note:
                `new Worker + run() -> first 'claimed', cold pool, listen on; ${took.length} of ` +
                `${times} runs`,
              ...(took.length < times ? { capped: true } : {}),
            };
          }),
      ),
    );
  }
  if (only.has("rss")) {
    for (const [c, k] of [[8, 1], [4, 100]] as const) {
      plan.push(
        scenario(
          { name: "rss-child", concurrency: c, routesPerTransaction: k },
          (_, db) =>
            withSchema(db, routes, async (schema) => {
              const child = await workerChild(
                [url, schema, c, k, routes, capMs].map(String),
                capMs,
              );
              return {
                ...fromDrain(child),
                rss_peak_mb: child.peakMb,
                note: `worker alone in a child process (RSS ${child.startMb} MB at start)`,
              };
            }),
        ),
      );
    }
  }
  if (only.has("trips")) {
    const n = Math.min(routes, 1000);
    const note = "queries counted with the driver's debug hook (slower: not a throughput figure)";
    plan.push(
      scenario(
        { name: "trips:raw", concurrency: 1, routesPerTransaction: 1 },
        (_, db) =>
          withSchema(db, n, async (schema) => {
            const run = await rawLoop(db, schema, 1, capMs, true);
            return {
              routes: run.routes,
              seconds: round(run.seconds, 3),
              routes_per_s: round(run.routes / run.seconds, 1),
              queries_per_route: round(run.queries / Math.max(1, run.routes), 2),
              note,
            };
          }),
      ),
    );
    for (const k of [1, 100]) {
      const name = k === 1 ? "trips:per-route" : "trips:batch";
      plan.push(
        scenario(
          { name, concurrency: 1, routesPerTransaction: k },
          (_, db) =>
            withSchema(db, n, async (schema) => ({
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
              note,
            })),
        ),
      );
    }
  }
  return plan;
}

/** Runs bench/_worker_child.ts under this same runtime; resolves with its JSON line. */
function workerChild(
  args: readonly string[],
  capMs: number,
): Promise<DrainRun & { startMb: number; peakMb: number }> {
  const script = fileURLToPath(new URL("./_worker_child.ts", import.meta.url));
  const argv = scriptArgv(runtimeKey(), script, args);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, argv, { timeout: capMs + 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`worker child failed: ${String(stderr).trim() || err}`));
      try {
        resolve(JSON.parse(String(stdout).trim().split("\n").pop() ?? ""));
      } catch {
        reject(new Error(`worker child printed no result: ${String(stdout).slice(0, 200)}`));
      }
    });
  });
}
