/**
 * The ceiling references: the bare per-route claim transaction (BEGIN;
 * SELECT … FOR UPDATE SKIP LOCKED LIMIT 1; UPDATE; COMMIT), driven by the
 * same `postgres` driver Herald uses and, when installed, by `pgbench`.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import postgres from "postgres";
import type { BenchDb } from "./_db.ts";
import { capped } from "./_db.ts";

/** What a reference run achieved. */
export interface RawRun {
  routes: number;
  seconds: number;
  capped: boolean;
  queries: number;
}

const claimSql = (s: string): string =>
  `SELECT route_id FROM "${s}".notification_routes
   WHERE status = 'queued' AND next_attempt_at <= now()
   ORDER BY priority, next_attempt_at
   LIMIT 1
   FOR UPDATE SKIP LOCKED`;

const updateSql = (s: string, id: string): string =>
  `UPDATE "${s}".notification_routes
   SET status = 'sent', attempts = attempts + 1, sent_at = now(), updated_at = now()
   WHERE route_id = ${id}`;

/**
 * `concurrency` loops, each in its own connection-holding transaction per
 * route, until the table is drained or `capMs` passes. `finalise` writes the
 * outcome of the claimed route `$1` (default: the `UPDATE` above).
 */
export async function rawLoop(
  db: BenchDb,
  schema: string,
  concurrency: number,
  capMs: number,
  countQueries = false,
  finalise: (schema: string, id: string) => string = updateSql,
): Promise<RawRun> {
  let queries = 0;
  const sql = postgres(db.url, {
    max: concurrency,
    onnotice: () => {},
    ...(countQueries ? { debug: () => void queries++ } : {}),
  });
  const claim = claimSql(schema);
  const update = finalise(schema, "$1");
  let stop = false;
  let routes = 0;
  try {
    // Open every connection before the clock starts, as Herald's pool is warmed too.
    await Promise.all(Array.from({ length: concurrency }, () => sql`SELECT pg_sleep(0.01)`));
    queries = 0;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const claimed = await sql.begin(async (tx) => {
          const [row] = await tx.unsafe(claim, [], { prepare: true });
          if (!row) return false;
          await tx.unsafe(update, [row["route_id"]], { prepare: true });
          return true;
        });
        if (!claimed) return;
        routes++;
      }
    };
    const began = performance.now();
    const run = await capped(
      Promise.all(Array.from({ length: concurrency }, loop)),
      capMs,
      () => (stop = true),
    );
    const seconds = (performance.now() - began) / 1000;
    return { routes, seconds, capped: run.capped, queries };
  } finally {
    stop = true;
    await sql.end({ timeout: 5 });
  }
}

/** Where pgbench is, or `undefined`. */
export function findPgbench(): string | undefined {
  const candidates = ["/usr/lib/postgresql/15/bin/pgbench"];
  const path = process.env["PATH"] ?? "";
  for (const dir of path.split(":")) if (dir) candidates.push(join(dir, "pgbench"));
  return candidates.find((p) => existsSync(p));
}

/**
 * The same transaction in pgbench's own C client, `-n -c C -j 2 -M prepared`
 * with `routes / C` transactions per client; resolves with its tps
 * (without connection time). Killed at `capMs`. `text`: another script
 * (Herald's own transaction, from bench/_replay.ts) instead.
 */
export async function pgbench(
  bin: string,
  url: string,
  schema: string,
  concurrency: number,
  routes: number,
  capMs: number,
  text: string = pgbenchScript(schema),
): Promise<{ tps: number; transactions: number; capped: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), "herald-bench-"));
  const script = join(dir, "claim.sql");
  writeFileSync(script, text);
  const u = new URL(url);
  const env: Record<string, string | undefined> = { ...process.env };
  if (u.password) env["PGPASSWORD"] = decodeURIComponent(u.password);
  try {
    const out = await runPgbench(bin, pgbenchArgs(u, script, concurrency, routes), env, capMs);
    if (out.timedOut) return { tps: 0, transactions: 0, capped: true };
    return { ...parsePgbench(out.stdout), capped: false };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The claim transaction as a pgbench script, each statement on one line. */
function pgbenchScript(schema: string): string {
  return [
    "BEGIN;",
    `${claimSql(schema).replace(/\s+/g, " ")} \\gset`,
    `${updateSql(schema, ":route_id").replace(/\s+/g, " ")};`,
    "COMMIT;",
    "",
  ].join("\n");
}

/** `-n -c C -j min(2, C) -t routes/C -M prepared -f script`, then where to connect. */
function pgbenchArgs(u: URL, script: string, concurrency: number, routes: number): string[] {
  const perClient = Math.floor(routes / concurrency);
  return [
    "-n",
    "-c",
    String(concurrency),
    "-j",
    String(Math.min(2, concurrency)),
    "-t",
    String(perClient),
    "-M",
    "prepared",
    "-f",
    script,
    "-h",
    u.hostname,
    "-p",
    u.port || "5432",
    "-U",
    decodeURIComponent(u.username || "postgres"),
    decodeURIComponent(u.pathname.slice(1) || "postgres"),
  ];
}

/** Runs pgbench; `timedOut` when it was killed at `capMs`. */
function runPgbench(
  bin: string,
  args: readonly string[],
  env: Record<string, string | undefined>,
  capMs: number,
): Promise<{ stdout: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { env, timeout: capMs }, (err, stdout, stderr) => {
      const timedOut = child.killed;
      if (err && !timedOut) reject(new Error(`pgbench failed: ${String(stderr).trim()}`));
      else resolve({ stdout: String(stdout), timedOut });
    });
  });
}

/** The tps (without connection time) and the transactions pgbench reports. */
function parsePgbench(stdout: string): { tps: number; transactions: number } {
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  const done = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (!tps || !done) throw new Error(`cannot parse pgbench output: ${stdout.slice(0, 200)}`);
  return { tps: Number(tps[1]), transactions: Number(done[1]) };
}
