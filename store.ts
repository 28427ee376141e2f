/**
 * Where routes live. {@link Store} is the narrow, domain-level interface the
 * worker drives; {@link PostgresStore} implements it on the `postgres` driver.
 *
 * Due-ness is decided by one clock: the database's `now()`. Workers on hosts
 * with skewed clocks still agree on which routes are due, and a retry delay is
 * added to the database's clock, not the worker's.
 *
 * @example
 * ```ts
 * import { PostgresStore } from "./store.ts";
 *
 * export async function notifyShipped(url: string): Promise<readonly string[]> {
 *   const store = new PostgresStore({ url });
 *   try {
 *     await store.migrate();
 *     const { routeIds } = await store.enqueue(
 *       { kind: "order.shipped", payload: { order: 42 } },
 *       [{ channel: "webhook", destination: "https://example.com/hooks" }],
 *     );
 *     return routeIds;
 *   } finally {
 *     await store.close();
 *   }
 * }
 * ```
 *
 * @module
 */
import postgres from "postgres";
import { HeraldError, InvalidArgumentError } from "./core/errors.ts";
import type { Finalisation, Route, RouteStatus } from "./core/route.ts";
import { checkEnqueue, isUuid, SCHEMA_NAME } from "./core/_validate.ts";
import type { NotificationInput, RouteInput } from "./core/_validate.ts";
import { migrate, SCHEMA_VERSION } from "./postgres/_migrations.ts";
import { ABANDONED, PgRouteTransaction } from "./postgres/_route_transaction.ts";
import * as admin from "./postgres/_admin.ts";
import { salvage } from "./postgres/_salvage.ts";
import type {
  ChangeResult,
  PruneOptions,
  QueueStats,
  RetrySelection,
  RouteFilter,
} from "./postgres/_admin.ts";

export type {
  ChangeResult,
  PruneOptions,
  QueueStats,
  RetrySelection,
  RouteFilter,
} from "./postgres/_admin.ts";

export type { NotificationInput, RouteInput } from "./core/_validate.ts";

/** What `enqueue` returns. */
export interface Enqueued {
  /** The notification's id. */
  readonly notificationId: string;
  /** One id per route, in the order the routes were given. */
  readonly routeIds: readonly string[];
  /** True when the idempotency key matched an earlier notification: nothing was written. */
  readonly duplicate: boolean;
}

/** A route as stored, for tools and tests. */
export interface RouteRecord {
  /** The route id. */
  readonly id: string;
  /** The notification it delivers. */
  readonly notificationId: string;
  /** The channel's name. */
  readonly channel: string;
  /** Where it goes; may be a credential (a Slack URL): print it redacted. */
  readonly destination: string;
  /** Where it is in its life. */
  readonly status: RouteStatus;
  /** Attempts made so far. */
  readonly attempts: number;
  /** Its own attempt limit, or `null` for the worker's default. */
  readonly maxAttempts: number | null;
  /** Lower runs first. */
  readonly priority: number;
  /** When it is (or was) next due. */
  readonly nextAttemptAt: Date;
  /** The last failure's short, secret-free reason. */
  readonly lastError: string | null;
  /** When it was enqueued. */
  readonly createdAt: Date;
  /** When it last changed. */
  readonly updatedAt: Date;
  /** When it was delivered, if it was. */
  readonly sentAt: Date | null;
}

/** One row of the attempt log. */
export interface AttemptRecord {
  /** The attempt's number (1 = first; restarts after an operator's retry). */
  readonly attempt: number;
  /** When the send started. */
  readonly startedAt: Date;
  /** How long it took, in milliseconds. */
  readonly durationMs: number;
  /** What it led to. */
  readonly outcome: "sent" | "retry" | "failed";
  /** The provider's HTTP status, if any. */
  readonly httpStatus: number | null;
  /** The short, secret-free reason of a failure. */
  readonly error: string | null;
}

