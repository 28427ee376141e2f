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
import { HeraldError } from "../../core/errors.ts";
import type { Finalisation, JsonValue, Outcome, Route, RouteStatus } from "../../core/route.ts";
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
import { checkEnqueue } from "../../core/_validate.ts";

interface Row {
  id: string;
  notificationId: string;
  seq: number;
  channel: string;
  destination: string;
  status: RouteStatus;
  attempts: number;
  maxAttempts: number | null;
  priority: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
  sentAt: number | null;
}

interface NotificationRow {
  id: string;
  kind: string;
  payload: JsonValue;
  idempotencyKey: string | null;
}

/** Operations a test can make fail once, to check the rollback path. */
export type FakeFault = "claim" | "finalise" | "commit" | "salvage";

/**
 * What the fake database refuses for one route, every time, as a trigger
 * would: its attempt-log row (`log`), its outcome on the route row
 * (`outcome`), any write to the route row at all (`row`).
 */
export type FakeRefusal = "log" | "outcome" | "row";

/** Options of {@link FakeStore}. */
export interface FakeStoreOptions {
  /** The store's clock (decides due-ness); default `Date.now`. */
  readonly now?: () => number;
}

/** The in-memory store. */
export class FakeStore implements Store {
  readonly #now: () => number;
  readonly #routes = new Map<string, Row>();
  readonly #notifications = new Map<string, NotificationRow>();
  /** route id -> id of the transaction holding its row lock */
  readonly #locks = new Map<string, number>();
  readonly #faults = new Map<FakeFault, Error>();
  readonly #refusals = new Map<string, FakeRefusal>();
  #nextTx = 1;
  #open = 0;
  #order = 0;
  /** Every `lockTimeoutMs` a transaction was opened with, for assertions. */
  readonly lockTimeouts: number[] = [];
  /** Every record handed to `finalise` (committed or not), for assertions. */
  readonly finalised: Finalisation[] = [];
  readonly #listeners = new Set<WakeHandlers>();
  readonly #attempts = new Map<string, AttemptRecord[]>();
  /**
   * Set false to simulate notifications lost while a listener is disconnected
   * (its liveness probe goes unheard too).
   */
  notifications = true;

