/**
 * The targets, checked against ratios from the same run: each row
 * gets a note comparing it with its reference, and {@link targetsText}
 * lists every target with its measured figure and PASS/MISS.
 *
 * @module
 */
import type { Result } from "./_report.ts";
import { peerLines } from "./_plan_peers.ts";
import { CYCLES } from "./_plan_retention.ts";
import { LEAN_HEAP_FLAG } from "./_plan_rss.ts";
import { HOLD_MS } from "./_partition.ts";

/** Targets from the benchmark issue. */
export const TARGETS = {
  perRouteVsRaw: 0.9,
  batchRoutesPerS: 25_000,
  wakeP50Ms: 2,
  wakeP99Ms: 10,
  slowOfIdeal: 0.9,
  rssMb: 100,
  bigOfEmpty: 0.9,
  claimBuffers: 20,
  idlePollMs: 1,
  statsMs: 10,
} as const;

/** The bounds the retention rows are held to. */
const RETENTION = {
  /** The worker beside a prune at the default duty cycle keeps this share of its rate. */
  keeps: 0.8,
  /** A prune batch's transaction, the longest it holds any row lock. */
  lockMs: 1_000,
  /** Steady state: the tables after the last day against after the first prunes. */
  growth: 1.05,
} as const;

const ok = (pass: boolean): string => (pass ? "PASS" : "MISS");
const x = (ratio: number): string => `${ratio.toFixed(2)}x`;
const perS = (n: number): string => `${Math.round(n).toLocaleString("en-US")}/s`;

function find(results: readonly Result[], name: string, c: number): Result | undefined {
  return results.find((r) => r.name === name && r.concurrency === c && !r.error && r.routes > 0);
}

function addNote(r: Result, note: string): void {
  r.note = r.note ? `${r.note}; ${note}` : note;
}

/** Adds ratio notes to `results` in place. */
export function summarise(results: Result[]): void {
  for (const r of results) {
    if (r.error || r.routes === 0) continue;
    if (r.name === "per-route") {
      const raw = find(results, "raw", r.concurrency);
      const bench = find(results, "pgbench", r.concurrency);
      if (raw) addNote(r, `${x(r.routes_per_s / raw.routes_per_s)} raw`);
      if (bench) addNote(r, `${x(r.routes_per_s / bench.routes_per_s)} pgbench`);
      const replay = find(results, "pgbench-herald", r.concurrency);
      if (replay) addNote(r, `${x(r.routes_per_s / replay.routes_per_s)} pgbench-herald`);
    } else if (r.name === "raw" || r.name === "pgbench-herald") {
      const bench = find(results, "pgbench", r.concurrency);
      if (bench) addNote(r, `${x(r.routes_per_s / bench.routes_per_s)} pgbench`);
    } else if (r.name === "batch") {
      addNote(r, `${x(r.routes_per_s / TARGETS.batchRoutesPerS)} of the 25,000/s target`);
    } else if (r.ideal_routes_per_s !== undefined) {
      addNote(
        r,
        `${x(r.routes_per_s / r.ideal_routes_per_s)} of ideal ${perS(r.ideal_routes_per_s)}`,
      );
    }
  }
}

/** One line per target: the measured figure, the reference, PASS or MISS. */
export function targetsText(results: readonly Result[]): string {
  return [
    "Targets (ratios from this run):",
    ...perRouteLines(results),
    ...batchLines(results),
    ...wakeLines(results),
    ...slowLines(results),
    ...rssLines(results),
    ...startupLines(results),
    ...bigLines(results),
    ...retentionLines(results),
    ...peerLines(results),
    ...troubleLines(results),
  ].join("\n");
}

/** Rows named `name` that ran and handled routes. */
function measured(results: readonly Result[], name: string): Result[] {
  return results.filter((r) => r.name === name && !r.error && r.routes > 0);
}

/** Per-route against raw (the target), pgbench and graphile-worker (reported). */
function perRouteLines(results: readonly Result[]): string[] {
  const perRoute = measured(results, "per-route");
  if (perRoute.length === 0) return [];
  const lines: string[] = [];
  const cells = perRoute.flatMap((r) => {
    const raw = find(results, "raw", r.concurrency);
    if (!raw) return [];
    const ratio = r.routes_per_s / raw.routes_per_s;
    return [`c${r.concurrency} ${x(ratio)} ${ok(ratio >= TARGETS.perRouteVsRaw)}`];
  });
  if (cells.length > 0) lines.push(`  per-route >= 0.9x same-driver raw: ${cells.join(", ")}`);
  const vsBench = perRoute.flatMap((r) => {
    const bench = find(results, "pgbench", r.concurrency);
    return bench ? [`c${r.concurrency} ${x(r.routes_per_s / bench.routes_per_s)}`] : [];
  });
  if (vsBench.length > 0) lines.push(`  per-route vs pgbench (reported): ${vsBench.join(", ")}`);
  // What Herald's statements allow in a client that costs next to nothing.
  const ceiling = perRoute.flatMap((r) => {
    const replay = find(results, "pgbench-herald", r.concurrency);
    const bench = find(results, "pgbench", r.concurrency);
    return replay && bench
      ? [`c${r.concurrency} ${x(replay.routes_per_s / bench.routes_per_s)}`]
      : [];
  });
  if (ceiling.length > 0) {
    lines.push(
      `  Herald's SQL in pgbench vs the raw SQL in pgbench (reported): ${ceiling.join(", ")}`,
    );
  }
  return lines;
}

