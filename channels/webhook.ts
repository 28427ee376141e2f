/**
 * The `webhook` channel: POSTs each notification as JSON to the route's URL,
 * signed per Standard Webhooks so receivers can check origin and drop
 * duplicates (the `webhook-id` is the route id, stable across retries).
 *
 * @module
 */
import type { Channel, SendContext } from "./channel.ts";
import type { DeliveryDetails } from "../core/errors.ts";
import type { JsonValue, Route } from "../core/route.ts";
import { addressGuard } from "./_address.ts";
import type { AddressGuardOptions } from "./options.ts";
import { postHttp, resolveHttp } from "./_http.ts";
import type { HttpOptions } from "./options.ts";
import { decodeSecrets, signWebhook } from "./webhook_signature.ts";
import { GUARD_OPTIONS, HTTP_OPTIONS, refuseUnknownOptions } from "./_options.ts";

/** Options of {@link webhookChannel}. */
export interface WebhookChannelOptions extends HttpOptions, AddressGuardOptions {
  /**
   * Signing secret(s), `whsec_` + base64 of at least 24 bytes (Standard
   * Webhooks; `MIN_SECRET_BYTES`). Give several during a rotation:
   * each signs and the header lists every signature. Without a secret the
   * channel sends unsigned requests (no `webhook-signature` header), which
   * receivers cannot authenticate: use that for development only.
   */
  readonly secret?: string | readonly string[];
  /**
   * Send the trace context (`traceparent`, `tracestate`) of the send, so the
   * receiver's tracing continues the notification's trace. Default `true`;
   * a route enqueued with no trace context sends neither header.
   */
  readonly propagateTrace?: boolean;
}

/**
 * The JSON body Herald sends. `timestamp` is when the notification was
 * enqueued (not when this attempt ran), so the body is identical on every
 * retry and only the `webhook-timestamp` header changes.
 */
export interface WebhookEnvelope {
  /** The notification kind, e.g. `"order.shipped"`. */
  readonly type: string;
  /** When the notification was enqueued, ISO 8601. */
  readonly timestamp: string;
  /** The route id; also the `webhook-id` header. */
  readonly routeId: string;
  /** The notification id, shared by all routes of one notification. */
  readonly notificationId: string;
  /** The notification payload, unchanged. */
  readonly data: JsonValue;
}

/** Builds the body of a webhook request for `route`. */
export function webhookEnvelope(route: Route): WebhookEnvelope {
  return {
    type: route.kind,
    timestamp: route.createdAt.toISOString(),
    routeId: route.id,
    notificationId: route.notificationId,
    data: route.payload,
  };
}

/**
 * Creates the webhook channel. The destination is the receiver's URL
 * (`https://…`); it must resolve to public addresses unless allowed by
 * `allowHosts` / `allowAddresses`. Headers sent: `webhook-id`,
 * `webhook-timestamp` (Unix seconds), `webhook-signature` (when a secret is
 * set), `traceparent`/`tracestate` (when the notification carries a trace
 * context and `propagateTrace` is not false), `content-type:
 * application/json`, `user-agent: Herald/<version>`.
 *
 * @example
 * ```ts
 * import { webhookChannel } from "./webhook.ts";
 * const webhook = webhookChannel({
 *   secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
 *   httpsOnly: true,
 * });
 * // enqueue a route { channel: "webhook", destination: "https://example.com/hooks/herald" }
 * ```
 */
export function webhookChannel(options: WebhookChannelOptions = {}): Channel {
  refuseUnknownOptions<WebhookChannelOptions>(options, {
    ...HTTP_OPTIONS,
    ...GUARD_OPTIONS,
    secret: true,
    propagateTrace: true,
  }, "webhookChannel");
  const http = resolveHttp(options);
  const guard = addressGuard(options);
  const secrets = options.secret === undefined ? [] : [options.secret].flat();
  // Validate now: a malformed secret is a start-up error, not a send failure.
  if (secrets.length > 0) decodeSecrets(secrets, "secret");
  return {
    async send(route: Route, ctx: SendContext): Promise<DeliveryDetails> {
      const body = JSON.stringify(webhookEnvelope(route));
      const timestamp = Math.floor(http.now() / 1000);
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "webhook-id": route.id,
        "webhook-timestamp": String(timestamp),
      };
      if (ctx.trace && options.propagateTrace !== false) {
        headers["traceparent"] = ctx.trace.traceparent;
        if (ctx.trace.tracestate) headers["tracestate"] = ctx.trace.tracestate;
      }
      if (secrets.length > 0) {
        headers["webhook-signature"] = await signWebhook({
          secret: secrets,
          id: route.id,
          timestamp,
          body,
        });
      }
      return await postHttp(
        {
          channel: "webhook",
          target: route.destination,
          headers,
          body,
          secrets,
          guard,
        },
        ctx,
        http,
      );
    },
  };
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../core/errors.ts";
export type { JsonValue, Route } from "../core/route.ts";
export type { AddressGuardOptions, Resolver } from "./options.ts";
export type { HttpOptions } from "./options.ts";
export type { Channel, SendContext } from "./channel.ts";
