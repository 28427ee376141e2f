/**
 * Herald's program as a child process under a runtime of the test's choosing
 * (tests/_helpers/spawn.ts only spawns the runtime running the test). Every
 * process started here is registered, so `killAll()` in an `after` hook
 * leaves nothing behind even when a test fails half-way.
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeKey, scriptArgv } from "../../core/_runtime.ts";
import type { RuntimeKey } from "../../core/_runtime.ts";

/** The three runtimes Herald runs on. */
export type Runtime = RuntimeKey;

/** Deno, Bun and Node, in the order fault rounds take turns. */
export const RUNTIMES: readonly Runtime[] = ["deno", "bun", "node"];

/** The name of the runtime running this test. */
export const CURRENT: Runtime = runtimeKey();

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MOD = `${ROOT}mod.ts`;
const BIN = `${ROOT}node_modules/.bin/`;

/** The command line that runs `mod.ts` under `runtime`. */
export function commandFor(runtime: Runtime, args: readonly string[]): [string, string[]] {
  return [`${BIN}${runtime}`, scriptArgv(runtime, MOD, args)];
}

/** One line the program wrote on standard error: its JSON log line, or `{ msg: raw }`. */
export interface LogLine {
  readonly level?: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A running (or finished) program. */
export interface Program {
  /** Unique; also the `application_name` of its database sessions. */
  readonly name: string;
  readonly runtime: Runtime;
  readonly pid: number;
  /** Every log line so far. */
  readonly logs: readonly LogLine[];
  /** Resolves on exit with the exit code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** How it ended, once it has; `undefined` while it runs. */
  readonly exit: { code: number | null; signal: string | null } | undefined;
  /** Lines it wrote that are not JSON log lines (an uncaught exception's stack, say). */
  readonly rawOutput: string;
  /** Resolves with the first line (already written or to come) `match` accepts. */
  waitForLog(match: (line: LogLine) => boolean, what?: string): Promise<LogLine>;
  /** Sends `signal` (default SIGKILL); for SIGKILL and SIGTERM resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<Program>();
let counter = 0;

// Last resort if a runner exits without running `after` hooks.
process.on("exit", () => {
  for (const p of live) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
});

/**
 * Starts `mod.ts <args>` under `runtime`. `env` is added to this process's
 * environment; `DATABASE_URL` gets an `application_name` naming the process,
 * so a test can find (and terminate) exactly its sessions.
 */
export function startProgram(
  runtime: Runtime,
  args: readonly string[],
  env: Record<string, string>,
  label = "hf",
): Program {
  const name = `${label}_${runtime}_${process.pid}_${++counter}`;
  const url = env["DATABASE_URL"];
  const withName = url === undefined
    ? {}
    : { DATABASE_URL: `${url}${url.includes("?") ? "&" : "?"}application_name=${name}` };
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: "1", ...env, ...withName })) {
    if (v !== undefined) merged[k] = v;
  }
  const [exe, argv] = commandFor(runtime, args);
  const child: ChildProcess = spawn(exe, argv, {
    env: merged,
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let buffer = "";
  child.stdout!.resume(); // drained, so a chatty channel never blocks the child
  child.stderr!.on("data", (d: Buffer | string) => {
    buffer += d.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    for (const raw of parts) {
      if (raw.trim() === "") continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
        if (typeof line !== "object" || line === null || typeof line.msg !== "string") {
          line = { msg: raw };
        }
      } catch {
        line = { msg: raw };
      }
      logs.push(line);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i]!;
        if (w.match(line)) {
          waiters.splice(i, 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: "spawn error" }));
  });
  let exit: { code: number | null; signal: string | null } | undefined;
  void exited.then((e) => (exit = e));
  const program: Program = {
    name,
    runtime,
    pid: child.pid ?? -1,
    logs,
    exited,
    get exit() {
      return exit;
    },
    get rawOutput() {
      return logs.filter((l) => l.level === undefined).map((l) => l.msg).join("\n");
    },
    waitForLog(match, what = "a matching log line") {
      const hit = logs.find(match);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        waiters.push({ match, resolve });
        void exited.then(({ code, signal }) => {
          const tail = logs.slice(-10).map((l) => JSON.stringify(l)).join("\n");
          reject(
            new Error(
              `${name} exited (code ${code}, signal ${signal}) before ${what}; last lines:\n${tail}`,
            ),
          );
        });
      });
    },
    async kill(signal = "SIGKILL") {
      if (exit !== undefined || child.pid === undefined) return;
      // process.kill, not child.kill: after a SIGSTOP, Deno's child.kill ignores later signals.
      try {
        process.kill(child.pid, signal);
      } catch {
        return; // already gone
      }
      if (signal === "SIGKILL" || signal === "SIGTERM") await exited;
    },
  };
  live.add(program);
  void exited.then(() => live.delete(program));
  return program;
}

/** Starts a `herald run` worker and resolves once it logs "worker started". */
export async function startWorker(
  runtime: Runtime,
  flags: readonly string[],
  env: Record<string, string>,
  label?: string,
): Promise<Program> {
  const program = startProgram(runtime, ["run", ...flags], env, label);
  await program.waitForLog((l) => l.msg === "worker started", "'worker started'");
  return program;
}

/** SIGKILLs every program still running (for `after` hooks); waits for each to exit. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill("SIGKILL")));
}

/** What a program left behind when it died: raw output and its error-level log lines. */
export function deathNote(p: Program): string {
  const errors = p.logs.filter((l) => l.level === "error").map((l) => JSON.stringify(l));
  return [p.rawOutput, ...errors].join("\n");
}
