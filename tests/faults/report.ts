/**
 * Runs every fault scenario once at full size (HERALD_FAULTS_FULL=1: 10,000
 * routes in the fleet, 20 kill rounds, 5 restarts, ...) under Node's test
 * runner, one file at a time, and prints the figures as the Markdown table
 * for the README's "Reliability" section.
 *
 *     node_modules/.bin/node tests/faults/report.ts
 *
 * Needs the shared Postgres (DATABASE_URL, default 127.0.0.1:5432/test) and
 * `initdb`/`pg_ctl` for the private cluster of the restart scenario. Exits 1
 * if any scenario failed (the table is printed all the same).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "herald-figures-"));
const file = join(dir, "figures.jsonl");

const code = await new Promise<number>((resolve) => {
  const child = spawn(
    `${ROOT}node_modules/.bin/node`,
    ["--test", "--test-concurrency=1", "tests/faults/*_test.ts"],
    {
      cwd: ROOT,
      stdio: ["ignore", "inherit", "inherit"],
      env: {
        ...process.env,
        DATABASE_URL: process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test",
        HERALD_FAULTS_FULL: "1",
        HERALD_FIGURES_FILE: file,
      },
    },
  );
  child.on("exit", (c) => resolve(c ?? 1));
});

type Figures = Record<string, unknown>;
let rows: Figures[] = [];
try {
  rows = readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) =>
    JSON.parse(l.replace(/^HERALD_FIGURES /, "")) as Figures
  );
} catch {
  // no figures: every scenario failed before printing
}
rmSync(dir, { recursive: true, force: true });

const get = (f: Figures | undefined, ...path: string[]): string => {
  let v: unknown = f;
  for (const k of path) v = (v as Record<string, unknown> | undefined)?.[k];
  return v === undefined || v === null ? "–" : String(v);
};
const by = (name: string): Figures | undefined => rows.find((r) => r["scenario"] === name);
const p50max = (f: Figures | undefined, key: string): string =>
  f ? `p50 ${get(f, key, "p50")} ms, max ${get(f, key, "max")} ms` : "–";

const kill = by("kill_mid_send");
const restart = by("pg_restart");
const term = by("connections_terminated");
const hung = by("hung_channel");
const calm = by("fleet_no_faults");
const storm = by("fleet_kill9");
const table = [
  "| scenario | faults injected | routes | lost | duplicates | recovery |",
  "| --- | --- | --- | --- | --- | --- |",
  `| kill -9 mid-send (Deno, Bun, Node in turn) | ${get(kill, "rounds")} kills | ${
    get(kill, "routes")
  } | ${get(kill, "lost")} | ${get(kill, "duplicates")} | re-claim ${
    p50max(kill, "reclaim_ms")
  } (poll interval ${get(kill, "poll_interval_ms")} ms) |`,
  `| Postgres restart (3 runtimes, private cluster) | ${get(restart, "restarts")} restarts | ${
    get(restart, "routes")
  } | ${get(restart, "lost")} | ${get(restart, "duplicates")} | restart ${
    p50max(restart, "restart_ms")
  }; first delivery after ${p50max(restart, "recovery_ms")} |`,
  `| connections terminated (3 runtimes) | ${get(term, "rounds")} rounds, ${
    get(term, "sessions_terminated")
  } sessions | ${get(term, "routes")} | ${get(term, "lost")} | ${
    get(term, "duplicates")
  } | first delivery after ${p50max(term, "recovery_ms")} |`,
  `| hung channel (send timeout ${
    get(hung, "send_timeout_ms")
  } ms) | 1 hung send | 1 | 0 | 0 | lock released after ${
    get(hung, "send_timeout_lock_held_ms")
  } ms |`,
  `| frozen worker (SIGSTOP mid-send, send timeout ${
    get(hung, "frozen_send_timeout_ms")
  } ms) | 1 frozen worker | 1 | 0 | 0 | lock ended by the safety net after ${
    get(hung, "frozen_worker_lock_held_ms")
  } ms (net ${get(hung, "safety_net_ms")} ms) |`,
  `| fleet, no faults (Deno, Bun, Node, Node) | none | ${get(calm, "routes")} | ${
    get(calm, "lost")
  } | ${get(calm, "duplicates")} | ${get(calm, "routes_per_second")} routes/s |`,
  `| fleet, random kill -9 (seed ${get(storm, "seed")}) | ${get(storm, "kills")} kills | ${
    get(storm, "routes")
  } | ${get(storm, "lost")} | ${get(storm, "duplicates")} (of ${
    get(storm, "in_flight_at_kills")
  } in flight at a kill) | workers restarted at once |`,
];
console.log(`\nReproduce: node_modules/.bin/node tests/faults/report.ts\n\n${table.join("\n")}\n`);
for (const r of rows) console.log(`HERALD_FIGURES ${JSON.stringify(r)}`);
process.exitCode = code;
