/**
 * A worker alone in its own process, so its RSS is not the benchmark's:
 * drains an already loaded schema and prints one JSON line with its
 * throughput and its sampled peak RSS. Started by the `rss` scenario with
 * the same runtime as the parent.
 *
 * Usage: _worker_child.ts URL SCHEMA CONCURRENCY ROUTES_PER_TRANSACTION ROUTES CAP_MS
 *
 * @module
 */
import process from "node:process";
import { drain, noopChannel } from "./_herald.ts";
import type { BenchDb } from "./_db.ts";
import { RssSampler } from "./_report.ts";

const [url, schema, c, k, n, cap] = process.argv.slice(2);
if (!url || !schema || !c || !k || !n || !cap) {
  console.error("usage: _worker_child.ts URL SCHEMA CONCURRENCY K ROUTES CAP_MS");
  process.exitCode = 2;
} else {
  const rss = new RssSampler();
  rss.start();
  const startMb = rss.peakMb();
  // drain() only reads the URL from its BenchDb.
  const run = await drain({ url } as BenchDb, schema, {
    concurrency: Number(c),
    routesPerTransaction: Number(k),
    routesPerTick: Math.max(1000, Number(k)),
    routes: Number(n),
    capMs: Number(cap),
    channel: noopChannel,
  });
  const peak = rss.peakMb();
  rss.stop();
  console.log(JSON.stringify({ ...run, startMb, peakMb: peak }));
}