/** What {@link RouteTransaction.claimDue} takes. */
export interface ClaimParams {
  /** At most this many routes. */
  readonly limit: number;
  /** Route ids not to claim (handled earlier in the tick, or held back by the worker). */
  readonly exclude: readonly string[];
  /**
   * Only routes of these channels: a worker claims what it can send, so a
   * route for a channel it lacks waits for a worker that has it. Unset: any.
   */
  readonly channels?: readonly string[];
}

/**
 * A claimed route whose transaction failed after its send (the finalise or
 * the commit was refused, or the connection was lost): what
 * {@link Store.salvage} should record in a transaction of its own.
 */
export interface Unrecorded {
  /** The outcome the route's own transaction could not record. */
  readonly record: Finalisation;
  /**
   * The route's `attempts` when it was claimed. The salvage applies only to a
   * route still queued with that count: one recorded after all (a commit
   * whose reply was lost) or claimed since by another worker is left alone.
   */
  readonly claimedAttempts: number;
  /** When even the outcome is refused: hold the route back this long, counting the attempt... */
  readonly holdMs: number;
  /** ...or poison it (no more sends until an operator retries it). */
  readonly poison: boolean;
}

/**
 * What {@link Store.salvage} did with one route: wrote its outcome with its
 * attempt-log row (`recorded`) or without it (`recorded_without_log`);
 * wrote a hold instead (`held`: the attempt counted, the route due again
 * after `holdMs`; `poisoned`: never sent again until an operator retries
 * it); found it changed since the claim (`skipped`); or could write nothing
 * for it (`refused`).
 */
export type SalvageResult =
  | "recorded"
  | "recorded_without_log"
  | "held"
  | "poisoned"
  | "skipped"
  | "refused";

/** Claims and finalises routes inside one open transaction. */
export interface RouteTransaction {
  /**
   * Locks up to `limit` due routes (`FOR UPDATE SKIP LOCKED`), skipping the
   * ids in `exclude` and rows another open transaction holds. The locks last
   * until the transaction ends.
   */
  claimDue(params: ClaimParams): Promise<Route[]>;
  /** Records claimed routes' outcomes; takes effect on commit. */
  finalise(records: readonly Finalisation[]): Promise<void>;
}

/** What a store calls when routes may have become due. */
export interface WakeHandlers {
  /** New routes were committed (Postgres `NOTIFY`). */
  onNotify(): void;
  /** The listener (re)connected: announcements may have been missed, so catch up. */
  onConnect(): void;
}

/** An open subscription to a store's notifications. */
export interface Subscription {
  /** Stops listening. */
  close(): Promise<void>;
  /**
   * Optional: resolves true if the subscription still hears notifications
   * (it sends itself one and waits up to `timeoutMs`). The worker checks it
   * every few seconds and subscribes again when it is false.
   */
  alive?(timeoutMs: number): Promise<boolean>;
}

/** Options of {@link Store.transaction}. */
export interface TransactionOptions {
  /**
   * A safety net: the database ends the transaction if it sits idle (or a
   * statement runs) longer than this, so a wedged worker cannot hold a row
   * lock for ever. Unset: no limit.
   */
  readonly lockTimeoutMs?: number;
}

/**
 * The storage contract the worker drives. Implementations: `PostgresStore`,
 * and `FakeStore` in the tests; one conformance suite runs on both.
 */
