/**
 * The RSS family: a worker alone in a child process of this same runtime
 * (bench/_worker_child.ts), so its memory is not the benchmark's.
 *
 * @module
 */
import { execFile } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeKey, scriptArgv } from "../core/_runtime.ts";
import type { DrainRun } from "./_herald.ts";
import { fromDrain, loaded } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";

/** Per-route at c = 8 and batch K = 100 at c = 4. */
const RSS_RUNS = [[8, 1], [4, 100]] as const;

/** The `rss-child` rows. */
export function planRss(options: Options): Scenario[] {
  if (!options.only.has("rss")) return [];
  return RSS_RUNS.map(([c, k]) => rssChild(options, c, k));
}

function rssChild({ routes, capMs, url }: Options, c: number, k: number): Scenario {
  const shape = { name: "rss-child", concurrency: c, routesPerTransaction: k };
  return loaded(shape, routes, async (_db, schema) => {
    const child = await workerChild([url, schema, c, k, routes, capMs].map(String), capMs);
    return {
      ...fromDrain(child),
      rss_peak_mb: child.peakMb,
      note: `worker alone in a child process (RSS ${child.startMb} MB at start)`,
    };
  });
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
