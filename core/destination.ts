/**
 * Destinations: where routes go, and the health each one has of its own.
 * Every route belongs to one destination, named by its channel and a key
 * ({@link destinationKey}); the destination's state decides whether its
 * routes may be claimed now. The state machine ({@link nextDestination}) is
 * pure, so every store applies the same rules.
 *
 * ```
 *            failureThreshold consecutive failures
 *   closed ───────────────────────────────────────► open (routes held until the cool-down ends)
 *     ▲                                              │ cool-down over: one probe route (half-open)
 *     │   probe (or any send) succeeds               ▼
 *     └──────────────────────────────────────── half-open ── probe fails ──► open (longer cool-down)
 *
 *   any state ── HTTP 410, or failing for disableAfterMs ──► disabled   (operator: enable)
 *   any state ── operator: pause ──► paused                             (operator: resume)
 * ```
 *
 * @module
 */

/**
 * The destination's stored state. `open` with its cool-down over is reported
 * as `half_open` by the operator views: one probe route may go.
 */
export type DestinationState = "closed" | "open" | "paused" | "disabled";

/** What one send says about its destination's health. */
export type DestinationVerdict =
  /** It answered: sent, or refused the route itself (a 4xx other than 410). */
  | "ok"
  /** Timeout, connection error, 5xx, 429: the destination is struggling. */
  | "fail"
  /**
   * HTTP 410 Gone: the receiver says it will never take anything again; it
   * disables a destination that is one URL ({@link isSingleUrlKey}).
   */
  | "gone";

/** The breaker's settings; every field has a default ({@link DESTINATION_DEFAULTS}). */
export interface DestinationPolicy {
  /** Consecutive failures that open a closed destination; default 5. */
  readonly failureThreshold: number;
  /** The first cool-down of an open destination; default 30 s, doubling with each trip. */
  readonly cooldownMs: number;
  /** The longest cool-down; default 10 minutes. */
  readonly maxCooldownMs: number;
  /** A destination failing without one success for this long is disabled; default 5 days. */
  readonly disableAfterMs: number;
}

/** Defaults of {@link DestinationPolicy}. */
export const DESTINATION_DEFAULTS: DestinationPolicy = {
  failureThreshold: 5,
  cooldownMs: 30_000,
  maxCooldownMs: 600_000,
  disableAfterMs: 5 * 24 * 3_600_000,
};

/**
 * A rate limit, enforced across the fleet in the destination's row: at most
 * `perSecond` sends a second on average, `burst` of them back to back.
 */
export interface RateLimit {
  /** Sends a second on average (a fraction for less than one). */
  readonly perSecond: number;
  /** Sends allowed back to back. */
  readonly burst: number;
}

/** A destination's settings that override the worker's; `null`: the worker's. */
export interface DestinationSettings {
  /** Sends in flight at once across the fleet. */
  readonly maxInFlight?: number | null;
  /** Sends a second, across the fleet (a fraction for less than one a second). */
  readonly ratePerSecond?: number | null;
  /** Sends allowed back to back within the rate; default 1. */
  readonly burst?: number | null;
  /** Consecutive failures that open it. */
  readonly failureThreshold?: number | null;
  /** Its first cool-down, in milliseconds. */
  readonly cooldownMs?: number | null;
}

/** The state machine's view of one destination row. */
export interface DestinationHealth {
  /** Its stored state. */
  readonly state: DestinationState;
  /** Failures since its last success. */
  readonly consecutiveFailures: number;
  /** Trips in a row since it was last closed. */
  readonly trips: number;
  /** When an open destination's cool-down ends. */
  readonly openUntil: number | null;
  /** The first failure since the last success. */
  readonly failingSince: number | null;
  /** The last failure's time. */
  readonly lastFailureAt: number | null;
  /** The last success's time. */
  readonly lastSuccessAt: number | null;
  /** The last failure's secret-free reason. */
  readonly lastError: string | null;
  /** Why it is disabled or paused. */
  readonly reason: string | null;
  /** Its own failure threshold; `null`: the worker's. */
  readonly failureThreshold: number | null;
  /** Its own first cool-down; `null`: the worker's. */
  readonly cooldownMs: number | null;
}

