/**
 * The `discord` channel: executes a Discord webhook and waits for Discord to
 * confirm the message was saved.
 *
 * @module
 */
import type { Channel } from "./channel.ts";
import { RetryLaterError } from "../core/errors.ts";
import type { Route } from "../core/route.ts";
import { jsonUrlChannel } from "./_json_post.ts";
import type { JsonObject, WebhookUrlChannelOptions } from "./options.ts";
import {
  delayFromSeconds,
  detailOf,
  type HttpAnswer,
  jsonObjectOf,
  MAX_RESULT_BYTES,
  statusError,
} from "./_http.ts";
import { requireText, truncate } from "./_payload.ts";
import { refuseUnknownOptions, WEBHOOK_URL_OPTIONS } from "./_options.ts";

/** Discord refuses `content` longer than this. */
const MAX_CONTENT = 2000;

/** Options of {@link discordChannel}. */
export type DiscordChannelOptions = WebhookUrlChannelOptions;

/**
 * Creates the Discord channel. The destination is the webhook URL
 * (`https://discord.com/api/webhooks/<id>/<token>`, a credential; a
 * `thread_id` query parameter is kept). Herald adds `wait=true`, so Discord
 * answers only once the message is saved, and counts the route sent only on
 * HTTP 200 with the created message; without `wait`, Discord answers 204 even
 * for a message it dropped. By default the message is
 * `{ content: payload.text }`, cut to Discord's 2000 characters; pass
 * `template` for embeds, a username, and so on.
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
  refuseUnknownOptions(options, WEBHOOK_URL_OPTIONS, "discordChannel");
  return jsonUrlChannel({
    name: "discord",
    render: _render,
    classify: _classify,
    target: _waitForMessage,
    // The created message echoes the content back: read it whole.
    maxBodyBytes: MAX_RESULT_BYTES,
  }, options);
}

function _render(route: Route): JsonObject {
  const content = truncate(requireText(route, "discord"), MAX_CONTENT);
  // No @everyone pings from notification text unless a template asks for them.
  return { content, allowed_mentions: { parse: [] } };
}

/** The webhook URL with `wait=true` set; other parameters (`thread_id`) stay. */
function _waitForMessage(destination: string): string {
  let url: URL;
  try {
    url = new URL(destination);
  } catch {
    return destination; // the address guard refuses it, without echoing it
  }
  url.searchParams.set("wait", "true");
  return url.href;
}

/**
 * Sent means HTTP 200 with a message object. Any other 2xx did not confirm
 * the message (a 204 is what Discord answers when `wait` was ignored), so it
 * is retried. A 429 body carries `retry_after` in seconds when the header is
 * missing.
 */
function _classify(answer: HttpAnswer, where: string): Error | undefined {
  const { status } = answer;
  const body = jsonObjectOf(answer.text);
  if (status >= 200 && status <= 299) {
    if (status === 200 && typeof body?.["id"] === "string") return undefined;
    return new RetryLaterError(
      `discord: HTTP ${status} from ${where} without the created message; ` +
        "not confirmed as saved",
      { httpStatus: status },
    );
  }
  if (status !== 429 || answer.headers.has("retry-after")) return undefined;
  const retryAfterMs = delayFromSeconds(body?.["retry_after"]);
  if (retryAfterMs === undefined) return undefined;
  const detail = detailOf(
    typeof body?.["message"] === "string" ? body["message"] : "",
    answer.secrets,
  );
  return statusError({ channel: "discord", status, where, detail, retryAfterMs });
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../core/errors.ts";
export type { JsonValue, Route } from "../core/route.ts";
export type { Channel, SendContext } from "./channel.ts";
