/** Spawns Herald's program under the runtime running the test, so each runtime tests itself. */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeKey, scriptArgv } from "../../core/_runtime.ts";
import type { RuntimeKey } from "../../core/_runtime.ts";

const MOD = fileURLToPath(new URL("../../mod.ts", import.meta.url));

/** The name of the runtime running this test. */
export const RUNTIME: RuntimeKey = runtimeKey();

/** The command line that runs the TypeScript file `script` on this runtime. */
export function scriptArgs(script: string, args: readonly string[]): [string, string[]] {
  return [process.execPath, scriptArgv(RUNTIME, script, args)];
}

/** The command line that runs `mod.ts` on this runtime. */
export function programArgs(args: readonly string[]): [string, string[]] {
  return scriptArgs(MOD, args);
}

/** Starts the program; the caller reads its output and waits for it. */
export function startProgram(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  stdin: "ignore" | "pipe" = "ignore",
): ChildProcess {
  return startScript(MOD, args, env, stdin);
}

/** Starts a TypeScript file on this runtime; the caller reads its output and waits for it. */
export function startScript(
  script: string,
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  stdin: "ignore" | "pipe" = "ignore",
): ChildProcess {
  const [exe, argv] = scriptArgs(script, args);
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: "1", ...env })) {
    if (v !== undefined) merged[k] = v;
  }
  const child = spawn(exe, argv, { env: merged, stdio: [stdin, "pipe", "pipe"] });
  // A spawn that fails (EAGAIN on a busy machine) emits "error"; unheard, that
  // is an uncaught exception in the test process (under Bun, every file's).
  // Said here; a waiter on the child's output then fails as its streams end.
  child.on("error", (err) => console.error(`${script}: ${err.message}`));
  return child;
}

/** Runs the program to completion; `input` is piped to its standard input. */
export async function runProgram(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = startProgram(args, env, input === undefined ? "ignore" : "pipe");
  if (input !== undefined) child.stdin!.end(input);
  const { code, stdout, stderr } = await collect(child);
  return { code, stdout, stderr };
}

/** What a child printed, and how it ended. */
export interface ChildOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Gathers a child's standard output and error until it closes. */
export function collect(child: ChildProcess): Promise<ChildOutput> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Resolves when a line of `stream` matches `pattern`. */
export function waitForLine(stream: NodeJS.ReadableStream, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const onData = (d: Buffer | string): void => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      const hit = lines.find((l) => pattern.test(l));
      if (hit !== undefined) {
        stream.off("data", onData);
        resolve(hit);
      }
    };
    stream.on("data", onData);
    stream.on("end", () => reject(new Error(`stream ended before a line matched ${pattern}`)));
  });
}

/**
 * Resolves, once every pattern has matched a line of `stream`, with the
 * matching lines in the order of `patterns` (whatever order they came in,
 * however the output was split into chunks).
 */
export function waitForLines(
  stream: NodeJS.ReadableStream,
  patterns: readonly RegExp[],
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const found: (string | undefined)[] = patterns.map(() => undefined);
    const onData = (d: Buffer | string): void => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        const i = patterns.findIndex((p, j) => found[j] === undefined && p.test(line));
        if (i >= 0) found[i] = line;
      }
      if (found.every((l) => l !== undefined)) {
        stream.off("data", onData);
        resolve(found as string[]);
      }
    };
    stream.on("data", onData);
    stream.on("end", () => reject(new Error(`stream ended before lines matched ${patterns}`)));
  });
}
