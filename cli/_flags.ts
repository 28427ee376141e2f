/**
 * Flags and environment turned into settings: the options every command
 * shares, numbers, yes/no values, durations and times.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { jsonLogger, prettyLogger } from "../observe/logger.ts";
import type { Logger, LogLevel } from "../observe/logger.ts";
import { DELIVER_AT_RANGE, parseBoolean } from "../core/_validate.ts";
import { checkConnectionUrl } from "../core/_connection_url.ts";
import { DEFAULT_DATA_DIR } from "../embedded.ts";

/** Environment variables, as `process.env` gives them. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Parsed flag values, as `node:util` `parseArgs` gives them. */
export type Values = Readonly<Record<string, string | boolean | string[] | undefined>>;

/** Settings every command shares. */
export interface Common {
  readonly databaseUrl: string | undefined;
  /** Where `LISTEN` connects when `databaseUrl` is a transaction-pooling PgBouncer. */
  readonly listenUrl: string | undefined;
  /** Named prepared statements (off behind PgBouncer 1.18 in transaction mode). */
  readonly prepare: boolean;
  readonly dataDir: string;
  /** Whether the embedded database's commits wait for the disk (fsync). */
  readonly embeddedFsync: boolean;
  readonly schema: string;
  readonly logger: Logger;
}

