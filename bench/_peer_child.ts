/**
 * A peer alone in its own Node process, as bench/_worker_child.ts runs
 * Herald: adds its no-op jobs to a fresh schema of its own, drains them,
 * and prints one JSON line with its throughput and its sampled peak RSS
 * (which includes adding the jobs: a few MB for 20,000). Started by the
 * `rss` scenario under Node, whatever runtime the bench itself runs on.
 *
 * Usage: _peer_child.ts URL PEER JOBS CAP_MS
 * (PEER: graphile, graphile-fastest or pg-boss-batch)
 *
 * @module
 */
import process from "node:process";
import { graphileThroughput, pgBossThroughput } from "./_peers.ts";
import type { PeerThroughput } from "./_peers.ts";
import { RssSampler } from "./_report.ts";

const RUNS: Record<string, (url: string, jobs: number, capMs: number) => Promise<PeerThroughput>> =
  {
    "graphile": (url, jobs, capMs) => graphileThroughput(url, { jobs, mode: "defaults", capMs }),
    "graphile-fastest": (url, jobs, capMs) =>
      graphileThroughput(url, { jobs, mode: "fastest", capMs }),
    "pg-boss-batch": (url, jobs, capMs) => pgBossThroughput(url, { jobs, mode: "batch", capMs }),
  };

const [url, peer, n, cap] = process.argv.slice(2);
const run = peer === undefined ? undefined : RUNS[peer];
if (!url || !run || !n || !cap) {
  console.error(
    `usage: _peer_child.ts URL PEER JOBS CAP_MS (PEER: ${Object.keys(RUNS).join(", ")})`,
  );
  process.exitCode = 2;
} else {
  const rss = new RssSampler();
  rss.start();
  const startMb = rss.peakMb();
  const result = await run(url, Number(n), Number(cap));
  const peakMb = rss.peakMb();
  rss.stop();
  console.log(JSON.stringify({ ...result, startMb, peakMb }));
}
