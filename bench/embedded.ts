/**
 * The embedded database's figures, on Node, Deno and Bun, checked against
 * the targets of issue 18: peak RSS of any `herald` command at most 300 MB,
 * the first `herald demo` at most 2 s to its first delivery, a later open at
 * most 0.5 s; and what fsync on and off cost. A script you run, not a test:
 *
 *   node_modules/.bin/node bench/embedded.ts [--runtimes node,deno,deno+flags,bun] [--routes 1000] [--json]
 *   node_modules/.bin/node bench/embedded.ts --root /path/to/an/older/checkout   (the same, there)
 *
 * The commands run as a user runs them (`node mod.ts`, `deno run -A mod.ts`,
 * `bun run mod.ts`; `deno+flags` is Deno with the V8 flags the program sets
 * on Node, which Deno only takes on its command line), without DATABASE_URL,
 * on a fresh data directory. Peak
 * RSS is the child's own high-water mark (VmHWM, read from /proc every 5 ms,
 * so Linux only). A later open is `openEmbedded()` on an existing database,
 * timed in a child process of the runtime (this file with `--child`), 3
 * times, the median shown; on Node that child sets the same V8 flags as the
 * program. The throughput rows are each a child that enqueues ROUTES routes
 * one transaction each, then delivers them with a Worker and a no-op channel;
 * fsync on, off, on, off (alternated, as the machine's load drifts), each
 * with the child's peak RSS: a worker's after delivering them.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import { runtimeKey, scriptArgv } from "../core/_runtime.ts";
import type { RuntimeKey } from "../core/_runtime.ts";
import { LIGHT_V8_FLAGS } from "../cli/_command.ts";

const HERE = fileURLToPath(import.meta.url);
const BIN = resolve(HERE, "../../node_modules/.bin");
const TARGET = { rssMb: 300, firstDeliveryS: 2, openS: 0.5 };

/** A runtime, or Deno started with the program's V8 flags (`deno run -A --v8-flags=… mod.ts`). */
type Variant = RuntimeKey | "deno+flags";

/** One command's run: wall time, the time to a line, peak RSS. */
interface Run {
  readonly seconds: number;
  readonly toLine: number | undefined;
  readonly peakMb: number;
  readonly code: number | null;
  readonly stderr: string;
}

/** A command running: its pid, its end, and a wait for a line of its standard error. */
interface Running {
  readonly pid: number;
  readonly done: Promise<Run & { stdout: string }>;
  said(pattern: RegExp): Promise<void>;
}

/** Runs `script args` on `runtime` to its end, sampling its VmHWM. */
function measure(
  runtime: Variant,
  script: string,
  args: readonly string[],
  options: { line?: RegExp } = {},
): Promise<Run & { stdout: string }> {
  return start(runtime, script, args, options).done;
}

/** Starts `script args` on `runtime`, sampling its VmHWM; `line` times the first stdout match. */
function start(
  runtime: Variant,
  script: string,
  args: readonly string[],
  options: { line?: RegExp } = {},
): Running {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && k !== "DATABASE_URL") env[k] = v;
  }
  const started = performance.now();
  const key: RuntimeKey = runtime === "deno+flags" ? "deno" : runtime;
  const flags = runtime === "deno+flags" ? LIGHT_V8_FLAGS : [];
  const child = spawn(join(BIN, key), scriptArgv(key, script, args, flags), { env });
  let peak = 0;
  const sample = (): void => {
    try {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch {
      // Exited.
    }
  };
  const timer = setInterval(sample, 5);
  let stdout = "";
  let stderr = "";
  let toLine: number | undefined;
  const waiters: { pattern: RegExp; resolve(): void }[] = [];
  child.stdout.on("data", (d) => {
    stdout += d;
    if (toLine === undefined && options.line?.test(stdout)) {
      toLine = (performance.now() - started) / 1000;
    }
  });
  child.stderr.on("data", (d) => {
    stderr += d;
    for (const w of waiters.filter((w) => w.pattern.test(stderr))) w.resolve();
  });
  child.on("exit", sample);
  const done = new Promise<Run & { stdout: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      resolve({ seconds, toLine, peakMb: peak, code, stdout, stderr });
    });
  });
  const said = (pattern: RegExp): Promise<void> =>
    pattern.test(stderr) ? Promise.resolve() : new Promise((resolve, reject) => {
      waiters.push({ pattern, resolve });
      done.then(() => reject(new Error(`exited before ${pattern}: ${lastLine(stderr)}`)));
    });
  return { pid: child.pid!, done, said };
}

