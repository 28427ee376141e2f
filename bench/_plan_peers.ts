/**
 * The peers family (`--peers`, Node only): graphile-worker and pg-boss on
 * the same Postgres, the same number of no-op jobs, right after Herald's own
 * rows of the same run, so every ratio the Targets block prints compares
 * figures measured minutes apart on one machine.
 *
 * @module
 */
import { scenario } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";
import { round } from "./_report.ts";
import type { Result } from "./_report.ts";

/** Paced adds for the latency rows: the rate Herald's wake-up rows use. */
const LATENCY_RATE = 200;
const LATENCY_JOBS = 400;

/** The peers' rows; none unless `--peers` was given (and only under Node). */
export function planPeers(options: Options): Scenario[] {
  if (!options.peers) return [];
  const throughput = (
    name: string,
    concurrency: number,
    run: (peers: Peers) => Promise<
      { jobs: number; seconds: number; jobsPerS: number; capped: boolean; note: string }
    >,
  ): Scenario =>
    scenario({ name, concurrency, routesPerTransaction: 1 }, async () => {
      const r = await run(await peers());
      return {
        routes: r.jobs,
        seconds: round(r.seconds, 3),
        routes_per_s: round(r.jobsPerS, 1),
        capped: r.capped,
        note: r.note,
      };
    });
  const latency = (
    name: string,
    run: (peers: Peers) => Promise<{ p50Ms: number; p99Ms: number; maxMs: number; jobs: number }>,
  ): Scenario =>
    scenario({ name, concurrency: 10, routesPerTransaction: 1 }, async () => {
      const r = await run(await peers());
      return {
        routes: r.jobs,
        seconds: 0,
        routes_per_s: LATENCY_RATE,
        p50_ms: round(r.p50Ms, 3),
        p99_ms: round(r.p99Ms, 3),
        max_ms: round(r.maxMs, 3),
        note: "add called -> task start, paced at 200/s",
      };
    });
  const { url, routes: jobs, capMs } = options;
  return [
    throughput("graphile", 10, (p) => p.graphileThroughput(url, { jobs, mode: "defaults", capMs })),
    throughput(
      "graphile-fastest",
      24,
      (p) => p.graphileThroughput(url, { jobs, mode: "fastest", capMs }),
    ),
    throughput("pg-boss", 1, (p) => p.pgBossThroughput(url, { jobs, mode: "defaults", capMs })),
    throughput("pg-boss-batch", 1, (p) => p.pgBossThroughput(url, { jobs, mode: "batch", capMs })),
    latency(
      "graphile-latency",
      (p) => p.graphileLatency(url, { ratePerS: LATENCY_RATE, jobs: LATENCY_JOBS }),
    ),
    latency(
      "pg-boss-latency",
      (p) => p.pgBossLatency(url, { ratePerS: LATENCY_RATE, jobs: LATENCY_JOBS }),
    ),
  ];
}

type Peers = typeof import("./_peers.ts");

/** The peers' module, loaded only when asked for (they are dev dependencies, Node only). */
function peers(): Promise<Peers> {
  return import("./_peers.ts");
}

/** The Targets block's lines for the peers, from rows of the same run. */
export function peerLines(results: readonly Result[]): string[] {
  const ok = (pass: boolean): string => (pass ? "PASS" : "MISS");
  const x = (n: number): string => `${n.toFixed(2)}x`;
  const row = (name: string, c?: number, k?: number): Result | undefined =>
    results.find((r) =>
      r.name === name && !r.error && r.routes > 0 && (c === undefined || r.concurrency === c) &&
      (k === undefined || r.routesPerTransaction === k)
    );
  const lines: string[] = [];
  const gw = row("graphile");
  const perRoute = row("per-route", 10);
  if (gw && perRoute) {
    const ratio = perRoute.routes_per_s / gw.routes_per_s;
    lines.push(
      `  per-route c10 >= 1.5x graphile-worker's defaults (c10, same run): ${
        Math.round(perRoute.routes_per_s)
      }/s vs ${Math.round(gw.routes_per_s)}/s = ${x(ratio)} ${ok(ratio >= 1.5)}`,
    );
  }
  const fastest = row("graphile-fastest");
  const batch =
    results.filter((r) =>
      r.name === "batch" && r.routesPerTransaction === 100 && !r.error && r.routes > 0
    ).sort((a, b) => b.routes_per_s - a.routes_per_s)[0];
  if (fastest && batch) {
    const ratio = batch.routes_per_s / fastest.routes_per_s;
    lines.push(
      `  batch K=100 >= 1.5x graphile-worker's fastest (same run): ${
        Math.round(batch.routes_per_s)
      }/s (c${batch.concurrency}) vs ${Math.round(fastest.routes_per_s)}/s = ${x(ratio)} ${
        ok(ratio >= 1.5)
      }`,
    );
  }
  for (const name of ["pg-boss", "pg-boss-batch"]) {
    const boss = row(name);
    if (boss && perRoute) {
      lines.push(
        `  per-route c10 vs ${name} (reported): ${x(perRoute.routes_per_s / boss.routes_per_s)}`,
      );
    }
  }
  const gwLatency = row("graphile-latency");
  for (const r of results.filter((r) => r.name === "wakeup-call" && !r.error)) {
    if (!gwLatency) break;
    const pass = (r.p50_ms ?? Infinity) <= 0.5 * gwLatency.p50_ms! &&
      (r.p99_ms ?? Infinity) <= gwLatency.p99_ms!;
    lines.push(
      `  enqueue call -> send start c${r.concurrency}: p50 ${r.p50_ms?.toFixed(2)} ms <= 0.5 x ` +
        `graphile-worker's ${gwLatency.p50_ms?.toFixed(2)} ms, p99 ${r.p99_ms?.toFixed(2)} ms <= ` +
        `${gwLatency.p99_ms?.toFixed(2)} ms ${ok(pass)}`,
    );
  }
  const bossLatency = row("pg-boss-latency");
  if (bossLatency) {
    lines.push(
      `  pg-boss send -> work start (reported): p50 ${bossLatency.p50_ms?.toFixed(1)} ms, p99 ${
        bossLatency.p99_ms?.toFixed(1)
      } ms (it polls; no LISTEN)`,
    );
  }
  return lines;
}
