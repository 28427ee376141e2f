/**
 * The rows behind {@link FakeStore}: routes, notifications, attempt logs and
 * destinations, the locks open transactions hold, and the faults and
 * refusals a test injects. Times come from the injected clock.
 *
 * @module
 */
import { FakeDestinations } from "./fake_destinations.ts";
import type { Finalisation, JsonValue, Outcome, Route, RouteStatus } from "../../core/route.ts";
import type { AttemptRecord, RouteRecord } from "../../store.ts";

/** Operations a test can make fail once, to check the rollback path. */
export type FakeFault = "claim" | "finalise" | "destinations" | "commit" | "salvage";

/**
 * What the fake database refuses for one route, every time, as a trigger
 * would: its attempt-log row (`log`), its outcome on the route row
 * (`outcome`), any write to the route row at all (`row`).
 */
export type FakeRefusal = "log" | "outcome" | "row";

/** One row of the fake `notification_routes`. */
export interface Row {
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
  /** `null`: queued before destinations existed. */
  destinationKey: string | null;
  /** A held route's own due time (its destination is paused or disabled). */
  heldFrom: number | null;
}

/** One row of the fake `notifications`. */
export interface NotificationRow {
  id: string;
  kind: string;
  payload: JsonValue;
  idempotencyKey: string | null;
}

/** Everything the fake database holds, shared by the store and its transactions. */
export class FakeTables {
  readonly now: () => number;
  readonly routes = new Map<string, Row>();
  readonly notifications = new Map<string, NotificationRow>();
  /** route id -> id of the transaction holding its row lock */
  readonly locks = new Map<string, number>();
  readonly faults = new Map<FakeFault, Error>();
  readonly refusals = new Map<string, FakeRefusal>();
  readonly attempts = new Map<string, AttemptRecord[]>();
  /** Every `lockTimeoutMs` a transaction was opened with. */
  readonly lockTimeouts: number[] = [];
  /** Every record handed to `finalise` (committed or not). */
  readonly finalised: Finalisation[] = [];
  readonly destinations = new FakeDestinations();
  nextTx = 1;
  /** Transactions open right now. */
  open = 0;
  /** Cuts each open transaction's connection (see `FakeStore.loseConnections`). */
  readonly connections = new Set<(err: Error) => void>();

  constructor(now: () => number) {
    this.now = now;
  }

  /** Throws the error injected for `op`, once. */
  fault(op: FakeFault): void {
    const err = this.faults.get(op);
    if (err) {
      this.faults.delete(op);
      throw err;
    }
  }

  /** Appends the attempt-log row of `r`, written at `at`. */
  log(r: Finalisation, at: number): void {
    const log = this.attempts.get(r.routeId) ?? [];
    log.push({
      attempt: r.outcome.attempts,
      startedAt: new Date(at - r.durationMs),
      durationMs: r.durationMs,
      outcome: r.outcome.status,
      httpStatus: r.httpStatus ?? null,
      error: r.outcome.status === "sent" ? null : r.outcome.error,
    });
    this.attempts.set(r.routeId, log);
  }

  /** The route as a claim returns it. */
  toRoute(r: Row): Route {
    const n = this.notifications.get(r.notificationId)!;
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

/** The change an outcome makes to its route row, written at `now`. */
export function applyOutcome(outcome: Outcome, now: number): Partial<Row> {
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
        heldFrom: null,
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

/** The route row as `getRoute` returns it. */
export function toRecord(r: Row, kind: string): RouteRecord {
  return {
    id: r.id,
    notificationId: r.notificationId,
    kind,
    channel: r.channel,
    destination: r.destination,
    destinationKey: r.destinationKey,
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
