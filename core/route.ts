/**
 * The domain types shared by the worker, the stores and the channels: a
 * notification, its routes, and the outcome of sending one.
 *
 * @module
 */

/** A value that survives a JSON round trip unchanged (what `jsonb` stores). */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/**
 * Where a route is in its life. Only `queued` routes are ever claimed.
 * `poisoned`: a worker could not record the route's outcome (the database
 * refused it) often enough that sending it again would only repeat the
 * message; it waits for an operator's `retry`.
 */
export type RouteStatus = "queued" | "sent" | "failed" | "cancelled" | "poisoned";

/** Every route status, in the order tools show them. */
export const ROUTE_STATUSES: readonly RouteStatus[] = [
  "queued",
  "sent",
  "failed",
  "cancelled",
  "poisoned",
];

/**
 * One notification × channel × destination, as a channel sees it when it is
 * asked to send it. `id` is stable across retries: channels pass it on as the
 * idempotency key so receivers can drop duplicates (delivery is at least once).
 */
export interface Route {
  /** The route id (`route_id`), a UUID; the idempotency key of every send. */
  readonly id: string;
  /** The notification this route delivers. */
  readonly notificationId: string;
  /** The notification's kind, e.g. `"order.shipped"`. */
  readonly kind: string;
  /** The notification's payload. */
  readonly payload: JsonValue;
  /** The name of the channel that sends it, e.g. `"webhook"`. */
  readonly channel: string;
  /** Channel-specific address: a URL, an e-mail address, a phone number. */
  readonly destination: string;
  /** Attempts made before this one. */
  readonly attempts: number;
  /** Per-route attempt limit; `null` means the worker's default. */
  readonly maxAttempts: number | null;
  /** Lower runs first. */
  readonly priority: number;
  /** When the route was enqueued. */
  readonly createdAt: Date;
  /**
   * The trace context stored with the notification (W3C Trace Context), or
   * `null`: where the enqueuer's trace continues. Absent from stores that
   * keep none.
   */
  readonly trace?: TraceHeaders | null;
  /**
   * The route's destination (see `destinationKey`); absent for a route
   * queued before destinations existed, or from a store that keeps none.
   */
  readonly destinationKey?: string;
  /** Claimed as the one probe of a half-open destination: a failure spends no attempt. */
  readonly probe?: boolean;
  /** The destination has failures or a state to clear: a success must be reported. */
  readonly destinationDirty?: boolean;
  /**
   * For a rate-limited destination: milliseconds from the claim until its
   * next token (when another of its routes may go).
   */
  readonly nextTokenMs?: number;
}

/** A W3C Trace Context, as stored with a notification and sent on to receivers. */
export interface TraceHeaders {
  /** `00-<trace id>-<parent id>-<flags>` */
  readonly traceparent: string;
  /** Vendor-specific entries, passed on as given; `null` when there are none. */
  readonly tracestate: string | null;
}

/** What the worker records when it finalises a claimed route. */
export type Outcome =
  | {
    /** Delivered. */
    readonly status: "sent";
    /** Attempts made, this one included. */
    readonly attempts: number;
  }
  | {
    /** Failed for now; claimable again after `delayMs`. */
    readonly status: "retry";
    /** Attempts made, this one included. */
    readonly attempts: number;
    /** Delay from the store's clock until the route is due again. */
    readonly delayMs: number;
    /** Short, secret-free reason. */
    readonly error: string;
  }
  | {
    /** Failed for good. */
    readonly status: "failed";
    /** Attempts made, this one included. */
    readonly attempts: number;
    /** Short, secret-free reason. */
    readonly error: string;
  };

/**
 * One attempt's record, handed to the store to finalise the route (and, where
 * the store keeps one, to append to the attempt log) in the route's
 * transaction.
 */
export interface Finalisation {
  /** The claimed route. */
  readonly routeId: string;
  /** What to record. */
  readonly outcome: Outcome;
  /**
   * How long the send took, in milliseconds. The store stamps the attempt
   * log's start time as its own clock at the outcome minus this, so every
   * time it records comes from the one clock that decides due-ness.
   */
  readonly durationMs: number;
  /** The provider's HTTP status, when the channel reported one. */
  readonly httpStatus?: number;
}

/** What an application hands to `enqueue`: the notification. */
export interface NotificationInput {
  /** What happened, e.g. `"order.shipped"`; free text, 1-255 characters. */
  readonly kind: string;
  /** Any JSON value; channels render it. Default `{}`. */
  readonly payload?: JsonValue;
  /**
   * Makes `enqueue` idempotent: a second call with the same key returns the
   * first call's ids and writes nothing.
   */
  readonly idempotencyKey?: string;
  /**
   * The trace this notification continues (a W3C `traceparent`), when it is
   * not the active OpenTelemetry context; the CLI takes it from `TRACEPARENT`.
   */
  readonly traceparent?: string;
  /** The `tracestate` that goes with `traceparent`. */
  readonly tracestate?: string;
}

/** What an application hands to `enqueue`: one route of the notification. */
export interface RouteInput {
  /** The channel name, e.g. `"webhook"`. */
  readonly channel: string;
  /** Where to deliver: a URL, an address, a phone number. */
  readonly destination: string;
  /** Deliver no sooner than this; default now. */
  readonly deliverAt?: Date;
  /** Lower runs first; default 0. */
  readonly priority?: number;
  /** Overrides the worker's `maxAttempts` for this route. */
  readonly maxAttempts?: number;
}

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
  /** The notification's kind. */
  readonly kind: string;
  /** The channel's name. */
  readonly channel: string;
  /** Where it goes; may be a credential (a Slack URL): print it redacted. */
  readonly destination: string;
  /**
   * The destination it counts against (an origin, one webhook of a shared
   * host, or `*`: the channel's provider); `null` for a route queued before
   * destinations existed.
   */
  readonly destinationKey: string | null;
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
