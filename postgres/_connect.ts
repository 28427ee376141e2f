/**
 * The driver instances Herald opens from a URL: the work pool, and a factory
 * of one-connection instances for `LISTEN` (direct to the server, even when
 * the pool goes through a transaction-pooling PgBouncer).
 *
 * @module
 */
import postgres from "postgres";
import { InvalidArgumentError } from "../core/errors.ts";
import { checkConnectionUrl } from "../core/_connection_url.ts";

/** What {@link connect} needs. */
export interface ConnectOptions {
  /** Required; checked here, so a caller may pass what its user gave. */
  readonly url?: string | undefined;
  /** Pool size; default 10. */
  readonly max?: number | undefined;
  /** Where `LISTEN` connects; default `url`. */
  readonly listenUrl?: string | undefined;
  /** Named prepared statements; off behind a transaction-pooling PgBouncer 1.18. */
  readonly prepare?: boolean | undefined;
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
  const url = options.url;
  if (typeof url !== "string" || url === "") {
    throw new InvalidArgumentError(
      "url",
      "a Postgres connection URL is required when 'sql' is not given",
    );
  }
  checkConnectionUrl("url", url);
  const max = options.max ?? 10;
  if (!Number.isInteger(max) || max < 1) {
    throw new InvalidArgumentError("max", "must be a positive integer", max);
  }
  const listenUrl = options.listenUrl ?? url;
  if (typeof listenUrl !== "string" || listenUrl === "") {
    throw new InvalidArgumentError("listenUrl", "must be a Postgres connection URL");
  }
  if (listenUrl !== url) checkConnectionUrl("listenUrl", listenUrl);
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
  const sql = postgres(url, {
    ...settings,
    max,
    prepare: options.prepare ?? true,
  });
  // Each subscription listens through a driver instance of its own, so a
  // replaced subscription starts from a clean slate (see `listen`).
  return { sql, listener: () => postgres(listenUrl, { ...settings, max: 1 }) };
}
