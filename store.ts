/**
 * Where routes live. {@link Store} is the narrow, domain-level interface the
 * worker drives; {@link PostgresStore} implements it on the `postgres` driver.
 *
 * Every time is the database's: due-ness its `now()`, outcomes its
 * `clock_timestamp()`, so workers with skewed clocks still agree.
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
import type postgres from "postgres";
import type { TracerLike } from "./core/telemetry.ts";
import type {
  AttemptRecord,
  Enqueued,
  Finalisation,
  NotificationInput,
  Route,
  RouteInput,
  RouteRecord,
} from "./core/route.ts";
import type {
  ClaimParams,
  SalvageResult,
  Subscription,
  TransactionOptions,
  Unrecorded,
  WakeHandlers,
} from "./core/transaction.ts";
import type * as Op from "./core/operator.ts";
import { isUuid } from "./core/_validate.ts";
import { migrate, SCHEMA_VERSION, schemaVersion } from "./postgres/_migrations.ts";
import { routeTransaction } from "./postgres/_route_transaction.ts";
import * as admin from "./postgres/_admin.ts";
import { salvage } from "./postgres/_salvage.ts";
import { listen } from "./postgres/_listen.ts";
import { connect } from "./postgres/_connect.ts";
import { type PostgresStoreOptions, STORE_OPTIONS } from "./postgres/options.ts";
import { refuseUnknownOptions } from "./core/_fields.ts";
import { toAttempt, toRecord } from "./postgres/_records.ts";
import { checkSchema, driverHandle } from "./postgres/schema.ts";
import { enqueue } from "./postgres/enqueue.ts";
import * as destinations from "./postgres/destinations.ts";
import type * as D from "./core/destination.ts";

export { checkSchema, wakeChannel } from "./postgres/schema.ts";
export type { SqlHandle } from "./postgres/schema.ts";
export type { PostgresStoreOptions } from "./postgres/options.ts";
export { enqueue } from "./postgres/enqueue.ts";
export { DESTINATION_DEFAULTS } from "./core/destination.ts";
export { destinationKey } from "./core/destination_key.ts";
export type * from "./core/destination.ts";
export type * from "./core/operator.ts";
export type * from "./core/transaction.ts";
export type * from "./core/route.ts";

/** Claims and finalises routes inside one open transaction. */
export interface RouteTransaction {
  /**
   * Locks up to `limit` due routes (`FOR UPDATE SKIP LOCKED`), skipping the
   * ids in `exclude` and rows another open transaction holds. The locks last
   * until the transaction ends.
   */
  claimDue(params: ClaimParams): Promise<Route[]>;
  /**
   * Records claimed routes' outcomes; takes effect on commit. Given
   * `fallbacks` (one per record), a store that can record outcomes only in
   * part does what `salvage` would, in this transaction while it holds the
   * routes, and resolves with each route's result; `undefined`: all recorded.
   * A store may ignore `fallbacks` and reject instead (the worker then
   * salvages in a transaction of its own).
   */
  finalise(
    records: readonly Finalisation[],
    fallbacks?: readonly Unrecorded[],
  ): Promise<readonly SalvageResult[] | undefined | void>;
  /**
   * Optional: applies what this transaction's sends said about their
   * destinations (after `finalise`, before commit): counts failures, opens,
   * closes or disables each by `nextDestination`'s rules, and holds the
   * queued routes of one left blocked. Resolves with the changes of state.
   * A store without it keeps no destination health.
   */
  reportDestinations?(
    reports: readonly D.DestinationReport[],
    policy: D.DestinationPolicy,
  ): Promise<readonly D.DestinationChange[]>;
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
 * {@link Store} on PostgreSQL 13+ through the `postgres` driver. Each route
 * transaction holds one connection for as long as its send takes, so the pool
 * must have a connection per concurrent claim loop.
 */
export class PostgresStore implements Store, D.DestinationAdmin {
  readonly #sql: postgres.Sql;
  readonly #owned: boolean;
  readonly #schema: string;
  readonly #tracer: TracerLike | false | undefined;
  readonly #listener: (() => postgres.Sql) | undefined;
  #closing: Promise<void> | undefined;