export interface Store {
  /** Applies pending migrations; returns the schema version. Safe to run concurrently. */
  migrate(): Promise<number>;
  /**
   * Runs `fn` in a transaction: commit if it resolves, roll back (leaving
   * every route as it was) if it throws.
   */
  transaction<T>(
    fn: (tx: RouteTransaction) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T>;
  /**
   * Records outcomes whose route transaction failed after the send, route by
   * route in one transaction of its own, so one refused record does not take
   * the others with it, and a route the database will not finalise is still
   * sent no more than its attempts allow. Rejects only when nothing could be
   * written at all (with code `HERALD_UNAVAILABLE` when the database could
   * not be reached).
   */
  salvage(routes: readonly Unrecorded[]): Promise<SalvageResult[]>;
  /** Writes a notification and its routes atomically; validates first. */
  enqueue(notification: NotificationInput, routes: readonly RouteInput[]): Promise<Enqueued>;
  /** Reads one route, or `undefined`. */
  getRoute(routeId: string): Promise<RouteRecord | undefined>;
  /** The route's attempt log, oldest first. */
  attempts(routeId: string): Promise<AttemptRecord[]>;
  /**
   * Optional: calls `handlers` when routes are enqueued (and on every
   * reconnect), so workers wake without waiting for their next poll. The
   * table stays the truth; a missed notification only costs latency.
   */
  listen?(handlers: WakeHandlers): Promise<Subscription>;
  /** Releases connections. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * A handle of the `postgres` driver (porsager/postgres): a client made by
 * `postgres(url)`, or the `tx` of `sql.begin((tx) => ...)`. Typed by the one
 * method every handle has, so Herald's API does not tie you to the driver's
 * type declarations; anything else is refused at run time.
 */
export interface SqlHandle {
  /** Runs a query. */
  unsafe(query: string, parameters?: never[]): PromiseLike<unknown>;
}

/** Checks that `value` is a `postgres` driver handle; returns it with the driver's type. */
function driverHandle(field: string, value: unknown): postgres.Sql {
  if (typeof value !== "function" || typeof (value as Partial<SqlHandle>).unsafe !== "function") {
    throw new InvalidArgumentError(field, "must be a postgres.js client or transaction handle");
  }
  return value as postgres.Sql;
}

/** Options of {@link PostgresStore}. */
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
}

/** Checks a schema name; returns it. */
export function checkSchema(schema: unknown): string {
  if (
    typeof schema !== "string" || !SCHEMA_NAME.test(schema) || schema.startsWith("pg_") ||
    schema === "information_schema"
  ) {
    throw new InvalidArgumentError(
      "schema",
      "must be 1-56 characters of a-z, 0-9 and '_', not starting with a digit or 'pg_', " +
        "and not a system schema",
      schema,
    );
  }
  return schema;
}

/**
 * Writes a notification and its routes with the caller's own `postgres`
 * handle, so they commit or roll back with the caller's transaction (the
 * transactional outbox). Given a pool rather than a transaction, it opens one.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { enqueue } from "./store.ts";
 *
 * export async function shipOrder(sql: postgres.Sql, order: number): Promise<void> {
 *   await sql.begin(async (tx) => {
 *     await tx`UPDATE orders SET shipped = true WHERE id = ${order}`;
 *     await enqueue(tx, { kind: "order.shipped", payload: { order } }, [
 *       { channel: "webhook", destination: "https://example.com/hooks" },
 *     ]);
 *   });
 * }
 * ```
 */
export async function enqueue(
  sqlOrTx: SqlHandle,
  notification: NotificationInput,
  routes: readonly RouteInput[],
  options: { readonly schema?: string } = {},
): Promise<Enqueued> {
  const schema = checkSchema(options.schema ?? "herald");
  const checked = checkEnqueue(notification, routes);
  const handle = driverHandle("sqlOrTx", sqlOrTx);
  if ("savepoint" in handle) {
    return await insertNotification(handle as unknown as postgres.TransactionSql, schema, checked);
  }
  const sql = handle;
  return await sql.begin((tx) => insertNotification(tx, schema, checked)) as Enqueued;
}

async function insertNotification(
  tx: postgres.TransactionSql,
  schema: string,
  { notification, routes }: ReturnType<typeof checkEnqueue>,
): Promise<Enqueued> {
  const notificationId = crypto.randomUUID();
  const inserted = await tx`
    INSERT INTO ${tx(schema)}.notifications (id, kind, payload, idempotency_key)
    VALUES (${notificationId}, ${notification.kind}, ${notification.payloadJson}::text::jsonb,
            ${notification.idempotencyKey})
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id`;
  if (inserted.length === 0) {
    const existing = await tx`
      SELECT n.id, coalesce(array_agg(r.route_id ORDER BY r.created_at, r.seq)
               FILTER (WHERE r.route_id IS NOT NULL), '{}') AS route_ids
      FROM ${tx(schema)}.notifications n
      LEFT JOIN ${tx(schema)}.notification_routes r ON r.notification_id = n.id
      WHERE n.idempotency_key = ${notification.idempotencyKey}
      GROUP BY n.id`;
    const row = existing[0];
    if (!row) throw new HeraldError("HERALD_STORE", "idempotency key conflict, but no row found");
    return { notificationId: row["id"], routeIds: row["route_ids"], duplicate: true };
  }
  const rows = routes.map((r, seq) => ({
    route_id: crypto.randomUUID(),
    notification_id: notificationId,
    seq,
    channel: r.channel,
    destination: r.destination,
    max_attempts: r.maxAttempts,
    priority: r.priority,
    deliver_at: r.deliverAt,
  }));
  // The NOTIFY is delivered on commit, and only then: listening workers wake
  // for routes that exist. Whether a route is due now is the database's
  // call, on the clock that decides due-ness, not the application's.
  await tx`
    WITH x AS (
      SELECT * FROM json_to_recordset(${JSON.stringify(rows)}::text::json) AS x(
        route_id uuid, notification_id uuid, seq int, channel text, destination text,
        max_attempts int, priority int, deliver_at timestamptz)
    ), inserted AS (
      INSERT INTO ${tx(schema)}.notification_routes
        (route_id, notification_id, seq, channel, destination, max_attempts, priority,
         next_attempt_at)
      SELECT route_id, notification_id, seq, channel, destination, max_attempts, priority,
             coalesce(deliver_at, now())
      FROM x
    )
    SELECT pg_notify(${wakeChannel(schema)}, '')
    FROM (SELECT 1 FROM x WHERE coalesce(deliver_at, now()) <= clock_timestamp() LIMIT 1) due`;
  return { notificationId, routeIds: rows.map((r) => r.route_id), duplicate: false };
}

/**
 * {@link Store} on PostgreSQL 13+ through the `postgres` driver. Each route
 * transaction holds one connection for as long as its send takes, so the pool
 * must have a connection per concurrent claim loop.
 */
export class PostgresStore implements Store {
  readonly #sql: postgres.Sql;
  readonly #owned: boolean;
  readonly #schema: string;
  readonly #listener: (() => postgres.Sql) | undefined;
  #closing: Promise<void> | undefined;