/** The verdicts of one transaction's sends to one destination. */
export interface DestinationReport {
  /** The destination's channel. */
  readonly channel: string;
  /** The destination's key. */
  readonly key: string;
  /** Sends it answered (sent, or refused the route itself). */
  readonly ok: number;
  /** Sends that failed for want of it (timeouts, 5xx, 429). */
  readonly fail: number;
  /** It answered 410 Gone, and is one URL. */
  readonly gone: boolean;
  /** A probe of a half-open destination was among them. */
  readonly probe: boolean;
  /** The last failure's secret-free reason. */
  readonly error: string | null;
}

/** A change of state a report caused, for the worker's events. */
export interface DestinationChange {
  /** The destination's channel. */
  readonly channel: string;
  /** The destination's key. */
  readonly key: string;
  /** Its state before the report. */
  readonly from: DestinationState;
  /** Its state after. */
  readonly to: DestinationState;
  /** For `open`: when the next probe may go. */
  readonly openUntil: Date | null;
  /** Trips in a row. */
  readonly trips: number;
  /** Why it is disabled, when it is. */
  readonly reason: string | null;
}

/**
 * The destination after `report`, at `now` (the database's clock). Paused
 * and disabled destinations only count; a success closes an open one; a
 * failed probe opens it again for a longer cool-down.
 */
export function nextDestination(
  d: DestinationHealth,
  report: DestinationReport,
  policy: DestinationPolicy,
  now: number,
): DestinationHealth {
  if (report.gone) {
    return {
      ...d,
      state: "disabled",
      openUntil: null,
      lastFailureAt: now,
      lastError: report.error,
      reason: "the receiver answered 410 Gone",
    };
  }
  if (report.fail === 0) {
    if (d.state === "paused" || d.state === "disabled") {
      return { ...d, consecutiveFailures: 0, failingSince: null, lastSuccessAt: now };
    }
    return {
      ...d,
      state: "closed",
      consecutiveFailures: 0,
      trips: 0,
      openUntil: null,
      failingSince: null,
      lastSuccessAt: now,
      reason: null,
    };
  }
  const failingSince = report.ok > 0 ? now : (d.failingSince ?? now);
  const counted: DestinationHealth = {
    ...d,
    consecutiveFailures: (report.ok > 0 ? 0 : d.consecutiveFailures) + report.fail,
    failingSince,
    lastFailureAt: now,
    lastError: report.error,
    ...(report.ok > 0 ? { lastSuccessAt: now } : {}),
  };
  if (d.state === "paused" || d.state === "disabled") return counted;
  if (now - failingSince >= policy.disableAfterMs) {
    return {
      ...counted,
      state: "disabled",
      openUntil: null,
      reason: `failing without a success since ${new Date(failingSince).toISOString()}`,
    };
  }
  const threshold = d.failureThreshold ?? policy.failureThreshold;
  const trip = d.state === "open"
    ? report.probe
    : d.state === "closed" && counted.consecutiveFailures >= threshold;
  if (!trip) return counted;
  const trips = d.trips + 1;
  return {
    ...counted,
    state: "open",
    trips,
    openUntil: now + cooldownOf(trips, d.cooldownMs ?? policy.cooldownMs, policy.maxCooldownMs),
  };
}

/** The change of state from `before` to `after`, for the events; `undefined` when none. */
export function changeOf(
  channel: string,
  key: string,
  before: DestinationHealth,
  after: DestinationHealth,
): DestinationChange | undefined {
  if (after.state === before.state && after.openUntil === before.openUntil) return undefined;
  return {
    channel,
    key,
    from: before.state,
    to: after.state,
    openUntil: after.openUntil === null ? null : new Date(after.openUntil),
    trips: after.trips,
    reason: after.reason,
  };
}

