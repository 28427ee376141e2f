/**
 * The contract between the worker and a channel.
 *
 * @module
 */
import type { DeliveryDetails } from "../core/errors.ts";
import type { Route, TraceHeaders } from "../core/route.ts";
import type { RateLimit } from "../core/destination.ts";

/** What a channel gets besides the route when it is asked to send. */
export interface SendContext {
  /**
   * Aborts when the send times out or the worker shuts down. Pass it to
   * `fetch`; a channel that ignores it is cut off anyway.
   */
  readonly signal: AbortSignal;
  /** This attempt's number, starting at 1. */
  readonly attempt: number;
  /**
   * The trace context to hand on to the receiver (`traceparent` and
   * `tracestate` headers), or `null`: the send span's, or the one stored with
   * the notification when no OpenTelemetry SDK is registered.
   */
  readonly trace?: TraceHeaders | null;
}

/**
 * Sends one route. Return normally on success; throw `PermanentError` when a
 * retry cannot help, `RetryLaterError` when the provider asked for a pause,
 * anything else for a transient failure retried with backoff.
 *
 * @example
 * ```ts
 * import type { Channel } from "./channel.ts";
 * const console_: Channel = {
 *   send(route) {
 *     console.log(route.kind, route.payload);
 *     return Promise.resolve();
 *   },
 * };
 * ```
 */
export interface Channel {
  /** Delivers `route`; the returned details go to the attempt log. */
  send(route: Route, ctx: SendContext): Promise<DeliveryDetails | void>;
  /**
   * The provider's published limit, per destination of this channel (a Slack
   * webhook, a Telegram bot, a Twilio number), enforced across the fleet
   * unless the destination sets its own (`herald destinations set --rate`).
   */
  readonly rateLimit?: RateLimit;
}