  /** Connects lazily: nothing happens on the network until the first query. */
  constructor(options: PostgresStoreOptions) {
    this.#schema = checkSchema(options.schema ?? "herald");
    if (options.sql !== undefined) {
      this.#sql = driverHandle("sql", options.sql);
      this.#listener = undefined;
      this.#owned = false;
    } else {
      if (typeof options.url !== "string" || options.url === "") {
        throw new InvalidArgumentError(
          "url",
          "a Postgres connection URL is required when 'sql' is not given",
        );
      }
      const max = options.max ?? 10;
      if (!Number.isInteger(max) || max < 1) {
        throw new InvalidArgumentError("max", "must be a positive integer", max);
      }
      const url = options.url;
      const settings = { onnotice: () => {}, connection: { application_name: "herald" } };
      this.#sql = postgres(url, { ...settings, max });
      // Each subscription listens through a driver instance of its own, so a
      // replaced subscription starts from a clean slate (see `listen`).
      this.#listener = () => postgres(url, { ...settings, max: 1 });
      this.#owned = true;
    }
  }

  /** The schema holding Herald's tables. */
  get schema(): string {
    return this.#schema;
  }

  /** Applies pending migrations under an advisory lock; returns the schema version. */
  async migrate(): Promise<number> {
    return await migrate(this.#sql, this.#schema);
  }

  /** Runs `fn` in a transaction; rolls back if it throws. */
  async transaction<T>(
    fn: (tx: RouteTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const schema = this.#schema;
    let handle: PgRouteTransaction | undefined;
    try {
      return await this.#sql.begin(async (tx) => {
        // Not awaited before `fn`: it goes down the connection in the same
        // write as the claim `fn` issues next and runs before it, so the safety
        // net costs no round trip of its own. Should it fail, the claim fails too.
        const ms = options.lockTimeoutMs === undefined
          ? undefined
          : String(Math.ceil(options.lockTimeoutMs));
        const limits = ms === undefined ? undefined : tx`
          SELECT set_config('idle_in_transaction_session_timeout', ${ms}, true),
                 set_config('statement_timeout', ${ms}, true)`.execute();
        limits?.catch(() => {}); // awaited below; `fn` failing first must not leave it unhandled
        const mine = new PgRouteTransaction(tx, schema);
        handle = mine;
        try {
          const result = await fn(mine);
          await limits;
          return result;
        } catch (err) {
          if (mine.ended) await ABANDONED;
          throw err;
        } finally {
          // When the connection drops, `begin` rejects at once while `fn` may still
          // be running (a send in flight). Once `fn` settles the driver would send
          // COMMIT or ROLLBACK down a connection that may since have been reused by
          // another transaction (or crash writing to a dead socket), so an
          // abandoned scope is never allowed to settle.
          if (mine.ended) await ABANDONED;
        }
      }) as T;
    } finally {
      // The driver must not be handed queries for a transaction that is over:
      // on a dropped connection it would throw outside any promise.
      handle?.end();
    }
  }

