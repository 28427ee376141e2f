/**
 * The worker's events: their names and what each carries.
 *
 * @module
 */

/** The `detail` of the worker's events. */
export interface RouteEventDetail {
  /** The route's id. */
  readonly routeId: string;
  /** The notification it delivers. */
  readonly notificationId: string;
  /** The notification's kind. */
  readonly kind: string;
  /** The route's channel. */
  readonly channel: string;
  /** Where it goes, with URLs and credentials masked (a webhook URL may hold a token). */
  readonly destination: string;
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

/** Each event the `Worker` dispatches, by name. */
export interface WorkerEventMap {
  /** A route was claimed; its send starts. */
  readonly claimed: CustomEvent<RouteEventDetail>;
  /** A route was delivered. */
  readonly sent: CustomEvent<RouteEventDetail>;
  /** A send failed; the route is due again later. */
  readonly retry: CustomEvent<RouteEventDetail>;
  /** A route failed for good. */
  readonly failed: CustomEvent<RouteEventDetail>;
  /** The database refused a route's outcome; it is held for an operator. */
  readonly poisoned: CustomEvent<RouteEventDetail>;
  /** A destination's breaker opened. */
  readonly "destination.opened": CustomEvent<DestinationEventDetail>;
  /** A destination's breaker closed. */
  readonly "destination.closed": CustomEvent<DestinationEventDetail>;
  /** A destination was disabled. */
  readonly "destination.disabled": CustomEvent<DestinationEventDetail>;
}

/** A listener of one event, as a function or an object with `handleEvent`. */
export type WorkerListener<E extends Event> =
  | ((event: E) => void)
  | { handleEvent(event: E): void };

/**
 * An `EventTarget` whose listeners know their event's `detail` type, and
 * whose listeners cannot end the process: one that throws is reported to
 * {@link WorkerEvents.onListenerError} (the worker logs it) and the others
 * still run. Without that guard an exception in a listener is an uncaught
 * exception on every runtime.
 */
export class WorkerEvents extends EventTarget {
  /** Called with what a listener threw, and the event's name. */
  onListenerError: (error: unknown, type: string) => void = () => {};
  readonly #guarded = new WeakMap<object, EventListener>();

  /** As `EventTarget.addEventListener`, typed by event name. */
  override addEventListener<K extends keyof WorkerEventMap>(
    type: K,
    listener: WorkerListener<WorkerEventMap[K]> | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Any other event name, untyped. */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: WorkerListener<Event> | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    if (listener === null) return;
    let guarded = this.#guarded.get(listener);
    if (!guarded) {
      const call: EventListener = (event) => {
        try {
          if (typeof listener === "function") listener.call(this, event as never);
          else listener.handleEvent(event as never);
        } catch (err) {
          this.onListenerError(err, event.type);
        }
      };
      this.#guarded.set(listener, call);
      guarded = call;
    }
    super.addEventListener(type, guarded, options);
  }

  /** As `EventTarget.removeEventListener`. */
  override removeEventListener<K extends keyof WorkerEventMap>(
    type: K,
    listener: WorkerListener<WorkerEventMap[K]> | null,
    options?: boolean | EventListenerOptions,
  ): void;
  /** Any other event name. */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: WorkerListener<Event> | null,
    options?: boolean | EventListenerOptions,
  ): void {
    if (listener === null) return;
    const guarded = this.#guarded.get(listener);
    if (guarded) super.removeEventListener(type, guarded, options);
  }
}