/** The options every command takes. */
export const COMMON_OPTIONS = {
  "database-url": { type: "string" },
  "listen-url": { type: "string" },
  "no-prepare": { type: "boolean" },
  "data-dir": { type: "string" },
  "no-embedded-fsync": { type: "boolean" },
  schema: { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** The help lines of {@link COMMON_OPTIONS}. */
export const COMMON_HELP = `Common options (each also read from the environment variable shown):
  --database-url URL     DATABASE_URL        the Postgres to use; without it Herald runs on an
                                             embedded database (one connection, concurrency 1,
                                             for development: set DATABASE_URL in production)
  --listen-url URL       HERALD_LISTEN_URL   where LISTEN connects, when --database-url is a
                                             PgBouncer in transaction mode (default: --database-url)
  --no-prepare           HERALD_PREPARE=false  no named prepared statements (PgBouncer 1.18
                                             in transaction mode)
  --data-dir DIR         HERALD_DATA_DIR     the embedded database's directory (default ${DEFAULT_DATA_DIR})
  --no-embedded-fsync    HERALD_EMBEDDED_FSYNC=false  the embedded database does not wait for the
                                             disk at commit: faster, but a power loss or OS crash
                                             can lose recent writes or corrupt it (docs/embedded.md)
  --schema NAME          HERALD_SCHEMA       schema of Herald's tables (default herald)
  --log-level LEVEL      HERALD_LOG_LEVEL    debug | info | warn | error (default info)
  --log-format FORMAT    HERALD_LOG_FORMAT   json | pretty (default json)
  --json                                     machine-readable output on standard output: one
                                             JSON object (routes, destinations: one per line);
                                             run, dashboard and demo only log (see --log-format)
  -h, --help                                 this help`;

/** A flag's value, else the environment variable's. */
export function pick(
  values: Values,
  flag: string,
  env: Env,
  name: string,
): string | undefined {
  const v = values[flag];
  if (typeof v === "string") return v;
  const e = env[name];
  return e === "" ? undefined : e;
}

/** The name a setting came by: its flag when given, else its environment variable. */
export function sourceOf(values: Values, flag: string, name: string): string {
  return typeof values[flag] === "string" ? `--${flag}` : name;
}

/** A connection URL from its flag or variable, checked under the name it came by. */
function connectionUrl(values: Values, flag: string, env: Env, name: string): string | undefined {
  const url = pick(values, flag, env, name);
  if (url !== undefined) checkConnectionUrl(sourceOf(values, flag, name), url);
  return url;
}

/** Reads the common settings. */
export function readCommon(values: Values, env: Env): Common {
  const level = pick(values, "log-level", env, "HERALD_LOG_LEVEL") ?? "info";
  if (!["debug", "info", "warn", "error"].includes(level)) {
    throw new InvalidArgumentError("--log-level", "must be debug, info, warn or error", level);
  }
  const format = pick(values, "log-format", env, "HERALD_LOG_FORMAT") ?? "json";
  if (format !== "json" && format !== "pretty") {
    throw new InvalidArgumentError("--log-format", "must be json or pretty", format);
  }
  const makeLogger = format === "json" ? jsonLogger : prettyLogger;
  return {
    databaseUrl: connectionUrl(values, "database-url", env, "DATABASE_URL"),
    listenUrl: connectionUrl(values, "listen-url", env, "HERALD_LISTEN_URL"),
    prepare: values["no-prepare"] === true
      ? false
      : booleanEnv("HERALD_PREPARE", env["HERALD_PREPARE"], true),
    dataDir: pick(values, "data-dir", env, "HERALD_DATA_DIR") ?? DEFAULT_DATA_DIR,
    embeddedFsync: values["no-embedded-fsync"] === true
      ? false
      : booleanEnv("HERALD_EMBEDDED_FSYNC", env["HERALD_EMBEDDED_FSYNC"], true),
    schema: pick(values, "schema", env, "HERALD_SCHEMA") ?? "herald",
    logger: makeLogger({ level: level as LogLevel }),
  };
}

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

/** A number flag; `undefined` when not given. */
export function numberFlag(field: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  // Decimal only: Number() would also take 0x10, 0b11 and 0o17.
  if (!DECIMAL.test(raw.trim()) || !Number.isFinite(n)) {
    throw new InvalidArgumentError(field, "must be a number", raw);
  }
  return n;
}

/** A boolean environment variable. */
export function booleanEnv(field: string, raw: string | undefined, fallback: boolean): boolean {
  return parseBoolean(field, raw) ?? fallback;
}

const UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parses `500ms`, `30s`, `15m`, `12h`, `7d`, `2w` into milliseconds. */
export function parseDuration(field: string, raw: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(raw?.trim() ?? "");
  if (!m) {
    throw new InvalidArgumentError(
      field,
      "must be a duration such as 90s, 15m, 12h or 30d",
      raw ?? "",
    );
  }
  return Number(m[1]) * UNITS[m[2]!]!;
}

/**
 * Parses a point in time: an ISO 8601 timestamp, or a duration counted from
 * now, back (`ago`: `--since 1h`) or forward (`ahead`: `--deliver-at 5m`).
 */
export function parseTime(
  field: string,
  raw: string,
  direction: "ago" | "ahead",
  now = Date.now(),
): Date {
  const relative = /^\d+(?:\.\d+)?(ms|s|m|h|d|w)$/.test(raw.trim());
  const ms = relative ? parseDuration(field, raw) : 0;
  const d = relative ? new Date(direction === "ago" ? now - ms : now + ms) : isoTime(raw);
  if (Number.isNaN(d.getTime()) && !relative) {
    const duration = direction === "ago" ? "a duration ago (1h)" : "a duration from now (5m)";
    throw new InvalidArgumentError(
      field,
      `must be an ISO 8601 time (2026-01-31T12:00:00Z) or ${duration}`,
      raw,
    );
  }
  if (!(d.getTime() >= DELIVER_AT_RANGE[0] && d.getTime() <= DELIVER_AT_RANGE[1])) {
    throw new InvalidArgumentError(field, "names a time outside the years 1 to 9999", raw);
  }
  return d;
}

/** An ISO 8601 time; an invalid Date for anything else, a day the calendar lacks included. */
function isoTime(raw: string): Date {
  const day = /^(\d{4})-(\d{2})-(\d{2})/.exec(raw);
  // A date that does not exist (2030-02-30) would roll over into the next month.
  if (!day || !isCalendarDate(+day[1]!, +day[2]!, +day[3]!)) return new Date(Number.NaN);
  return new Date(raw);
}

/** Whether `year-month-day` is a day of the calendar (not February 30th). */
function isCalendarDate(year: number, month: number, day: number): boolean {
  const probe = new Date(0);
  probe.setUTCFullYear(year, month - 1, day);
  return probe.getUTCMonth() === month - 1 && probe.getUTCDate() === day;
}

/** `values` without its undefined entries: the flags that were given. */
export function defined<T extends object>(values: T): Defined<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Defined<
    T
  >;
}

/** `T` with each property optional and never `undefined`. */
export type Defined<T> = { [K in keyof T]?: Exclude<T[K], undefined> };