  /** Connects lazily: nothing happens on the network until the first query. */
  constructor(options: PostgresStoreOptions) {
    refuseUnknownOptions(options, STORE_OPTIONS, "PostgresStore");
    this.#schema = checkSchema(options.schema ?? "herald");
    this.#tracer = options.tracer;
    if (options.sql !== undefined) {
      this.#sql = driverHandle("sql", options.sql);
      this.#listener = undefined;
      this.#owned = false;
    } else {
      const opened = connect(options);
      this.#sql = opened.sql;
      this.#listener = opened.listener;
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

  /** The schema's version as it is, changing nothing: 0 when it holds no Herald tables. */
  async schemaVersion(): Promise<number> {
    return await schemaVersion(this.#sql, this.#schema);
  }

  /** Runs `fn` in a transaction; rolls back if it throws. */
  async transaction<T>(
    fn: (tx: RouteTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    return await routeTransaction(this.#sql, this.#schema, fn, options);
  }

  /** Records outcomes whose route transaction failed; see {@link Store.salvage}. */
  async salvage(routes: readonly Unrecorded[]): Promise<SalvageResult[]> {
    return await salvage(this.#sql, this.#schema, routes);
  }

  /** Writes a notification and its routes: one statement, all or nothing. */
  async enqueue(notification: NotificationInput, routes: readonly RouteInput[]): Promise<Enqueued> {
    return await enqueue(this.#sql, notification, routes, {
      schema: this.#schema,
      ...(this.#tracer === undefined ? {} : { tracer: this.#tracer }),
    });
  }

  /** Reads one route, or `undefined` (also for a malformed id). */
  async getRoute(routeId: string): Promise<RouteRecord | undefined> {
    return await admin.getRoute(this.#sql, this.#schema, routeId, toRecord);
  }

  /** The route's attempt log, oldest first (empty for an unknown or malformed id). */
  async attempts(routeId: string): Promise<AttemptRecord[]> {
    return await admin.attempts(this.#sql, this.#schema, routeId, toAttempt);
  }

  /** Counts by status and channel, the oldest due route's age, the last hour's failures. */
  async stats(): Promise<Op.QueueStats> {
    return await admin.stats(this.#sql, this.#schema);
  }

  /** Routes matching `filter`, last changed first; `after` pages on (keyset). */
  async listRoutes(filter: Op.RouteFilter = {}): Promise<RouteRecord[]> {
    return await admin.listRoutes(this.#sql, this.#schema, filter, toRecord);
  }

  /** Routes sent and failed per minute over the last `minutes` (default 180). */
  async activity(minutes = 180): Promise<Op.ActivityPoint[]> {
    return await admin.activity(this.#sql, this.#schema, minutes);
  }

  /** A notification as written (kind, payload), or `undefined`. */
  async notification(id: string): Promise<Op.NotificationRecord | undefined> {
    return await admin.notification(this.#sql, this.#schema, id);
  }

  /**
   * Makes routes due now with a fresh attempt budget (held, as at enqueue,
   * while their destination is paused, disabled or open): by id (sent ones
   * only with `force`), or every failed or poisoned route (of a channel or
   * destination, since a time; with `dryRun`, only counted). Routes a worker
   * holds now are skipped, not waited for.
   */
  async retry(
    selection: Op.RetrySelection,
    options: { readonly force?: boolean; readonly dryRun?: boolean } = {},
  ): Promise<Op.ChangeResult> {
    return await admin.retry(this.#sql, this.#schema, selection, options);
  }

  /** Cancels queued routes; others (and those in flight) are skipped. */
  async cancel(routeIds: readonly string[]): Promise<Op.ChangeResult> {
    return await admin.cancel(this.#sql, this.#schema, routeIds);
  }

  /** Deletes finished routes older than `olderThanMs`, in batches; never queued ones. */
  async prune(options: Op.PruneOptions): Promise<number> {
    return await admin.prune(this.#sql, this.#schema, options);
  }

  /** Every destination with a row or a queued route, most troubled first. */
  async destinations(): Promise<D.DestinationInfo[]> {
    return await destinations.listDestinations(this.#sql, this.#schema);
  }

  /** One destination, or `undefined`. */
  async destination(channel: string, key: string): Promise<D.DestinationInfo | undefined> {
    const [found] = await destinations.listDestinations(this.#sql, this.#schema, { channel, key });
    return found;
  }

  /** Pauses, resumes, disables or enables a destination; see {@link D.DestinationAdmin}. */
  async setDestinationState(
    ...args: [channel: string, key: string, action: D.DestinationAction, reason?: string]
  ): Promise<D.DestinationState> {
    return await destinations.setDestinationState(this.#sql, this.#schema, ...args);
  }

  /** Overrides the worker's settings for one destination; `null` clears one. */
  async configureDestination(
    ...args: [channel: string, key: string, settings: D.DestinationSettings]
  ): Promise<void> {
    await destinations.configureDestination(this.#sql, this.#schema, ...args);
  }

  /** Wakes `handlers` on every enqueue (Postgres `LISTEN`, on a connection of its own). */
  async listen(handlers: WakeHandlers): Promise<Subscription> {
    return await listen(this.#sql, this.#listener?.(), this.#schema, handlers);
  }

  /** Ends the pool if Herald opened it: waits up to 5 s for queries, then cuts. */
  close(): Promise<void> {
    if (!this.#owned) return Promise.resolve();
    this.#closing ??= this.#sql.end({ timeout: 5 });
    return this.#closing;
  }
}

export { isUuid, SCHEMA_VERSION };

// The types the API mentions, so this entry point documents them all.
export type { TracerLike } from "./core/telemetry.ts";