  /** Records outcomes whose route transaction failed; see {@link Store.salvage}. */
  async salvage(routes: readonly Unrecorded[]): Promise<SalvageResult[]> {
    return await salvage(this.#sql, this.#schema, routes);
  }

  /** Writes a notification and its routes in one transaction of Herald's own. */
  async enqueue(notification: NotificationInput, routes: readonly RouteInput[]): Promise<Enqueued> {
    return await enqueue(this.#sql, notification, routes, { schema: this.#schema });
  }

  /** Reads one route, or `undefined` (also for a malformed id). */
  async getRoute(routeId: string): Promise<RouteRecord | undefined> {
    if (!isUuid(routeId)) return undefined;
    const rows = await this.#sql`
      SELECT * FROM ${this.#sql(this.#schema)}.notification_routes WHERE route_id = ${routeId}`;
    const row = rows[0];
    return row ? toRecord(row) : undefined;
  }

  /** The route's attempt log, oldest first (empty for an unknown or malformed id). */
  async attempts(routeId: string): Promise<AttemptRecord[]> {
    if (!isUuid(routeId)) return [];
    const rows = await this.#sql`
      SELECT attempt, started_at, duration_ms, outcome, http_status, error
      FROM ${this.#sql(this.#schema)}.route_attempts WHERE route_id = ${routeId} ORDER BY id`;
    return rows.map((r) => ({
      attempt: r["attempt"],
      startedAt: r["started_at"],
      durationMs: r["duration_ms"],
      outcome: r["outcome"],
      httpStatus: r["http_status"],
      error: r["error"],
    }));
  }

  /** Counts by status and channel, the oldest due route's age, the last hour's failures. */
  async stats(): Promise<QueueStats> {
    return await admin.stats(this.#sql, this.#schema);
  }

  /** Routes matching `filter`, newest first. */
  async listRoutes(filter: RouteFilter = {}): Promise<RouteRecord[]> {
    return await admin.listRoutes(this.#sql, this.#schema, filter, toRecord);
  }

  /**
   * Makes routes due now with a fresh attempt budget: by id (sent ones only
   * with `force`), or every failed route (of a channel, since a time). Routes
   * a worker holds right now are skipped, not waited for.
   */
  async retry(
    selection: RetrySelection,
    options: { readonly force?: boolean } = {},
  ): Promise<ChangeResult> {
    return await admin.retry(this.#sql, this.#schema, selection, options);
  }

  /** Cancels queued routes; others (and those in flight) are skipped. */
  async cancel(routeIds: readonly string[]): Promise<ChangeResult> {
    return await admin.cancel(this.#sql, this.#schema, routeIds);
  }

  /** Deletes finished routes older than `olderThanMs`, in batches; never queued ones. */
  async prune(options: PruneOptions): Promise<number> {
    return await admin.prune(this.#sql, this.#schema, options);
  }

  /** Wakes `handlers` on every enqueue (Postgres `LISTEN`, on a connection of its own). */
  async listen(handlers: WakeHandlers): Promise<Subscription> {
    // With a URL, a driver instance per subscription: after a failed re-LISTEN
    // the driver keeps a broken channel entry that a new listen() on the same
    // instance would inherit, so replacing a subscription must start afresh.
    // With your own `sql`, its listen() is used (and a lost LISTEN is noticed
    // by the probe, but may not heal until the process restarts).
    const own = this.#listener?.();
    const listening = own ?? this.#sql;
    const channel = wakeChannel(this.#schema);
    // Probes ride the wake-up channel itself, so they prove that channel is heard;
    // their payload tells them apart from enqueues (whose payload is empty).
    const token = `probe:${crypto.randomUUID()}`;
    const heard = new Set<() => void>();
    let sub: { unlisten(): Promise<void> };
    try {
      sub = await listening.listen(channel, (payload) => {
        if (!payload.startsWith("probe:")) return handlers.onNotify();
        if (payload !== token) return; // another worker's probe: no wake-up
        for (const resolve of heard) resolve();
        heard.clear();
      }, () => handlers.onConnect());
    } catch (err) {
      await own?.end({ timeout: 0 });
      throw err;
    }
    // The probe goes through the subscription's own instance (one idle
    // connection beside its LISTEN session), never the work pool: with every
    // pool connection busy sending, a probe queued behind them would time out
    // and replace a listener that was fine.
    const sql = own ?? this.#sql;
    return {
      async close() {
        // Our own instance: ending it ends its LISTEN session too, and never
        // waits on a connection that may be the reason we are closing.
        if (own) await own.end({ timeout: 0 });
        else await sub.unlisten();
      },
      async alive(timeoutMs) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        let resolve!: () => void;
        const answer = new Promise<boolean>((r) => {
          resolve = () => r(true);
          heard.add(resolve);
          timer = setTimeout(() => r(false), timeoutMs);
        });
        try {
          await sql`SELECT pg_notify(${channel}, ${token})`;
          return await answer;
        } catch {
          return false;
        } finally {
          clearTimeout(timer);
          heard.delete(resolve);
        }
      },
    };
  }

  /** Ends the pool if Herald opened it: waits up to 5 s for queries, then cuts. */
  close(): Promise<void> {
    if (!this.#owned) return Promise.resolve();
    this.#closing ??= this.#sql.end({ timeout: 5 });
    return this.#closing;
  }
}

/** The `LISTEN`/`NOTIFY` channel of a schema's workers. */
export function wakeChannel(schema: string): string {
  return `herald:${schema}`;
}

function toRecord(row: postgres.Row): RouteRecord {
  return {
    id: row["route_id"],
    notificationId: row["notification_id"],
    channel: row["channel"],
    destination: row["destination"],
    status: row["status"],
    attempts: row["attempts"],
    maxAttempts: row["max_attempts"],
    priority: row["priority"],
    nextAttemptAt: row["next_attempt_at"],
    lastError: row["last_error"],
    createdAt: row["created_at"],
    updatedAt: row["updated_at"],
    sentAt: row["sent_at"],
  };
}

export { isUuid, SCHEMA_VERSION };

// The types the API mentions, so this entry point documents them all.
export type { Finalisation, JsonValue, Outcome, Route, RouteStatus } from "./core/route.ts";
