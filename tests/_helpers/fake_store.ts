/**
 * An in-memory {@link Store} with real transaction semantics, for tests that
 * drive the worker deterministically: a claim locks rows until the
 * transaction ends, `SKIP LOCKED` skips rows another open transaction holds,
 * writes become visible on commit and vanish on rollback. Due-ness uses the
 * injected clock, the way `PostgresStore` uses the database's, and models
 * its two readings: a claim sees the clock as it was when the transaction
 * began (Postgres's `now()`), a finalise writes times as the clock reads at
 * the outcome (`clock_timestamp()`), so a store that adds a retry's delay
 * to the claim's time fails the contract suite here too.
 */
import type { Finalisation } from "../../core/route.ts";
import type {
  AttemptRecord,
  Enqueued,
  NotificationInput,
  RouteInput,
  RouteRecord,
  RouteTransaction,
  SalvageResult,
  Store,
  Subscription,
  TransactionOptions,
  Unrecorded,
  WakeHandlers,
} from "../../store.ts";
import { SCHEMA_VERSION } from "../../store.ts";
import { checkDestinationCall, checkEnqueue } from "../../core/_validate.ts";
import { checkPrune } from "../../core/operator.ts";
import type { PruneOptions } from "../../core/operator.ts";
import { destinationKey } from "../../core/destination_key.ts";
import type {
  DestinationAction,
  DestinationAdmin,
  DestinationInfo,
  DestinationSettings,
  DestinationState,
} from "../../core/destination.ts";
import { dueAtEnqueue } from "./fake_destination_rows.ts";
import { fallBack, runFakeTransaction } from "./fake_transaction.ts";
import { type FakeFault, type FakeRefusal, FakeTables, toRecord } from "./fake_tables.ts";

export type { FakeFault, FakeRefusal } from "./fake_tables.ts";

/** Options of {@link FakeStore}. */
export interface FakeStoreOptions {
  /** The store's clock (decides due-ness); default `Date.now`. */
  readonly now?: () => number;
}

/** The in-memory store. */
export class FakeStore implements Store, DestinationAdmin {
  readonly #t: FakeTables;
  readonly #listeners = new Set<WakeHandlers>();
  #order = 0;
  /** Every `lockTimeoutMs` a transaction was opened with, for assertions. */
  readonly lockTimeouts: number[];
  /** Every record handed to `finalise` (committed or not), for assertions. */
  readonly finalised: Finalisation[];
  /**
   * Set false to simulate notifications lost while a listener is disconnected
   * (its liveness probe goes unheard too).
   */
  notifications = true;

  constructor(options: FakeStoreOptions = {}) {
    this.#t = new FakeTables(options.now ?? Date.now);
    this.lockTimeouts = this.#t.lockTimeouts;
    this.finalised = this.#t.finalised;
  }

  /** Transactions currently open (each holds its claimed rows). */
  get openTransactions(): number {
    return this.#t.open;
  }

  /** Refuses, from now on, the writes `what` names for route `routeId` (`undefined` lifts it). */
  refuse(routeId: string, what: FakeRefusal | undefined): void {
    if (what === undefined) this.#t.refusals.delete(routeId);
    else this.#t.refusals.set(routeId, what);
  }

