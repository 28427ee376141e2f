/**
 * The worker's events: their names and what each carries.
 *
 * @module
 */

/** The `detail` of the worker's events. */
export interface RouteEventDetail {
  /** The route's id. */
  readonly routeId: string;
  /** The route's channel. */
  readonly channel: string;
  /** The attempt's number, starting at 1. */
  readonly attempt: number;
  /** Secret-free reason, for `retry` and `failed`. */
  readonly error?: string;
  /** For `retry`: how long until the route is due again. */
  readonly delayMs?: number;
  /** The provider's HTTP status, when the channel reported one. */
  readonly httpStatus?: number;
  /** How long the send took, in milliseconds (not on `claimed`). */
  readonly durationMs?: number;
}

/**
 * Names of the events a `Worker` dispatches, each a
 * `CustomEvent<RouteEventDetail>`. `poisoned`: the database refused the
 * route's outcome, and the route is held for an operator instead of being
 * sent again.
 */
export type WorkerEventName = "claimed" | "sent" | "retry" | "failed" | "poisoned";

/**
 * Names of the destination events a `Worker` dispatches, each a
 * `CustomEvent<DestinationEventDetail>`: a destination's breaker opened (or
 * opened again after a failed probe), closed, or the destination was
 * disabled (HTTP 410, or failing for `disableAfterMs`).
 */
export type DestinationEventName =
  | "destination.opened"
  | "destination.closed"
  | "destination.disabled";

/** The `detail` of the destination events. */
export interface DestinationEventDetail {
  /** The destination's channel. */
  readonly channel: string;
  /** The destination's key: an origin, or `*` for a whole channel; never a secret. */
  readonly destination: string;
  /** Its state before. */
  readonly from: "closed" | "open" | "paused" | "disabled";
  /** Its state after. */
  readonly to: "closed" | "open" | "paused" | "disabled";
  /** Trips in a row; each doubles the cool-down. */
  readonly trips: number;
  /** For `destination.opened`: when its probe may go. */
  readonly openUntil?: Date;
  /** For `destination.disabled`: why. */
  readonly reason?: string;
}