  constructor(options: FakeStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Transactions currently open (each holds its claimed rows). */
  get openTransactions(): number {
    return this.#open;
  }

  /** Refuses, from now on, the writes `what` names for route `routeId` (`undefined` lifts it). */
  refuse(routeId: string, what: FakeRefusal | undefined): void {
    if (what === undefined) this.#refusals.delete(routeId);
    else this.#refusals.set(routeId, what);
  }

  /** Makes the next `op` throw `error` inside its transaction. */
  failNext(op: FakeFault, error: Error = new Error(`injected ${op} failure`)): void {
    this.#faults.set(op, error);
  }

  migrate(): Promise<number> {
    return Promise.resolve(SCHEMA_VERSION);
  }

  async transaction<T>(
    fn: (tx: RouteTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    if (options.lockTimeoutMs !== undefined) this.lockTimeouts.push(options.lockTimeoutMs);
    const id = this.#nextTx++;
    // Postgres's now(): the time the transaction began, whatever happens after.
    const began = this.#now();
    const pending = new Map<string, Partial<Row>>();
    const logged: { record: Finalisation; at: number }[] = [];
    let open = true;
    this.#open++;
    const guard = (): void => {
      if (!open) throw new HeraldError("HERALD_STORE", "transaction is already closed");
    };
    const tx: RouteTransaction = {
      claimDue: (params) => {
        guard();
        this.#fault("claim");
        const excluded = new Set(params.exclude);
        const channels = params.channels && new Set(params.channels);
        const due = [...this.#routes.values()]
          .filter((r) =>
            r.status === "queued" && r.nextAttemptAt <= began && !excluded.has(r.id) &&
            (channels === undefined || channels.has(r.channel)) &&
            (this.#locks.get(r.id) ?? id) === id
          )
          .sort((a, b) =>
            a.priority - b.priority || a.nextAttemptAt - b.nextAttemptAt || a.seq - b.seq
          )
          .slice(0, params.limit);
        for (const r of due) this.#locks.set(r.id, id);
        return Promise.resolve(due.map((r) => this.#toRoute(r)));
      },
      finalise: (records: readonly Finalisation[]) => {
        guard();
        this.#fault("finalise");
        const at = this.#now(); // clock_timestamp(): the moment of the outcome
        for (const { routeId } of records) {
          if (this.#locks.get(routeId) !== id) {
            throw new HeraldError(
              "HERALD_STORE",
              `route ${routeId} is not claimed by this transaction`,
            );
          }
          if (this.#refusals.has(routeId)) {
            throw new HeraldError("HERALD_STORE", `refused: ${this.#refusals.get(routeId)}`);
          }
        }
        for (const record of records) {
          pending.set(record.routeId, this.#apply(record.outcome, at));
          logged.push({ record, at });
        }
        this.finalised.push(...records);
        return Promise.resolve();
      },
    };
    const release = (): void => {
      open = false;
      this.#open--;
      for (const [routeId, holder] of this.#locks) if (holder === id) this.#locks.delete(routeId);
    };
    let result: T;
    try {
      result = await fn(tx);
      this.#fault("commit");
    } catch (err) {
      release();
      throw err;
    }
    for (const [routeId, change] of pending) Object.assign(this.#routes.get(routeId)!, change);
    for (const { record, at } of logged) this.#log(record, at);
    release();
    return result;
  }

  #log(r: Finalisation, at: number): void {
    const log = this.#attempts.get(r.routeId) ?? [];
    log.push({
      attempt: r.outcome.attempts,
      startedAt: new Date(at - r.durationMs),
      durationMs: r.durationMs,
      outcome: r.outcome.status,
      httpStatus: r.httpStatus ?? null,
      error: r.outcome.status === "sent" ? null : r.outcome.error,
    });
    this.#attempts.set(r.routeId, log);
  }

  /** As `PostgresStore.salvage`: outcome with log, outcome alone, hold, route by route. */
  salvage(routes: readonly Unrecorded[]): Promise<SalvageResult[]> {
    try {
      this.#fault("salvage");
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(routes.map((u) => this.#salvageOne(u)));
  }

  #salvageOne(u: Unrecorded): SalvageResult {
    const { routeId, outcome } = u.record;
    const row = this.#routes.get(routeId);
    if (
      !row || this.#locks.has(routeId) || row.status !== "queued" ||
      row.attempts !== u.claimedAttempts
    ) return "skipped";
    const refused = this.#refusals.get(routeId);
    const at = this.#now();
    if (refused === undefined) {
      Object.assign(row, this.#apply(outcome, at));
      this.#log(u.record, at);
      return "recorded";
    }
    if (refused === "log") {
      Object.assign(row, this.#apply(outcome, at));
      return "recorded_without_log";
    }
    if (refused === "outcome") {
      Object.assign(row, {
        status: u.poison ? "poisoned" : "queued",
        attempts: outcome.attempts,
        nextAttemptAt: at + u.holdMs,
        lastError: "outcome could not be recorded",
        updatedAt: at,
      });
      return u.poison ? "poisoned" : "held";
    }
    return "refused";
  }

  enqueue(notification: NotificationInput, routes: readonly RouteInput[]): Promise<Enqueued> {
    try {
      const checked = checkEnqueue(notification, routes);
      const key = checked.notification.idempotencyKey;
      if (key !== null) {
        const existing = [...this.#notifications.values()].find((n) => n.idempotencyKey === key);
        if (existing) {
          const routeIds = [...this.#routes.values()]
            .filter((r) => r.notificationId === existing.id)
            .sort((a, b) => a.seq - b.seq)
            .map((r) => r.id);
          return Promise.resolve({ notificationId: existing.id, routeIds, duplicate: true });
        }
      }
      const notificationId = crypto.randomUUID();
      const now = this.#now();
      this.#notifications.set(notificationId, {
        id: notificationId,
        kind: checked.notification.kind,
        payload: JSON.parse(checked.notification.payloadJson),
        idempotencyKey: key,
      });
      const routeIds = checked.routes.map((r) => {
        const id = crypto.randomUUID();
        this.#routes.set(id, {
          id,
          notificationId,
          seq: this.#order++,
          channel: r.channel,
          destination: r.destination,
          status: "queued",
          attempts: 0,
          maxAttempts: r.maxAttempts,
          priority: r.priority,
          nextAttemptAt: r.deliverAt?.getTime() ?? now,
          lastError: null,
          createdAt: now,
          updatedAt: now,
          sentAt: null,
        });
        return id;
      });
      if (
        this.notifications && checked.routes.some((r) => (r.deliverAt?.getTime() ?? now) <= now)
      ) {
        for (const l of this.#listeners) l.onNotify();
      }
      return Promise.resolve({ notificationId, routeIds, duplicate: false });
    } catch (err) {
      return Promise.reject(err);
    }
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
    return Promise.resolve([...(this.#attempts.get(routeId) ?? [])]);
  }

  getRoute(routeId: string): Promise<RouteRecord | undefined> {
    const r = this.#routes.get(routeId);
    return Promise.resolve(r ? toRecord(r) : undefined);
  }

  /** Every route, in enqueue order. */
  allRoutes(): RouteRecord[] {
    return [...this.#routes.values()].sort((a, b) => a.seq - b.seq).map(toRecord);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #fault(op: FakeFault): void {
    const err = this.#faults.get(op);
    if (err) {
      this.#faults.delete(op);
      throw err;
    }
  }

  #apply(outcome: Outcome, now: number): Partial<Row> {
    switch (outcome.status) {
      case "sent":
        return {
          status: "sent",
          attempts: outcome.attempts,
          sentAt: now,
          updatedAt: now,
          lastError: null,
        };
      case "retry":
        return {
          status: "queued",
          attempts: outcome.attempts,
          nextAttemptAt: now + outcome.delayMs,
          lastError: outcome.error,
          updatedAt: now,
        };
      case "failed":
        return {
          status: "failed",
          attempts: outcome.attempts,
          lastError: outcome.error,
          updatedAt: now,
        };
    }
  }

  #toRoute(r: Row): Route {
    const n = this.#notifications.get(r.notificationId)!;
    return {
      id: r.id,
      notificationId: r.notificationId,
      kind: n.kind,
      payload: structuredClone(n.payload),
      channel: r.channel,
      destination: r.destination,
      attempts: r.attempts,
      maxAttempts: r.maxAttempts,
      priority: r.priority,
      createdAt: new Date(r.createdAt),
    };
  }
}

function toRecord(r: Row): RouteRecord {
  return {
    id: r.id,
    notificationId: r.notificationId,
    channel: r.channel,
    destination: r.destination,
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    priority: r.priority,
    nextAttemptAt: new Date(r.nextAttemptAt),
    lastError: r.lastError,
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
    sentAt: r.sentAt === null ? null : new Date(r.sentAt),
  };
}
