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
