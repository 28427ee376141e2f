/**
 * Hostile peers for the security tests: HTTP receivers that answer with an
 * error echoing the whole request (path, headers, body) back, the way a
 * careless provider or an attacker-controlled receiver would, and a program
 * runner that kills the child if it outlives a deadline.
 */
import type { ServerResponse } from "node:http";
import { type RecordedRequest, startServer, type TestServer } from "./http_server.ts";
import { collect, startProgram } from "./spawn.ts";

/**
 * The request as text: first a compact line with everything a credential
 * travels in (path, decoded path, auth headers, a decoded Basic credential),
 * then every header and the body.
 */
export function echoOf(req: RecordedRequest): string {
  let decoded = req.path;
  try {
    decoded = decodeURIComponent(req.path);
  } catch {
    // keep the raw path only
  }
  const auth = ["authorization", "x-postmark-server-token", "webhook-signature"]
    .map((h) => `${h}=${req.headers[h] ?? "-"}`).join(" ");
  const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join("\n");
  return `${req.method} ${req.path} decoded=${decoded} ${auth} basic=${
    basicOf(req.headers["authorization"])
  }\n${headers}\n\n${req.body}`;
}

/** A Basic credential decoded, as a "helpful" receiver might print it. */
function basicOf(value: string | undefined): string {
  const m = /^Basic (.+)$/i.exec(value ?? "");
  if (!m) return "-";
  try {
    return atob(m[1]!);
  } catch {
    return "-";
  }
}

/** How an echo server answers. */
export interface EchoOptions {
  /** HTTP status; default 400 (permanent). */
  readonly status?: number;
  /** Characters of filler before the echo, to move a secret across a truncation point. */
  readonly pad?: number;
  /** The filler's character; default `#` (whitespace folds to one space in an excerpt). */
  readonly padWith?: string;
  /** Answer as JSON `{ ok: false, description }` (Telegram's shape) instead of plain text. */
  readonly json?: boolean;
}

/** A server answering every request with an error that echoes it back. */
export function echoServer(options: EchoOptions = {}): Promise<TestServer> {
  return startServer((req: RecordedRequest, res: ServerResponse) => {
    const text = `${(options.padWith ?? "#").repeat(options.pad ?? 0)}${echoOf(req)}`;
    const body = options.json
      ? JSON.stringify({ ok: false, error_code: options.status ?? 400, description: text })
      : text;
    res.writeHead(options.status ?? 400, {
      "content-type": options.json ? "application/json" : "text/plain",
      // Even the headers try to carry it back.
      "x-echo-path": encodeURIComponent(req.path).slice(0, 1000),
    });
    res.end(body);
  });
}

/** Runs the program with a deadline; the child is killed (SIGKILL) if it outlives it. */
export function runProgramWithin(
  args: readonly string[],
  env: Record<string, string | undefined>,
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const child = startProgram(args, env);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  return collect(child).then(
    ({ code, stdout, stderr }) => ({ code, stdout, stderr, timedOut }),
  ).finally(() => clearTimeout(timer));
}

/** Runs `jobs` with at most `width` at a time, keeping the results in order. */
export async function inBatches<T>(
  jobs: readonly (() => Promise<T>)[],
  width: number,
): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, jobs.length) }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  });
  await Promise.all(lanes);
  return out;
}

/**
 * Where a planted secret shows up in `text`: the whole secret, or any
 * 10-character piece of it (a secret cut by a truncation still leaks).
 */
export function leakOf(text: string, secret: string, piece = 10): string | undefined {
  if (text.includes(secret)) return secret;
  for (let i = 0; i + piece <= secret.length; i++) {
    const part = secret.slice(i, i + piece);
    if (text.includes(part)) return part;
  }
  return undefined;
}
