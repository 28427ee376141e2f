/**
 * The `discord` channel: executes a Discord webhook.
 *
 * @module
 */
import type { Channel } from "./channel.ts";
import type { Route } from "../route.ts";
import { type JsonObject, jsonUrlChannel, type WebhookUrlChannelOptions } from "./_json_post.ts";
import { type HttpAnswer, statusError } from "./_http.ts";
import { requireText } from "./_payload.ts";

/** Discord refuses `content` longer than this. */
const MAX_CONTENT = 2000;

/** Options of {@link discordChannel}. */
export type DiscordChannelOptions = WebhookUrlChannelOptions;

/**
 * Creates the Discord channel. The destination is the webhook URL
 * (`https://discord.com/api/webhooks/<id>/<token>`, a credential). By
 * default the message is `{ content: payload.text }`, cut to Discord's 2000
 * characters; pass `template` for embeds, a username, and so on.
 *
 * @example
 * ```ts
 * import { discordChannel } from "./discord.ts";
 * const discord = discordChannel({
 *   template: (route) => ({ content: String(route.kind), allowed_mentions: { parse: [] } }),
 * });
 * ```
 */
export function discordChannel(options: DiscordChannelOptions = {}): Channel {
  return jsonUrlChannel("discord", options, _render, _classify);
}

function _render(route: Route): JsonObject {
  const text = requireText(route, "discord");
  const content = text.length > MAX_CONTENT ? `${text.slice(0, MAX_CONTENT - 1)}…` : text;
  // No @everyone pings from notification text unless a template asks for them.
  return { content, allowed_mentions: { parse: [] } };
}

/** Discord's 429 body carries `retry_after` in seconds when the header is missing. */
function _classify(answer: HttpAnswer, where: string): Error | undefined {
  if (answer.status !== 429 || answer.headers.has("retry-after")) return undefined;
  let seconds: unknown;
  try {
    seconds = (JSON.parse(answer.text) as { retry_after?: unknown }).retry_after;
  } catch {
    return undefined;
  }
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return undefined;
  return statusError({
    channel: "discord",
    status: 429,
    where,
    detail: "rate limited",
    retryAfterMs: Math.ceil(seconds * 1000),
  });
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../errors.ts";
export type { JsonValue, Route } from "../route.ts";
export type { Channel, SendContext } from "./channel.ts";
