/**
 * The options of `PostgresStore`.
 *
 * @module
 */
import type { TracerLike } from "../core/telemetry.ts";
import type { SqlHandle } from "./schema.ts";
import type { FieldNames } from "../core/_fields.ts";

/** Options of `PostgresStore`. */
export interface PostgresStoreOptions {
  /** A connection URL (`DATABASE_URL`). Ignored when `sql` is given. */
  readonly url?: string;
  /**
   * Your own `postgres` instance; Herald will not end it on `close()`. Give
   * it at least `concurrency + 1` connections.
   */
  readonly sql?: SqlHandle;
  /** The Postgres schema holding Herald's tables; default `herald`. */
  readonly schema?: string;
  /** Pool size when Herald opens the connection from `url`; default 10. */
  readonly max?: number;
  /**
   * Where `LISTEN` connects, when `url` goes through a pooler in transaction
   * mode (PgBouncer), where `LISTEN` cannot work: the server itself.
   */
  readonly listenUrl?: string;
  /** Named prepared statements; default true. False behind PgBouncer 1.18 in transaction mode. */
  readonly prepare?: boolean;
  /**
   * Traces each enqueue as a producer span `publish herald` (OpenTelemetry
   * API). Default: the global provider's `herald` tracer; `false`: no spans.
   */
  readonly tracer?: TracerLike | false;
}

/** Every option of {@link PostgresStoreOptions}, to refuse a misspelt one (a `shema` would go to `herald`). */
export const STORE_OPTIONS: FieldNames<PostgresStoreOptions> = {
  url: true,
  sql: true,
  schema: true,
  max: true,
  listenUrl: true,
  prepare: true,
  tracer: true,
};
