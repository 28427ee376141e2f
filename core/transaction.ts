/**
 * The words of the store contract that its implementations share with it:
 * what a claim takes, and what a salvage is given and answers. The contract
 * itself (`Store`, `RouteTransaction`) lives in `store.ts`, above them.
 *
 * @module
 */
import type { Finalisation } from "./route.ts";
import type { RateLimit } from "./destination.ts";

/** What `RouteTransaction.claimDue` takes. */
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
  /**
   * The in-flight cap, across the fleet, of each destination named by origin
   * that sets none of its own; unset: no cap. A route whose destination is at
   * its cap is not claimed.
   */
  readonly maxInFlight?: number;
  /**
   * Rate limits of destinations of these channels that set none of their own
   * (each channel's published provider limit). A route whose destination has
   * no token now is not claimed: deferred, not attempted, not charged.
   */
  readonly rates?: readonly ChannelRate[];
}

/** A channel's default rate limit, per destination of it. */
export interface ChannelRate extends RateLimit {
  /** The channel whose destinations it limits. */
  readonly channel: string;
}

/**
 * A claimed route whose transaction failed after its send (the finalise or
 * the commit was refused, or the connection was lost): what
 * `Store.salvage` should record in a transaction of its own.
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
 * What `Store.salvage` did with one route: wrote its outcome with its
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
   * Optional: resolves true if the subscription still hears notifications:
   * it heard one since the last call ended, or it sends itself one and hears
   * it within `timeoutMs`. The worker checks it every few seconds and
   * subscribes again when it is false.
   */
  alive?(timeoutMs: number): Promise<boolean>;
}

/** Options of `Store.transaction`. */
export interface TransactionOptions {
  /**
   * A safety net: the database ends the transaction if it sits idle (or a
   * statement runs) longer than this, so a wedged worker cannot hold a row
   * lock for ever. Unset: no limit.
   */
  readonly lockTimeoutMs?: number;
}
