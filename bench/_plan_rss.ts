/**
 * The RSS family: a worker alone in a child process of this same runtime
 * (bench/_worker_child.ts), so its memory is not the benchmark's; then each
 * peer the same way, in a Node child (bench/_peer_child.ts), whatever
 * runtime the bench runs on, so every runtime's run compares with them.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeKey, scriptArgv } from "../core/_runtime.ts";
import type { DrainRun } from "./_herald.ts";
import type { PeerThroughput } from "./_peers.ts";
import { empty, fromDrain, loaded, scenario } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";
import { round } from "./_report.ts";

/** Per-route at c = 8 and batch K = 100 at c = 4. */
const RSS_RUNS = [[8, 1], [4, 100]] as const;

/**
 * The V8 flag docs/scaling.md#a-workers-memory recommends for a long-running worker on
 * Deno and Node: 2 MB young-generation semi-spaces instead of the default,
 * which grows to tens of MB under a worker's load. Bun has no V8, so no
 * `rss-lean` row.
 */
export const LEAN_HEAP_FLAG = "--max-semi-space-size=2";

/** The peers as bench/_peer_child.ts names them, with their concurrency. */
const PEER_RUNS = [["graphile", 10], ["graphile-fastest", 24], ["pg-boss-batch", 1]] as const;

/** The `rss-child` rows, then the `rss-peer` rows. */
export function planRss(options: Options): Scenario[] {
  if (!options.only.has("rss")) return [];
  const lean = runtimeKey() === "bun"
    ? []
    : RSS_RUNS.map(([c, k]) => rssChild(options, c, k, [LEAN_HEAP_FLAG]));
  return [
    ...RSS_RUNS.map(([c, k]) => rssChild(options, c, k, [])),
    ...lean,
    ...PEER_RUNS.map(([peer, c]) => rssPeer(options, peer, c)),
  ];
}

/** A peer draining `routes` jobs alone in a Node child; skipped when no Node is found. */
function rssPeer({ routes, capMs, url }: Options, peer: string, c: number): Scenario {
  const shape = { name: "rss-peer", concurrency: c, routesPerTransaction: 1 };
  const node = nodeBinary();
  if (!node) {
    return {
      run: (_db, runtime) =>
        Promise.resolve([{ ...empty(shape, runtime), note: `${peer}: no node found; skipped` }]),
    };
  }
  return scenario(shape, async () => {
    const script = fileURLToPath(new URL("./_peer_child.ts", import.meta.url));
    const child = await jsonChild<PeerThroughput & { startMb: number; peakMb: number }>(
      node,
      [script, url, peer, String(routes), String(capMs)],
      capMs,
    );
    return {
      routes: child.jobs,
      seconds: round(child.seconds, 3),
      routes_per_s: round(child.jobsPerS, 1),
      capped: child.capped,
      rss_peak_mb: child.peakMb,
      note: `${peer} alone in a Node child (RSS ${child.startMb} MB at start): ${child.note}`,
    };
  });
}

/** This Node, or the one the dev dependencies installed, or one on PATH. */
function nodeBinary(): string | undefined {
  if (runtimeKey() === "node") return process.execPath;
  const candidates = [fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url))];
  for (const dir of (process.env["PATH"] ?? "").split(":")) {
    if (dir) candidates.push(join(dir, "node"));
  }
  return candidates.find((p) => existsSync(p));
}

/** `rss-child`, or with `v8Flags` on the child's command line `rss-lean`. */
function rssChild(
  { routes, capMs, url }: Options,
  c: number,
  k: number,
  v8Flags: readonly string[],
): Scenario {
  const lean = v8Flags.length > 0;
  const shape = { name: lean ? "rss-lean" : "rss-child", concurrency: c, routesPerTransaction: k };
  return loaded(shape, routes, async (_db, schema) => {
    const args = [url, schema, c, k, routes, capMs].map(String);
    const child = await workerChild(args, capMs, v8Flags);
    const how = lean ? `, started with ${v8Flags.join(" ")}` : "";
    return {
      ...fromDrain(child),
      rss_peak_mb: child.peakMb,
      note: `worker alone in a child process${how} (RSS ${child.startMb} MB at start)`,
    };
  });
}

/** Runs bench/_worker_child.ts under this same runtime; resolves with its JSON line. */
function workerChild(
  args: readonly string[],
  capMs: number,
  v8Flags: readonly string[],
): Promise<DrainRun & { startMb: number; peakMb: number }> {
  const script = fileURLToPath(new URL("./_worker_child.ts", import.meta.url));
  return jsonChild(process.execPath, scriptArgv(runtimeKey(), script, args, v8Flags), capMs);
}

/** Runs `bin argv`; resolves with the last line it printed, parsed as JSON. */
function jsonChild<T>(bin: string, argv: readonly string[], capMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(bin, argv, { timeout: capMs + 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`child failed: ${String(stderr).trim() || err}`));
      try {
        resolve(JSON.parse(String(stdout).trim().split("\n").pop() ?? ""));
      } catch {
        reject(new Error(`child printed no result: ${String(stdout).slice(0, 200)}`));
      }
    });
  });
}
