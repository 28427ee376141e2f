/**
 * What the benchmark measures and how it prints it: one {@link Result} per
 * scenario, as a table or as JSON lines, plus the runtime's name and an RSS
 * sampler.
 *
 * @module
 */
import process from "node:process";
import { runtimeVersion } from "../core/_runtime.ts";

/** One scenario's figures; the JSON line a `--json` run prints. */
export interface Result {
  /** The scenario: `raw`, `pgbench`, `per-route`, `batch`, `slow`, `wakeup`, … */
  name: string;
  /** `node 24.1.0`, `deno 2.1.0` or `bun 1.2.0`. */
  runtime: string;
  concurrency: number;
  routesPerTransaction: number;
  /** Routes handled (fewer than loaded when capped). */
  routes: number;
  seconds: number;
  routes_per_s: number;
  p50_ms?: number;
  p99_ms?: number;
  max_ms?: number;
  /** Peak RSS of this process while the scenario ran, in MB. */
  rss_peak_mb?: number;
  /** For slow channels: concurrency x sends in flight / send time. */
  ideal_routes_per_s?: number;
  /** Shared buffers one claim read (hit or read), from EXPLAIN (ANALYZE, BUFFERS). */
  buffers?: number;
  /** The longest a prune batch's transaction (its row locks) lasted, in ms. */
  lock_ms?: number;
  /** Herald's tables on disk (heap, indexes, TOAST), in MB: the retention rows. */
  size_mb?: number;
  /** CPU ms per route of the client (this process), where measured (bench/_cpu.ts). */
  client_cpu_ms?: number;
  /** CPU ms per route of the Postgres server, when it runs on this host. */
  db_cpu_ms?: number;
  /** Queries the driver sent per route (BEGIN and COMMIT included). */
  queries_per_route?: number;
  /** Ratios against references of the same run, or other context. */
  note?: string;
  /** The scenario hit its time cap; `routes` is what was done by then. */
  capped?: boolean;
  /** The scenario failed; its figures are zero. */
  error?: string;
}

/** The runtime executing this script, with its version. */
export const runtimeName: () => string = runtimeVersion;

/** Nearest-rank percentile of unsorted `values` (0 when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/**
 * How long `read` takes: one call apart (it prepares statements; a
 * long-lived caller pays that once), then `n` timed calls in a row.
 */
export async function timeCalls(
  read: () => Promise<unknown>,
  n: number,
): Promise<{ firstMs: number; times: number[] }> {
  const firstAt = performance.now();
  await read();
  const firstMs = performance.now() - firstAt;
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const began = performance.now();
    await read();
    times.push(performance.now() - began);
  }
  return { firstMs, times };
}

/** The figures of a row that times a read, not a drain: its p50 and p99, nothing sent. */
export function latencyFigures(
  times: readonly number[],
): Pick<Result, "routes" | "seconds" | "routes_per_s" | "p50_ms" | "p99_ms"> {
  return {
    routes: 0,
    seconds: 0,
    routes_per_s: 0,
    p50_ms: round(percentile(times, 50), 3),
    p99_ms: round(percentile(times, 99), 3),
  };
}

/** Rounds to `digits` decimals. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Samples `process.memoryUsage().rss` every 20 ms, so a scenario can report
 * its peak. Timers are unref'd: the sampler never keeps the process alive.
 */
export class RssSampler {
  #peak = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Starts sampling; resets the peak. */
  start(): void {
    this.#peak = rss();
    this.#timer ??= setInterval(() => {
      this.#peak = Math.max(this.#peak, rss());
    }, 20);
    const t = this.#timer as { unref?: () => void };
    t.unref?.();
  }

  /** The peak since `start()`, in MB, sampling once more now. */
  peakMb(): number {
    this.#peak = Math.max(this.#peak, rss());
    return round(this.#peak / 1024 / 1024, 1);
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** The current RSS in bytes. */
export function rss(): number {
  return process.memoryUsage().rss;
}

const COLUMNS: readonly [string, (r: Result) => string][] = [
  ["scenario", (r) => r.name],
  ["conc", (r) => String(r.concurrency)],
  ["K", (r) => String(r.routesPerTransaction)],
  ["routes", (r) => String(r.routes)],
  ["seconds", (r) => r.seconds.toFixed(2)],
  ["routes/s", (r) => Math.round(r.routes_per_s).toLocaleString("en-US")],
  ["p50 ms", (r) => (r.p50_ms === undefined ? "" : r.p50_ms.toFixed(2))],
  ["p99 ms", (r) => (r.p99_ms === undefined ? "" : r.p99_ms.toFixed(2))],
  ["max ms", (r) => (r.max_ms === undefined ? "" : r.max_ms.toFixed(2))],
  ["q/route", (r) => (r.queries_per_route === undefined ? "" : r.queries_per_route.toFixed(2))],
  [
    "CPU/route ms",
    (r) =>
      r.client_cpu_ms === undefined && r.db_cpu_ms === undefined
        ? ""
        : `${r.client_cpu_ms?.toFixed(2) ?? "-"} + ${r.db_cpu_ms?.toFixed(2) ?? "-"}`,
  ],
  ["RSS MB", (r) => (r.rss_peak_mb === undefined ? "" : r.rss_peak_mb.toFixed(0))],
  [
    "notes",
    (r) =>
      [r.error ? `ERROR: ${r.error}` : "", r.capped ? "CAPPED" : "", r.note ?? ""]
        .filter((s) => s !== "").join("; "),
  ],
];

/** A plain-text table, one row per result. */
export function formatTable(results: readonly Result[]): string {
  const rows = results.map((r) => COLUMNS.map(([, cell]) => cell(r)));
  const head = COLUMNS.map(([title]) => title);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((
      c,
      i,
    ) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