/** The best batch row against the batch target. */
function batchLines(results: readonly Result[]): string[] {
  const batch = measured(results, "batch");
  if (batch.length === 0) return [];
  const best = batch.reduce((a, b) => (b.routes_per_s > a.routes_per_s ? b : a));
  return [
    `  batch >= ${perS(TARGETS.batchRoutesPerS)}: best ${
      perS(best.routes_per_s)
    } (K=${best.routesPerTransaction} c=${best.concurrency}) ${
      ok(best.routes_per_s >= TARGETS.batchRoutesPerS)
    }`,
  ];
}

/** Each wake-up row's p50 and p99 against theirs. */
function wakeLines(results: readonly Result[]): string[] {
  return measured(results, "wakeup").map((r) => {
    const pass = (r.p50_ms ?? Infinity) <= TARGETS.wakeP50Ms &&
      (r.p99_ms ?? Infinity) <= TARGETS.wakeP99Ms;
    return `  wake-up c${r.concurrency} p50 <= 2 ms, p99 <= 10 ms: p50 ${
      r.p50_ms?.toFixed(2)
    } ms, p99 ${r.p99_ms?.toFixed(2)} ms, max ${r.max_ms?.toFixed(2)} ms ${ok(pass)}`;
  });
}

/** Each slow-channel row against its ideal rate. */
function slowLines(results: readonly Result[]): string[] {
  return results.filter((r) => r.ideal_routes_per_s !== undefined && !r.error).map((r) => {
    const ratio = r.routes_per_s / r.ideal_routes_per_s!;
    return `  ${r.name} (c${r.concurrency}, K=${r.routesPerTransaction}) within 10% of ideal ${
      perS(r.ideal_routes_per_s!)
    }: ${perS(r.routes_per_s)} = ${x(ratio)} ${ok(ratio >= TARGETS.slowOfIdeal)}`;
  });
}

/**
 * The peak RSS: of the worker alone when `rss` ran (with the runtime's
 * defaults, and with the lean heap flag where the runtime has V8), else of
 * the whole bench process.
 */
function rssLines(results: readonly Result[]): string[] {
  const children = results.filter((r) => r.name === "rss-child" && !r.error);
  const lean = results.filter((r) => r.name === "rss-lean" && !r.error);
  const inProcess = results.filter((r) =>
    r.rss_peak_mb !== undefined &&
    ![
      "raw",
      "pgbench",
      "rss-child",
      "rss-lean",
      "rss-peer",
      "empty-table",
      "big-table",
      "big-claim",
      "idle-poll",
      "stats",
      "stats-backlog",
    ]
      .includes(r.name)
  );
  const rssRows = children.length > 0 ? children : inProcess;
  if (rssRows.length === 0) return [];
  const peakOf = (rows: readonly Result[]) => Math.max(...rows.map((r) => r.rss_peak_mb!));
  const peak = peakOf(rssRows);
  const what = children.length > 0
    ? "worker alone in a child process"
    : "whole bench process; run --only rss for the worker alone";
  // The 100 MB bound is Deno's and Bun's; Node's own heap and code start near it (reported).
  const node = rssRows[0]!.runtime.startsWith("node");
  const verdict = (mb: number) => node ? "(Node: reported)" : ok(mb <= TARGETS.rssMb);
  const lines = [
    `  RSS <= ${TARGETS.rssMb} MB on Deno and Bun (${what}): peak ${peak} MB ${verdict(peak)}`,
  ];
  if (lean.length > 0) {
    const leanPeak = peakOf(lean);
    lines.push(
      `  RSS <= ${TARGETS.rssMb} MB, the same started with ${LEAN_HEAP_FLAG}: peak ${leanPeak} MB ${
        verdict(leanPeak)
      }`,
    );
  }
  const peers = results.filter((r) => r.name === "rss-peer" && !r.error && r.routes > 0);
  if (children.length > 0 && peers.length > 0) {
    const least = Math.min(...peers.map((r) => r.rss_peak_mb!));
    const each = peers.map((r) => `${r.note?.split(" ")[0]} ${r.rss_peak_mb} MB`).join(", ");
    lines.push(
      `  RSS <= every peer's, each alone in a child (same run): ${peak} MB vs ${each} ${
        ok(peak <= least)
      }`,
    );
  }
  return lines;
}

/** Start to first claim, reported without a target. */
function startupLines(results: readonly Result[]): string[] {
  const [startup] = measured(results, "startup");
  if (!startup) return [];
  return [
    `  start -> first claim (reported): p50 ${startup.p50_ms?.toFixed(1)} ms, max ${
      startup.max_ms?.toFixed(1)
    } ms`,
  ];
}

