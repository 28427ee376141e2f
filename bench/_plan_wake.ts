/**
 * The wake-up family: routes enqueued one at a time while a listening
 * worker with a long poll interval waits, timed to each send's start. One
 * run gives two rows: from the enqueue resolving (`wakeup`) and from the
 * call (`wakeup-call`).
 *
 * @module
 */
import { cpuMeter } from "./_cpu.ts";
import type { CpuPerRoute } from "./_cpu.ts";
import { summary } from "./_herald.ts";
import { wakeLatency } from "./_wake.ts";
import type { WakeRun } from "./_wake.ts";
import { loaded } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";
import { round } from "./_report.ts";
import type { Result } from "./_report.ts";

/** 10: most loops sleep between routes, so a wake-up that woke them all would show. */
const WAKE_CONCURRENCY = [1, 4, 10] as const;
const WAKE_ROUTES = 1000;
const WAKE_RATE = 200;

/** The `wakeup` and `wakeup-call` rows, concurrency by concurrency. */
export function planWake(options: Options): Scenario[] {
  if (!options.only.has("wakeup")) return [];
  return WAKE_CONCURRENCY.map((c) => wake(options, c));
}

function wake({ capMs }: Options, c: number): Scenario {
  const shape = { name: "wakeup", concurrency: c, routesPerTransaction: 1 };
  // The schema starts empty: the run enqueues its own routes.
  return loaded(shape, 0, async (db, schema, runtime) => {
    const cpu = await cpuMeter(db.url);
    const run = await wakeLatency(db, schema, {
      concurrency: c,
      routes: WAKE_ROUTES,
      rate: WAKE_RATE,
      capMs,
    });
    return wakeRows(run, c, runtime, await cpu(run.fromCall.length));
  });
}

type Latency = ReturnType<typeof summary>;

const rounded = (s: Latency): Latency => ({
  p50_ms: round(s.p50_ms, 3),
  p99_ms: round(s.p99_ms, 3),
  max_ms: round(s.max_ms, 3),
});

/**
 * The two rows of one run at concurrency `c`; the first carries the run's
 * CPU per route (producer and worker in this process, and the server).
 */
function wakeRows(run: WakeRun, c: number, runtime: string, cpu: CpuPerRoute): Result[] {
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
  const missing = run.missing > 0 ? `; ${run.missing} never sent` : "";
  return [
    {
      name: "wakeup",
      ...common,
      ...rounded(summary(run.fromResolved, true)),
      ...cpu,
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
}