/** A row of the report. */
interface Row {
  readonly runtime: Variant;
  readonly what: string;
  readonly seconds?: number;
  readonly peakMb?: number;
  readonly note?: string;
}

/** The program's rows on one runtime. */
async function programRows(runtime: Variant, root: string, dir: string): Promise<Row[]> {
  const mod = join(root, "mod.ts");
  const dataDir = join(dir, "data");
  const at = ["--data-dir", dataDir];
  const rows: Row[] = [];
  const row = (what: string, r: Run, seconds = r.seconds, note = ""): void => {
    if (r.code !== 0 && r.code !== null) throw new Error(`${runtime} ${what}: ${r.stderr}`);
    rows.push({ runtime, what, seconds, peakMb: r.peakMb, note });
  };
  row("herald --version (no database)", await measure(runtime, mod, ["--version"]));
  for (const what of ["herald demo, first run", "herald demo, later"]) {
    const r = await measure(runtime, mod, ["demo", ...at], { line: /attempt 1 sent/ });
    row(`${what}: to first delivery`, r, r.toLine, `whole demo ${r.seconds.toFixed(2)} s`);
  }
  row("herald run --once, later", await measure(runtime, mod, ["run", "--once", ...at]));
  row("herald stats, later", await measure(runtime, mod, ["stats", ...at]));
  // A worker holds the directory; stats goes through it (a worker that predates that is refused).
  const holder = start(runtime, mod, ["run", "--interval", "60000", ...at]);
  await holder.said(/worker started/);
  const through = await measure(runtime, mod, ["stats", ...at]);
  rows.push({
    runtime,
    what: "herald stats while `herald run` holds it",
    seconds: through.seconds,
    peakMb: through.peakMb,
    note: through.code === 0 ? "through the worker" : `refused: ${lastLine(through.stderr)}`,
  });
  process.kill(holder.pid, "SIGTERM");
  const worker = await holder.done;
  rows.push({ runtime, what: "herald run, the worker above (idle)", peakMb: worker.peakMb });
  return rows;
}

function lastLine(text: string): string {
  return text.trim().split("\n").pop()?.slice(0, 120) ?? "";
}

/**
 * The in-process rows on one runtime, each from a child of its own: three
 * opens of the existing database, then per fsync setting a process that
 * enqueues and delivers ROUTES routes (its peak RSS is a worker's after that).
 */
async function childRows(runtime: Variant, root: string, dir: string, routes: number) {
  const rows: Row[] = [];
  const hasFsync = readFileSync(join(root, "embedded.ts"), "utf8").includes("fsync?: boolean");
  const jobs = [["open"], ...(hasFsync ? [["on"], ["off"], ["on"], ["off"]] : [["as-built"]])];
  for (const [job] of jobs) {
    const args = ["--child", root, join(dir, "data"), String(routes), job!];
    const r = await measure(runtime, HERE, args);
    if (r.code !== 0) throw new Error(`${runtime} child: ${r.stderr}`);
    const row = JSON.parse(r.stdout.trim().split("\n").pop()!);
    rows.push({ runtime, ...row, ...(job === "open" ? {} : { peakMb: r.peakMb }) });
  }
  return rows;
}

/** `--child ROOT DATA_DIR ROUTES JOB`: prints one JSON row. */
async function child(root: string, dataDir: string, routes: number, job: string): Promise<void> {
  // What that checkout's program does on Node before it opens the database.
  const program = await import(pathToFileURL(join(root, "cli", "_command.ts")).href);
  if (runtimeKey() === "node") {
    for (const f of program.LIGHT_V8_FLAGS ?? []) v8.setFlagsFromString(f);
  }
  const { openEmbedded } = await import(pathToFileURL(join(root, "embedded.ts")).href);
  const say = (row: Omit<Row, "runtime">): void => console.log(JSON.stringify(row));
  if (job === "open") {
    const opens: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const db = await openEmbedded({ dataDir });
      opens.push((performance.now() - t) / 1000);
      await db.close();
    }
    return say({
      what: "openEmbedded(), existing database",
      seconds: median(opens),
      note: list(opens),
    });
  }
  const fsync = job === "as-built" ? undefined : job === "on";
  const db = await openEmbedded({ dataDir, fsync, schema: `bench_${job.replace("-", "_")}` });
  try {
    const { enqueue, deliver } = await throughput(root, db, routes);
    const label = fsync === undefined
      ? "as built (fsync off: PGlite's -F)"
      : fsync
      ? "fsync on (default)"
      : "fsync off (--no-embedded-fsync)";
    say({
      what: `${label}: ${routes} routes`,
      note: `enqueue ${enqueue.toFixed(0)}/s, deliver ${deliver.toFixed(0)}/s (a transaction each)`,
    });
  } finally {
    await db.close();
  }
}

