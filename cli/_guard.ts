/**
 * The program's last line of defence, installed around every command: an
 * exception nothing caught. One is known and harmless (postgres.js 3.4.9
 * writes to a connection already closed, from a `setImmediate`: upstream
 * issues #1066, #1154, #1208; the queries on it were already rejected), so
 * it is logged and the program goes on. Any other is logged, redacted like
 * every message Herald did not write itself, and ends the program with 1.
 *
 * @module
 */
import process from "node:process";
import type { Logger } from "../observe/logger.ts";
import { redact } from "../core/_redact.ts";

/** Where the handler is installed; `process` outside tests. */
export interface UncaughtTarget {
  on(event: "uncaughtException" | "unhandledRejection", listener: (err: unknown) => void): unknown;
  off(event: "uncaughtException" | "unhandledRejection", listener: (err: unknown) => void): unknown;
}

/** Installs the guard; returns the function that removes it. */
export function guardUncaught(
  logger: Logger,
  secrets: readonly string[],
  target: UncaughtTarget = process,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  const onUncaught = (err: unknown): void => {
    if (isDriverClosedSocketWrite(err)) {
      logger.log(
        "warn",
        "ignored a write to a closed database connection (a known postgres.js issue)",
      );
      return;
    }
    if (isDriverConnectionLoss(err)) {
      // The driver rejected a query of a connection the server ended (a
      // restart, a failover) where nothing awaited it any more: the
      // transaction it belonged to has already failed and been dealt with.
      logger.log("warn", "ignored a lost connection's late error (a known postgres.js issue)");
      return;
    }
    const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
    logger.log("error", "uncaught exception; exiting", { error: redact(text, secrets) });
    exit(1);
  };
  target.on("uncaughtException", onUncaught);
  target.on("unhandledRejection", onUncaught);
  return () => {
    target.off("uncaughtException", onUncaught);
    target.off("unhandledRejection", onUncaught);
  };
}

/** The postgres.js closed-socket write, recognised by its message and frame. */
export function isDriverClosedSocketWrite(err: unknown): boolean {
  if (!(err instanceof TypeError)) return false;
  const stack = err.stack ?? "";
  return /socket\.write|reading 'write'/.test(err.message) && /nextWrite/.test(stack) &&
    /postgres[\\/]src[\\/]connection/.test(stack);
}

/** A stream of the program's output; `process.stdout` and `process.stderr` outside tests. */
export interface OutputStream {
  on(event: "error", listener: (err: unknown) => void): unknown;
  off(event: "error", listener: (err: unknown) => void): unknown;
}

/**
 * Lets a write to a closed pipe go on the program's own output: whoever read
 * it went away (`herald run --once | head -1`), so what is written is
 * dropped and the work goes on, as on Deno and Bun (Node emits the EPIPE as
 * an error no one handles). Nothing is logged: the log may be the pipe that
 * closed. Any other error on them is thrown, for the guard to end the
 * program. Returns the function that removes the listeners.
 */
export function letClosedPipesGo(
  streams: readonly OutputStream[] = [process.stdout, process.stderr],
): () => void {
  const onError = (err: unknown): void => {
    const e = err as { code?: unknown; syscall?: unknown } | null;
    if (e?.code !== "EPIPE" || e.syscall !== "write") throw err;
  };
  for (const stream of streams) stream.on("error", onError);
  return () => {
    for (const stream of streams) stream.off("error", onError);
  };
}

/** A driver error saying the server ended the connection (shutdown, terminate, crash). */
export function isDriverConnectionLoss(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e?.name === "PostgresError" && ["57P01", "57P02", "57P03"].includes(String(e.code));
}
