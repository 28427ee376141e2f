/**
 * Herald's throughput and latency benchmark. Runs against a real Postgres,
 * on a fresh schema per scenario (dropped afterwards), and prints a table
 * (or, with `--json`, one JSON object per scenario).
 *
 * ```sh
 * node_modules/.bin/node bench/throughput.ts
 * node_modules/.bin/deno run -A bench/throughput.ts --only raw,per-route --routes 5000
 * node_modules/.bin/bun bench/throughput.ts --json
 * ```
 *
 * See bench/README.md for what each scenario means.
 *
 * @module
 */
import process from "node:process";
import { setTimeout as nodeSetTimeout } from "node:timers";
import { BenchDb } from "./_db.ts";
import { planScenarios, SCENARIOS } from "./_scenarios.ts";
import type { Options } from "./_scenarios.ts";
import { formatTable, rss, runtimeName } from "./_report.ts";
import type { Result } from "./_report.ts";
import { summarise, targetsText } from "./_targets.ts";

const USAGE = `Usage: bench/throughput.ts [options]
  --only a,b,...        scenarios to run: ${SCENARIOS.join(", ")} (default: all)
  --routes N            routes loaded per throughput scenario (default 20000)
  --routes-per-tick N   the worker's routesPerTick in throughput runs (default 1000)
  --history N           sent routes of history in the big-table rows (default 1000000)
  --future N            not-yet-due routes in the big-table rows (default 200000)
  --peers               also run graphile-worker and pg-boss on the same jobs (Node only)
  --cap SECONDS         time cap per scenario (default 60)
  --url URL             Postgres (default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/test)
  --json                one JSON object per scenario instead of a table
  --help`;

function parseArgs(argv: readonly string[]): Options | string {
  const options: Options = {
    only: new Set(SCENARIOS),
    routes: 20_000,
    routesPerTick: 1000,
    history: 1_000_000,
    future: 200_000,
    peers: false,
    capMs: 60_000,
    url: process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test",
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    if (flag === "--help" || flag === "-h") return USAGE;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    setOption(options, arg, flag, value);
  }
  return options;
}

/** Applies one flag of `arg`; `value()` takes the flag's value (inline or the next argument). */
function setOption(options: Options, arg: string, flag: string, value: () => string): void {
  const count = (min: number): number => {
    const v = value();
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`${flag} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return n;
  };
  switch (flag) {
    case "--only":
      options.only = scenarioNames(value());
      break;
    case "--routes":
      options.routes = count(10);
      break;
    case "--routes-per-tick":
      options.routesPerTick = count(1);
      break;
    case "--peers":
      if (runtimeName().split(" ")[0] !== "node") throw new Error("--peers runs under Node only");
      options.peers = true;
      break;
    case "--history":
      options.history = count(0);
      break;
    case "--future":
      options.future = count(0);
      break;
    case "--cap":
      options.capMs = count(1) * 1000;
      break;
    case "--url":
      options.url = value();
      break;
    case "--json":
      options.json = true;
      break;
    default:
      throw new Error(`unknown option ${JSON.stringify(arg)}`);
  }
}

/** `--only`'s comma-separated list, every name one of {@link SCENARIOS}. */
function scenarioNames(list: string): Set<string> {
  const names = list.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(`--only: unknown scenario ${JSON.stringify(unknown.join(","))}`);
  }
  return new Set(names);
}

/** The options, or the exit code when there is nothing to run (help: 0, bad arguments: 2). */
function readOptions(): Options | number {
  try {
    const parsed = parseArgs(process.argv.slice(2));
    if (typeof parsed !== "string") return parsed;
    console.log(parsed);
    return 0;
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
}

async function main(): Promise<number> {
  const options = readOptions();
  if (typeof options === "number") return options;
  const runtime = runtimeName();
  const db = new BenchDb(options.url);
  const interrupt = (): void => {
    console.error("bench: interrupted; dropping schemas");
    void db.dropAll().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupt);
  try {
    const server = await serverVersion(db, options.url);
    if (server === undefined) return 1;
    progress(
      `${runtime}, Postgres ${server}, ${options.routes} routes, baseline RSS ${
        Math.round(rss() / 1048576)
      } MB`,
    );
    const results = await runScenarios(db, runtime, options);
    summarise(results);
    if (!options.json) {
      console.log(`Herald benchmark: ${runtime}, Postgres ${server}\n`);
      console.log(formatTable(results));
      console.log(`\n${targetsText(results)}`);
    }
    return 0;
  } finally {
    process.off("SIGINT", interrupt);
    await db.dropAll();
  }
}

/** Progress goes to standard error; results to standard output. */
function progress(line: string): void {
  console.error(`bench: ${line}`);
}

/** Postgres's version, or `undefined` (said on standard error) when it cannot be reached. */
async function serverVersion(db: BenchDb, url: string): Promise<string | undefined> {
  try {
    const [row] = await db.admin`SELECT current_setting('server_version') AS v`;
    return String(row?.["v"]);
  } catch (err) {
    console.error(`bench: cannot reach Postgres at ${redactUrl(url)}: ${String(err)}`);
    return undefined;
  }
}

/** Runs the planned scenarios one after another; with `--json`, prints each row as it comes. */
async function runScenarios(db: BenchDb, runtime: string, options: Options): Promise<Result[]> {
  const results: Result[] = [];
  for (const scenario of planScenarios(options)) {
    const produced = await scenario.run(db, runtime);
    for (const result of produced) {
      results.push(result);
      progress(
        `${result.name} c=${result.concurrency} K=${result.routesPerTransaction}: ${
          Math.round(result.routes_per_s)
        } routes/s${result.error ? ` ERROR ${result.error}` : ""}`,
      );
      if (options.json) console.log(JSON.stringify(result));
    }
  }
  return results;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}

const code = await main();
process.exitCode = code;
// Everything is closed by now; if some handle still keeps the loop alive, do not hang.
nodeSetTimeout(() => {
  console.error("bench: forcing exit: a handle kept the event loop alive");
  process.exit(code);
}, 3000).unref();