  /**
   * Cuts the connection of every open transaction: each rolls back (its locks
   * go) and rejects with `error` at once, while its body runs on.
   */
  loseConnections(
    error: Error = Object.assign(new Error("connection closed"), { code: "CONNECTION_CLOSED" }),
  ): void {
    for (const cut of [...this.#t.connections]) cut(error);
  }

  /** Makes the next `op` throw `error` inside its transaction. */
  failNext(op: FakeFault, error: Error = new Error(`injected ${op} failure`)): void {
    this.#t.faults.set(op, error);
  }

  migrate(): Promise<number> {
    return Promise.resolve(SCHEMA_VERSION);
  }

  transaction<T>(
    fn: (tx: RouteTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    return runFakeTransaction(this.#t, fn, options);
  }

  /** As `PostgresStore.salvage`: outcome with log, outcome alone, hold, route by route. */
  salvage(routes: readonly Unrecorded[]): Promise<SalvageResult[]> {
    try {
      this.#t.fault("salvage");
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(routes.map((u) => this.#salvageOne(u)));
  }

  #salvageOne(u: Unrecorded): SalvageResult {
    const { routeId } = u.record;
    const row = this.#t.routes.get(routeId);
    if (
      !row || this.#t.locks.has(routeId) || row.status !== "queued" ||
      row.attempts !== u.claimedAttempts
    ) return "skipped";
    const at = this.#t.now();
    const step = fallBack(this.#t.refusals.get(routeId), u, at);
    if (step.change) Object.assign(row, step.change);
    if (step.log) this.#t.log(u.record, at);
    return step.result;
  }

  enqueue(notification: NotificationInput, routes: readonly RouteInput[]): Promise<Enqueued> {
    try {
      const checked = checkEnqueue(notification, routes);
      const key = checked.notification.idempotencyKey;
      const existing = key === null ? undefined : this.#byKey(key);
      if (existing) return Promise.resolve(existing);
      const notificationId = crypto.randomUUID();
      const now = this.#t.now();
      this.#t.notifications.set(notificationId, {
        id: notificationId,
        kind: checked.notification.kind,
        payload: JSON.parse(checked.notification.payloadJson),
        idempotencyKey: key,
      });
      let due = false;
      const routeIds = checked.routes.map((r) => {
        const id = crypto.randomUUID();
        const key = destinationKey(r.destination);
        this.#t.destinations.ensure(r.channel, key);
        const d = this.#t.destinations.get(r.channel, key);
        const at = dueAtEnqueue(d, r.deliverAt?.getTime() ?? now);
        if (at.heldFrom === null && at.nextAttemptAt <= now) due = true;
        this.#t.routes.set(id, {
          id,
          notificationId,
          seq: this.#order++,
          channel: r.channel,
          destination: r.destination,
          status: "queued",
          attempts: 0,
          maxAttempts: r.maxAttempts,
          priority: r.priority,
          nextAttemptAt: at.nextAttemptAt,
          lastError: null,
          createdAt: now,
          updatedAt: now,
          sentAt: null,
          destinationKey: key,
          heldFrom: at.heldFrom,
        });
        return id;
      });
      if (this.notifications && due) {
        for (const l of this.#listeners) l.onNotify();
      }
      return Promise.resolve({ notificationId, routeIds, duplicate: false });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The earlier enqueue with idempotency key `key`, as a duplicate, if any. */
  #byKey(key: string): Enqueued | undefined {
    const existing = [...this.#t.notifications.values()].find((n) => n.idempotencyKey === key);
    if (!existing) return undefined;
    const routeIds = [...this.#t.routes.values()]
      .filter((r) => r.notificationId === existing.id)
      .sort((a, b) => a.seq - b.seq)
      .map((r) => r.id);
    return { notificationId: existing.id, routeIds, duplicate: true };
  }

  /** Like `LISTEN`: `onConnect` at once, `onNotify` on every enqueue of due routes. */
  listen(handlers: WakeHandlers): Promise<Subscription> {
    this.#listeners.add(handlers);
    queueMicrotask(() => handlers.onConnect());
    return Promise.resolve({
      close: () => {
        this.#listeners.delete(handlers);
        return Promise.resolve();
      },
      alive: () => Promise.resolve(this.notifications),
    });
  }

  /** Simulates the listener's connection dropping and coming back. */
  reconnectListeners(): void {
    for (const l of this.#listeners) l.onConnect();
  }

  /** How many subscriptions are open. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  attempts(routeId: string): Promise<AttemptRecord[]> {
    return Promise.resolve([...(this.#t.attempts.get(routeId) ?? [])]);
  }

  getRoute(routeId: string): Promise<RouteRecord | undefined> {
    const r = this.#t.routes.get(routeId);
    return Promise.resolve(r ? toRecord(r, this.#kindOf(r)) : undefined);
  }

  #kindOf(r: { notificationId: string }): string {
    return this.#t.notifications.get(r.notificationId)?.kind ?? "";
  }

  /** Every route, in enqueue order. */
  allRoutes(): RouteRecord[] {
    return [...this.#t.routes.values()].sort((a, b) => a.seq - b.seq)
      .map((r) => toRecord(r, this.#kindOf(r)));
  }

  /**
   * As `PostgresStore.prune`: finished routes older than the cut, batch by
   * batch, with their attempt logs and their notifications once no route of
   * one is left; rows an open transaction holds are skipped; `signal` stops
   * it between batches. No rest between batches: there is no database to share.
   */
  prune(options: PruneOptions): Promise<number> {
    try {
      const plan = checkPrune(options);
      const before = this.#t.now() - plan.olderThanMs;
      const old = (status: string) =>
        [...this.#t.routes.values()]
          .filter((r) => r.status === status && r.updatedAt < before)
          .sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : 1));
      if (options.dryRun) {
        return Promise.resolve(plan.statuses.reduce((n, st) => n + old(st).length, 0));
      }
      let total = 0;
      for (const status of plan.statuses) {
        const free = old(status).filter((r) => !this.#t.locks.has(r.id));
        for (let from = 0; from < free.length; from += plan.batchSize) {
          if (options.signal?.aborted) return Promise.resolve(total);
          const batch = free.slice(from, from + plan.batchSize);
          for (const r of batch) {
            this.#t.routes.delete(r.id);
            this.#t.attempts.delete(r.id);
          }
          const left = new Set([...this.#t.routes.values()].map((r) => r.notificationId));
          for (const r of batch) {
            if (!left.has(r.notificationId)) this.#t.notifications.delete(r.notificationId);
          }
          total += batch.length;
          options.onProgress?.(total, 0);
        }
      }
      return Promise.resolve(total);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** As `PostgresStore.destinations`. */
  destinations(): Promise<DestinationInfo[]> {
    return Promise.resolve(
      this.#t.destinations.list(this.#t.routes.values(), this.#t.attempts, this.#t.now()),
    );
  }

  /** As `PostgresStore.destination`. */
  destination(channel: string, key: string): Promise<DestinationInfo | undefined> {
    return this.destinations().then((all) =>
      all.find((d) => d.channel === channel && d.key === key)
    );
  }

  /** As `PostgresStore.setDestinationState`: held routes released, listeners woken. */
  setDestinationState(
    channel: string,
    key: string,
    action: DestinationAction,
    reason?: string,
  ): Promise<DestinationState> {
    try {
      checkDestinationCall(channel, key, { action, reason });
    } catch (err) {
      return Promise.reject(err);
    }
    const locked = (id: string): boolean => this.#t.locks.has(id);
    const { state, released } = this.#t.destinations.setState(
      channel,
      key,
      action,
      reason,
      this.#t.routes.values(),
      locked,
    );
    if (released && this.notifications) { for (const l of this.#listeners) l.onNotify(); }
    return Promise.resolve(state);
  }

  /** As `PostgresStore.configureDestination`. */
  configureDestination(channel: string, key: string, settings: DestinationSettings): Promise<void> {
    try {
      checkDestinationCall(channel, key);
      this.#t.destinations.configure(channel, key, settings);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
