/**
 * The scenarios and the order they run in, composed from one planner per
 * family. Each scenario loads its own fresh schema, runs, drops it, and
 * turns into one or more `Result` rows; a failure becomes a row with
 * `error` set instead of ending the run.
 *
 * @module
 */
import type { Options, Scenario } from "./_plan.ts";
import { planBatch } from "./_plan_batch.ts";
import { planBig } from "./_plan_big.ts";
import { planPeers } from "./_plan_peers.ts";
import { planPerRoute } from "./_plan_per_route.ts";
import { planRetention } from "./_plan_retention.ts";
import { planRss } from "./_plan_rss.ts";
import { planSlow } from "./_plan_slow.ts";
import { planStartup } from "./_plan_startup.ts";
import { planTrips } from "./_plan_trips.ts";
import { planTracing } from "./_plan_tracing.ts";
import { planWake } from "./_plan_wake.ts";

export type { Options, Scenario } from "./_plan.ts";

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
  "tracing",
  "big",
  "retention",
] as const;

/** The planners in run order; each returns nothing unless `--only` selects its family. */
const PLANNERS: readonly ((options: Options) => Scenario[])[] = [
  planPerRoute, // raw, pgbench, per-route
  planBatch,
  planSlow,
  planWake,
  planStartup,
  planRss,
  planTrips,
  planTracing,
  planBig,
  planRetention, // and the partitioned alternative, in the same run
  planPeers, // after Herald's own rows: back to back with them
];

/** The scenarios `options` selects, in run order. */
export function planScenarios(options: Options): Scenario[] {
  return PLANNERS.flatMap((plan) => plan(options));
}