/** Enqueues `routes` routes one at a time, then delivers them with a Worker; routes/s of each. */
async function throughput(
  root: string,
  // deno-lint-ignore no-explicit-any
  db: any,
  routes: number,
): Promise<{ enqueue: number; deliver: number }> {
  const { Worker } = await import(pathToFileURL(join(root, "worker.ts")).href);
  await db.store.migrate();
  let t = performance.now();
  for (let i = 0; i < routes; i++) {
    await db.store.enqueue({ kind: "bench" }, [{ channel: "noop", destination: "x" }]);
  }
  const enqueue = routes / ((performance.now() - t) / 1000);
  const worker = new Worker({
    store: db.store,
    channels: { noop: { send: () => Promise.resolve() } },
    logger: { log() {} },
    listen: false,
  });
  t = performance.now();
  let sent = 0;
  for (let n = await worker.tick(); n > 0; n = await worker.tick()) sent += n;
  return { enqueue, deliver: sent / ((performance.now() - t) / 1000) };
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

function list(xs: number[]): string {
  return `runs: ${xs.map((x) => x.toFixed(2)).join(", ")} s`;
}

function report(rows: readonly Row[]): void {
  console.log(
    "runtime    what                                               seconds  peak RSS MB  note",
  );
  for (const r of rows) {
    console.log(
      `${r.runtime.padEnd(10)} ${r.what.padEnd(50)} ${
        (r.seconds === undefined ? "" : r.seconds.toFixed(2)).padStart(7)
      }  ${(r.peakMb === undefined ? "" : r.peakMb.toFixed(0)).padStart(11)}  ${r.note ?? ""}`,
    );
  }
  console.log("\nTargets (issue 18):");
  const check = (ok: boolean): string => (ok ? "PASS" : "MISS");
  for (const runtime of new Set(rows.map((r) => r.runtime))) {
    const mine = rows.filter((r) => r.runtime === runtime);
    const peak = (pick: (r: Row) => boolean): number =>
      Math.max(...mine.filter(pick).map((r) => r.peakMb ?? 0));
    const rss = peak((r) => r.what.startsWith("herald"));
    const worker = peak((r) => / routes$/.test(r.what));
    const first = mine.find((r) => r.what.startsWith("herald demo, first run"))?.seconds ?? NaN;
    const open = mine.find((r) => r.what.startsWith("openEmbedded()"))?.seconds ?? NaN;
    console.log(
      `  ${runtime.padEnd(10)} peak RSS: of any herald command ${rss.toFixed(0)} MB, of a worker ` +
        `process after its routes ${worker.toFixed(0)} MB (<= ${TARGET.rssMb}) ${
          check(Math.max(rss, worker) <= TARGET.rssMb)
        }; first demo to first delivery ${first.toFixed(2)} s (<= ${TARGET.firstDeliveryS}) ${
          check(first <= TARGET.firstDeliveryS)
        }; later open ${open.toFixed(2)} s (<= ${TARGET.openS}) ${check(open <= TARGET.openS)}`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      runtimes: { type: "string", default: "node,deno,deno+flags,bun" },
      routes: { type: "string", default: "1000" },
      root: { type: "string", default: resolve(HERE, "../..") },
      json: { type: "boolean" },
      child: { type: "boolean" },
    },
    allowPositionals: true,
  });
  if (values.child) {
    const [root, dataDir, routes, job] = process.argv.slice(3);
    return await child(root!, dataDir!, Number(routes), job!);
  }
  const rows: Row[] = [];
  for (const runtime of values.runtimes.split(",") as Variant[]) {
    const dir = mkdtempSync(join(tmpdir(), `herald-bench-embedded-${runtime}-`));
    try {
      console.error(`${runtime}: the program…`);
      rows.push(...await programRows(runtime, resolve(values.root), dir));
      console.error(`${runtime}: opens and throughput…`);
      rows.push(...await childRows(runtime, resolve(values.root), dir, Number(values.routes)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (values.json) { for (const r of rows) console.log(JSON.stringify(r)); }
  else report(rows);
}

await main();
