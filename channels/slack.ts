/**
 * The `slack` channel: posts to a Slack incoming webhook.
 *
 * @module
 */
import type { Channel } from "./channel.ts";
import type { Route } from "../core/route.ts";
import { jsonUrlChannel } from "./_json_post.ts";
import type { RateLimit } from "../core/destination.ts";
import type { JsonObject, WebhookUrlChannelOptions } from "./options.ts";
import { requireText } from "./_payload.ts";
import { refuseUnknownOptions, WEBHOOK_URL_OPTIONS } from "./_options.ts";

/** Options of {@link slackChannel}. */
export type SlackChannelOptions = WebhookUrlChannelOptions;

/**
 * Creates the Slack channel. The destination is the incoming webhook URL
 * (`https://hooks.slack.com/services/…`, a credential: it never appears in
 * errors). By default the message is `{ text: payload.text }`, plus
 * `payload.blocks` when it is an array; pass `template` to build any
 * message Slack accepts.
 *
 * @example
 * ```ts
 * import { slackChannel } from "./slack.ts";
 * const slack = slackChannel({
 *   template: (route) => ({ text: `${route.kind}: ${JSON.stringify(route.payload)}` }),
 * });
 * ```
 */
export function slackChannel(options: SlackChannelOptions = {}): Channel {
  refuseUnknownOptions(options, WEBHOOK_URL_OPTIONS, "slackChannel");
  return { ...jsonUrlChannel({ name: "slack", render: _render }, options), rateLimit: SLACK_RATE };
}

/** Slack's published limit for incoming webhooks: about one message a second each. */
export const SLACK_RATE: RateLimit = { perSecond: 1, burst: 1 };

function _render(route: Route): JsonObject {
  const text = requireText(route, "slack");
  const payload = route.payload as JsonObject;
  const blocks = payload["blocks"];
  return Array.isArray(blocks) ? { text, blocks } : { text };
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../core/errors.ts";
export type { JsonValue, Route } from "../core/route.ts";
export type { Channel, SendContext } from "./channel.ts";
export type { RateLimit } from "../core/destination.ts";
