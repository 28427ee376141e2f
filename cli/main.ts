/**
 * The `herald` program: parses the command line, builds a store and channels
 * from flags and env, and runs a subcommand. This is the only place that
 * touches process-wide things (env, signals, exit codes); the library never
 * does.
 *
 * Exit codes: 0 success, 1 runtime failure (database unreachable, ...),
 * 2 usage error (unknown subcommand, bad flag value).
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { HeraldError, InvalidArgumentError } from "../errors.ts";
import { jsonLogger, prettyLogger } from "../logger.ts";
import type { Logger, LogLevel } from "../logger.ts";
import { PostgresStore } from "../store.ts";
import { Worker } from "../worker.ts";
import { channelsFromEnv } from "../channels/env.ts";
import { VERSION } from "../version.ts";
import { redact } from "../_redact.ts";

/** Where the program writes; tests pass their own. */
export interface Io {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const USAGE = `herald ${VERSION}: a Postgres-backed notification dispatcher

Usage:
  herald [run] [options]      migrate, then deliver due routes until SIGINT/SIGTERM
  herald migrate [options]    apply migrations and print the schema version
  herald --help | --version

Options (each also read from the environment variable shown):
  --database-url URL        DATABASE_URL       Postgres to use (required for now)
  --schema NAME             HERALD_SCHEMA      schema of Herald's tables (default herald)
  --interval MS             HERALD_INTERVAL_MS poll interval; <= 0 means 5000 (default 5000)
  --routes-per-tick N       HERALD_ROUTES_PER_TICK  routes one tick handles (default 100)
  --concurrency N           HERALD_CONCURRENCY  claim loops, one connection each (default 1);
                            the pool is N connections, plus 1 for LISTEN
  --routes-per-transaction K  HERALD_ROUTES_PER_TRANSACTION  batch mode when K > 1 (default 1)
  --no-listen               HERALD_LISTEN=false  poll only (PgBouncer transaction pooling)
  --max-attempts N          HERALD_MAX_ATTEMPTS attempts before a route fails (default 10)
  --send-timeout MS         HERALD_SEND_TIMEOUT_MS  per-send timeout (default 30000)
  --once                    drain what is due now, then exit 0 (cron, tests)
  --log-level LEVEL         HERALD_LOG_LEVEL   debug | info | warn | error (default info)
  --log-format FORMAT       HERALD_LOG_FORMAT  json | pretty (default json)

Channels are configured from the environment; see docs/channels.md. The log
channel is always there; webhook too (unsigned unless HERALD_WEBHOOK_SECRET).

Exit codes: 0 ok, 1 runtime failure, 2 usage error.`;

const OPTIONS = {
  "database-url": { type: "string" },
  schema: { type: "string" },
  interval: { type: "string" },
  "routes-per-tick": { type: "string" },
  concurrency: { type: "string" },
  "routes-per-transaction": { type: "string" },
  "no-listen": { type: "boolean" },
  "max-attempts": { type: "string" },
  "send-timeout": { type: "string" },
  once: { type: "boolean" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const;

/** Runs the program; resolves with the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: [...argv],
        options: OPTIONS,
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      io.err(`herald: ${(err as Error).message}\nRun 'herald --help' for usage.`);
      return 2;
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    if (values.version) {
      io.out(VERSION);
      return 0;
    }
    const [command = "run", ...rest] = positionals;
    if (rest.length > 0) {
      io.err(`herald: unexpected argument '${rest[0]}'\nRun 'herald --help' for usage.`);
      return 2;
    }
    const config = readConfig(values, io.env);
    switch (command) {
      case "run":
        return await runCommand(config, Boolean(values.once), io);
      case "migrate":
        return await migrateCommand(config, io);
      default:
        io.err(`herald: unknown command '${command}'\nRun 'herald --help' for usage.`);
        return 2;
    }
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      io.err(`herald: ${err.message}`);
      return 2;
    }
    const secrets = [io.env["DATABASE_URL"] ?? ""].filter((s) => s.length > 0);
    const code = err instanceof HeraldError ? ` [${err.code}]` : "";
    io.err(`herald: ${redact(err instanceof Error ? err.message : String(err), secrets)}${code}`);
    return 1;
  }
}

interface Config {
  readonly databaseUrl: string | undefined;
  readonly schema: string;
  readonly interval: number | undefined;
  readonly routesPerTick: number | undefined;
  readonly concurrency: number | undefined;
  readonly routesPerTransaction: number | undefined;
  readonly listen: boolean;
  readonly maxAttempts: number | undefined;
  readonly sendTimeoutMs: number | undefined;
  readonly logger: Logger;
}

function readConfig(
  values: Record<string, string | boolean | undefined>,
  env: Io["env"],
): Config {
  const pick = (flag: string, name: string): string | undefined => {
    const v = values[flag];
    return typeof v === "string" ? v : env[name];
  };
  const level = pick("log-level", "HERALD_LOG_LEVEL") ?? "info";
  if (!["debug", "info", "warn", "error"].includes(level)) {
    throw new InvalidArgumentError("--log-level", "must be debug, info, warn or error", level);
  }
  const format = pick("log-format", "HERALD_LOG_FORMAT") ?? "json";
  if (format !== "json" && format !== "pretty") {
    throw new InvalidArgumentError("--log-format", "must be json or pretty", format);
  }
  const makeLogger = format === "json" ? jsonLogger : prettyLogger;
  return {
    databaseUrl: pick("database-url", "DATABASE_URL"),
    schema: pick("schema", "HERALD_SCHEMA") ?? "herald",
    interval: number("--interval", pick("interval", "HERALD_INTERVAL_MS")),
    routesPerTick: number("--routes-per-tick", pick("routes-per-tick", "HERALD_ROUTES_PER_TICK")),
    concurrency: number("--concurrency", pick("concurrency", "HERALD_CONCURRENCY")),
    routesPerTransaction: number(
      "--routes-per-transaction",
      pick("routes-per-transaction", "HERALD_ROUTES_PER_TRANSACTION"),
    ),
    listen: values["no-listen"] === true
      ? false
      : flag("HERALD_LISTEN", env["HERALD_LISTEN"], true),
    maxAttempts: number("--max-attempts", pick("max-attempts", "HERALD_MAX_ATTEMPTS")),
    sendTimeoutMs: number("--send-timeout", pick("send-timeout", "HERALD_SEND_TIMEOUT_MS")),
    logger: makeLogger({ level: level as LogLevel }),
  };
}

function flag(field: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new InvalidArgumentError(field, "must be true or false", raw);
}

function number(field: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) {
    throw new InvalidArgumentError(field, "must be a number", raw);
  }
  return n;
}

function openStore(config: Config): PostgresStore {
  if (!config.databaseUrl) {
    throw new InvalidArgumentError(
      "DATABASE_URL",
      "is not set; give --database-url or set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)",
    );
  }
  // One connection per claim loop; LISTEN takes one more of its own.
  const max = Math.max(1, Math.min(config.concurrency ?? 1, 1_000));
  return new PostgresStore({ url: config.databaseUrl, schema: config.schema, max });
}

async function migrateCommand(config: Config, io: Io): Promise<number> {
  const store = openStore(config);
  try {
    const version = await store.migrate();
    io.out(`schema "${config.schema}" is at version ${version}`);
    return 0;
  } finally {
    await store.close();
  }
}

async function runCommand(config: Config, once: boolean, io: Io): Promise<number> {
  const store = openStore(config);
  try {
    const worker = new Worker({
      store,
      channels: channelsFromEnv(io.env),
      logger: config.logger,
      listen: config.listen,
      ...defined({
        interval: config.interval,
        routesPerTick: config.routesPerTick,
        concurrency: config.concurrency,
        routesPerTransaction: config.routesPerTransaction,
        maxAttempts: config.maxAttempts,
        sendTimeoutMs: config.sendTimeoutMs,
      }),
    });
    await store.migrate();
    if (once) {
      let total = 0;
      for (let n = await worker.tick(); n > 0; n = await worker.tick()) total += n;
      config.logger.log("info", "drained", { routes: total });
      return 0;
    }
    const stop = new AbortController();
    let signals = 0;
    const onSignal = (name: string) => () => {
      signals++;
      config.logger.log(
        "info",
        signals === 1 ? `${name}: shutting down` : `${name}: aborting sends now`,
      );
      if (signals === 1) stop.abort();
      else void worker.shutdown({ timeoutMs: 0 });
    };
    const onInt = onSignal("SIGINT");
    const onTerm = onSignal("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    try {
      await worker.run(stop.signal);
    } finally {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    }
    return 0;
  } finally {
    await store.close();
  }
}

function defined<T extends Record<string, unknown>>(
  o: T,
): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never;
}

function defaultIo(): Io {
  return {
    env: process.env,
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  };
}
