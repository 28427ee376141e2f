/**
 * Structured logging. Herald logs one JSON object per line by default; plug in
 * your own {@link Logger} to route lines elsewhere. Levels mean something:
 * `warn` = something failed and the loop goes on, `error` = someone must act.
 *
 * @module
 */
import { redact } from "../core/_redact.ts";
import { activeTraceIds } from "./tracing.ts";

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Extra fields of a log line. Values must be secret-free. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** What Herald logs through. */
export interface Logger {
  /** Logs at `level`. */
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Options of {@link jsonLogger} and {@link prettyLogger}. */
export interface LoggerOptions {
  /** Lines below this level are dropped; default `info`. */
  readonly level?: LogLevel;
  /** Where lines go; default standard error (`console.error`). */
  readonly write?: (line: string) => void;
  /** The clock stamped on each line; default `Date.now`. */
  readonly now?: () => number;
}

/**
 * One JSON object per line: `{"time":…,"level":…,"msg":…,...fields}`. String
 * fields pass through {@link redact} as a last line of defence.
 *
 * @example
 * ```ts
 * import { jsonLogger } from "./logger.ts";
 * const logger = jsonLogger({ level: "debug" });
 * logger.log("info", "worker started", { concurrency: 1 });
 * ```
 */
export function jsonLogger(options: LoggerOptions = {}): Logger {
  return lineLogger(
    options,
    (time, level, msg, fields) =>
      JSON.stringify({ time: new Date(time).toISOString(), level, msg, ...fields }),
  );
}

/** Human-readable lines: `12:00:00.000 WARN tick failed error=…`. */
export function prettyLogger(options: LoggerOptions = {}): Logger {
  return lineLogger(options, (time, level, msg, fields) => {
    const rest = Object.entries(fields).map(([k, v]) => ` ${k}=${JSON.stringify(v)}`);
    return `${new Date(time).toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${
      rest.join("")
    }`;
  });
}

/** Level filtering, the clock, redaction and the sink, shared by both formats. */
function lineLogger(
  options: LoggerOptions,
  format: (time: number, level: LogLevel, msg: string, fields: CleanFields) => string,
): Logger {
  const min = RANK[options.level ?? "info"];
  const write = options.write ?? ((line: string) => console.error(line));
  const now = options.now ?? Date.now;
  return {
    log(level, message, fields = {}) {
      if (RANK[level] < min) return;
      // A line written inside a span (a send) carries its trace and span ids.
      write(format(now(), level, redact(message), { ...activeTraceIds(), ...cleanFields(fields) }));
    },
  };
}

/** A logger that drops everything (tests, embedding). */
export const silentLogger: Logger = { log() {} };

type CleanFields = Record<string, string | number | boolean | null>;

function cleanFields(fields: LogFields): CleanFields {
  const out: CleanFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = typeof value === "string" ? redact(value) : value;
  }
  return out;
}