/** The cool-down after the `trips`-th trip in a row: doubling from `base`, capped. */
export function cooldownOf(trips: number, base: number, max: number): number {
  return Math.min(base * 2 ** Math.min(Math.max(trips - 1, 0), 30), Math.max(max, base));
}

/** A fresh destination row: closed, no history. */
export function freshDestination(): DestinationHealth {
  return {
    state: "closed",
    consecutiveFailures: 0,
    trips: 0,
    openUntil: null,
    failingSince: null,
    lastFailureAt: null,
    lastSuccessAt: null,
    lastError: null,
    reason: null,
    failureThreshold: null,
    cooldownMs: null,
  };
}

/** One destination as the operator views show it. */
export interface DestinationInfo {
  /** The destination's channel. */
  readonly channel: string;
  /** Its key: an origin, an origin and a hash, or `*`; never a secret. */
  readonly key: string;
  /** `half_open`: open, its cool-down over; the next route claimed is its probe. */
  readonly state: DestinationState | "half_open";
  /** Failures since its last success. */
  readonly consecutiveFailures: number;
  /** Trips since it was last closed; each doubles the cool-down. */
  readonly trips: number;
  /** When an open destination's cool-down ends. */
  readonly openUntil: Date | null;
  /** The first failure since its last success. */
  readonly failingSince: Date | null;
  /** The last failure's time. */
  readonly lastFailureAt: Date | null;
  /**
   * The last success's time: the latest in the last hour's attempt log, or
   * the last that changed its health (a recovery, a success after failures).
   */
  readonly lastSuccessAt: Date | null;
  /** The last failure's reason, secret-free. */
  readonly lastError: string | null;
  /** Why it is paused or disabled. */
  readonly reason: string | null;
  /** Its own settings; `null`: the worker's (or its channel's). */
  readonly settings: {
    readonly maxInFlight: number | null;
    readonly failureThreshold: number | null;
    readonly cooldownMs: number | null;
    readonly ratePerSecond: number | null;
    readonly burst: number | null;
  };
  /** Queued routes, held ones included. */
  readonly queued: number;
  /** The oldest due route's due time (held routes count from when they were due). */
  readonly oldestDueAt: Date | null;
  /** Due routes held back by its rate limit now (its limiter's schedule is ahead of the clock). */
  readonly deferred: number;
  /**
   * Sends holding one of its in-flight slots now; `null` for a channel-wide
   * destination with no cap of its own (its sends take no slot).
   */
  readonly inFlight: number | null;
  /** Attempts and failed attempts in the last hour. */
  readonly attemptsLastHour: number;
  /** Failed attempts in the last hour. */
  readonly failuresLastHour: number;
}

/** The operator's control of destinations, on `PostgresStore` and the FakeStore harness. */
export interface DestinationAdmin {
  /** Every destination with a row or a queued route, most troubled first. */
  destinations(): Promise<DestinationInfo[]>;
  /** One destination, or `undefined` when it has neither a row nor a queued route. */
  destination(channel: string, key: string): Promise<DestinationInfo | undefined>;
  /**
   * `pause`/`disable`: hold its queued routes (they stay queued, spend no
   * attempt); `resume`/`enable`: release them, due when they were due, and
   * close the breaker. Resolves with the state now.
   */
  setDestinationState(
    channel: string,
    key: string,
    action: DestinationAction,
    reason?: string,
  ): Promise<DestinationState>;
  /** Overrides the worker's settings for one destination; `null` clears one. */
  configureDestination(channel: string, key: string, settings: DestinationSettings): Promise<void>;
}

/** What an operator can do to a destination's state. */
export type DestinationAction = "pause" | "resume" | "disable" | "enable";

/** The state an action leads to. */
export function stateAfter(action: DestinationAction): DestinationState {
  return action === "pause" ? "paused" : action === "disable" ? "disabled" : "closed";
}

/** Far in the future, but a real date: where held routes wait (`infinity` would not parse). */
export const HELD_UNTIL: number = Date.UTC(9999, 11, 31);
