/**
 * The driver instances Herald opens from a URL: the work pool, and a factory
 * of one-connection instances for `LISTEN` (direct to the server, even when
 * the pool goes through a transaction-pooling PgBouncer).
 *
 * @module
 */
import postgres from "postgres";
import { InvalidArgumentError } from "../core/errors.ts";

/** What {@link connect} needs. */
export interface ConnectOptions {
  readonly url: string;
  readonly max: number;
  /** Where `LISTEN` connects; default `url`. */
  readonly listenUrl?: string;
  /** Named prepared statements; off behind a transaction-pooling PgBouncer 1.18. */
  readonly prepare?: boolean;
}

/**
 * The driver's reconnect backoff, in seconds: 50 ms doubling to 1 s, with
 * jitter, so after an outage every worker is back within about a second of
 * the server accepting connections (the driver's own backoff grows to 20 s).
 */
export function reconnectBackoff(retries: number): number {
  return Math.min(0.05 * 2 ** retries, 1) * (0.75 + Math.random() / 4);
}

/** Opens the pool (lazily: nothing connects before the first query) and the listener factory. */
export function connect(
  options: ConnectOptions,
): { sql: postgres.Sql; listener: () => postgres.Sql } {
  for (const field of ["url", "listenUrl"] as const) {
    const value = options[field];
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      throw new InvalidArgumentError(field, "must be a Postgres connection URL");
    }
  }
  if (options.prepare !== undefined && typeof options.prepare !== "boolean") {
    throw new InvalidArgumentError("prepare", "must be true or false", options.prepare);
  }
  // No `fetch_types`: Herald reads no array columns, and the driver's type
  // fetch on a fresh connection rejects unhandled when that connection is
  // cut mid-fetch (a server restarting), which would end the process.
  const settings = {
    onnotice: () => {},
    fetch_types: false,
    backoff: reconnectBackoff,
    connection: { application_name: "herald" },
  };
  const sql = postgres(options.url, {
    ...settings,
    max: options.max,
    prepare: options.prepare ?? true,
  });
  // Each subscription listens through a driver instance of its own, so a
  // replaced subscription starts from a clean slate (see `listen`).
  const listenUrl = options.listenUrl ?? options.url;
  return { sql, listener: () => postgres(listenUrl, { ...settings, max: 1 }) };
}