/** The big table against the empty one, the claim's reads and the idle poll. */
function bigLines(results: readonly Result[]): string[] {
  const lines = measured(results, "big-table").flatMap((big) => {
    const empty = results.find((r) =>
      r.name === "empty-table" && r.concurrency === big.concurrency &&
      r.routesPerTransaction === big.routesPerTransaction && !r.error
    );
    if (!empty) return [];
    const ratio = big.routes_per_s / empty.routes_per_s;
    return [
      `  big table within 10% of empty (c${big.concurrency}, K=${big.routesPerTransaction}): ${
        perS(big.routes_per_s)
      } vs ${perS(empty.routes_per_s)} = ${x(ratio)} ${ok(ratio >= TARGETS.bigOfEmpty)}`,
    ];
  });
  for (const r of results.filter((r) => r.name === "big-claim" && r.buffers !== undefined)) {
    lines.push(
      `  a claim reads <= ${TARGETS.claimBuffers} buffers (${
        r.note?.split(":")[0]
      }): ${r.buffers} ${ok(r.buffers! <= TARGETS.claimBuffers)}`,
    );
  }
  for (const r of results.filter((r) => r.name.startsWith("stats") && !r.error)) {
    lines.push(
      `  /metrics scrape (stats()) <= ${TARGETS.statsMs} ms: p50 ${r.p50_ms?.toFixed(2)} ms, p99 ${
        r.p99_ms?.toFixed(2)
      } ms (${r.note?.split(" over ")[1]?.split(";")[0]}) ${
        ok((r.p50_ms ?? Infinity) <= TARGETS.statsMs)
      }`,
    );
  }
  for (const r of results.filter((r) => r.name === "idle-poll" && !r.error)) {
    lines.push(
      `  idle poll <= ${TARGETS.idlePollMs} ms: p50 ${r.p50_ms?.toFixed(3)} ms, p99 ${
        r.p99_ms?.toFixed(3)
      } ms, ${r.buffers} buffers ${ok((r.p50_ms ?? Infinity) <= TARGETS.idlePollMs)}`,
    );
  }
  return lines;
}

/** How many scenarios failed or hit the time cap. */
function troubleLines(results: readonly Result[]): string[] {
  const lines: string[] = [];
  const failed = results.filter((r) => r.error);
  if (failed.length > 0) lines.push(`  ${failed.length} scenario(s) failed: see ERROR notes`);
  const cappedRows = results.filter((r) => r.capped);
  if (cappedRows.length > 0) lines.push(`  ${cappedRows.length} scenario(s) hit the time cap`);
  return lines;
}

/** The Targets block's lines for the retention rows and the partitioned alternative. */
function retentionLines(results: readonly Result[]): string[] {
  const lines: string[] = [];
  const rate = (rows: readonly Result[]): number =>
    rows.reduce((n, r) => n + r.routes, 0) / rows.reduce((n, r) => n + r.seconds, 0);
  const prunes = results.filter((r) => r.name.startsWith("retention-prune") && !r.error);
  for (const name of new Set(prunes.map((r) => r.name))) {
    const d = name.split(" ")[1]!;
    const mine = prunes.filter((r) => r.name === name);
    const bases = results.filter((r) => r.name === `retention-base ${d}` && !r.error);
    if (bases.length === 0) continue;
    const ratio = rate(mine) / rate(bases);
    const flatOut = d === "d=1";
    lines.push(
      `  worker beside a prune (${d}, ${mine.length} window(s)) keeps >= ${RETENTION.keeps}x of its rate: ${
        ratio.toFixed(2)
      }x ${flatOut ? "(flat out: reported)" : ok(ratio >= RETENTION.keeps)}`,
      `  a prune batch holds its locks <= ${RETENTION.lockMs} ms (${d}): max ${
        Math.max(...mine.map((r) => r.lock_ms ?? Infinity))
      } ms ${ok(mine.every((r) => (r.lock_ms ?? Infinity) <= RETENTION.lockMs))}`,
    );
  }
  const sized = results.filter((r) => r.name.startsWith("retention-size") && !r.error);
  const start = sized.find((r) => r.name === "retention-size pruned");
  const end = sized.at(-1);
  if (start?.size_mb && end?.size_mb && end !== start) {
    const growth = end.size_mb / start.size_mb;
    lines.push(
      `  history's size bounded (${CYCLES} days in, a day out, VACUUM): ${start.size_mb} -> ${end.size_mb} MB = ${
        growth.toFixed(3)
      }x ${ok(growth <= RETENTION.growth)}`,
    );
  }
  const update = results.find((r) => r.name === "finalise-update" && !r.error);
  const move = results.find((r) => r.name === "finalise-move" && !r.error);
  if (update && move) {
    lines.push(
      `  partitioned history, moving a route at its outcome (reported): ${
        (move.routes_per_s / update.routes_per_s).toFixed(2)
      }x of finishing it in place`,
    );
  }
  for (const r of results.filter((r) => r.name.startsWith("partition-") && !r.error)) {
    lines.push(
      `  ${r.name} beside a transaction open ${HOLD_MS} ms (reported): ${
        r.seconds.toFixed(2)
      } s, ` +
        `writers' longest insert ${r.max_ms} ms`,
    );
  }
  return lines;
}
