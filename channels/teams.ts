/**
 * The `teams` channel: posts an Adaptive Card to a Microsoft Teams incoming
 * webhook or a Workflows ("When a Teams webhook request is received") URL.
 *
 * @module
 */
import type { Channel } from "./channel.ts";
import type { Route } from "../route.ts";
import { type JsonObject, jsonUrlChannel, type WebhookUrlChannelOptions } from "./_json_post.ts";
import { type HttpAnswer, statusError } from "./_http.ts";
import { requireText, stringField } from "./_payload.ts";

/** Options of {@link teamsChannel}. */
export type TeamsChannelOptions = WebhookUrlChannelOptions;

/**
 * Creates the Teams channel. The destination is the webhook or workflow URL
 * (a credential). By default the message is a `message` activity holding one
 * Adaptive Card with `payload.title` (optional, bold) and `payload.text`;
 * pass `template` to send any card.
 *
 * @example
 * ```ts
 * import { teamsChannel } from "./teams.ts";
 * const teams = teamsChannel({ httpsOnly: true });
 * // payload: { title: "Deploy finished", text: "api v2.3.1 is live" }
 * ```
 */
export function teamsChannel(options: TeamsChannelOptions = {}): Channel {
  return jsonUrlChannel({ name: "teams", render: teamsCard, classify: _classify }, options);
}

/** The default Adaptive Card message for `route`. */
export function teamsCard(route: Route): JsonObject {
  const text = requireText(route, "teams");
  const title = stringField(route, "title");
  const body: JsonObject[] = [];
  if (title !== undefined) {
    body.push({ type: "TextBlock", text: title, weight: "Bolder", size: "Medium", wrap: true });
  }
  body.push({ type: "TextBlock", text, wrap: true });
  return {
    type: "message",
    attachments: [{
      contentType: "application/vnd.microsoft.card.adaptive",
      content: {
        $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
        type: "AdaptiveCard",
        version: "1.4",
        body,
      },
    }],
  };
}

/**
 * Legacy Office 365 connectors answer HTTP 200 with a text body such as
 * "Microsoft Teams endpoint returned HTTP error 429 …" when throttled; read
 * the embedded status instead of reporting success.
 */
function _classify(answer: HttpAnswer, where: string): Error | undefined {
  if (answer.status < 200 || answer.status > 299) return undefined;
  const embedded = /returned HTTP error (\d{3})/.exec(answer.text);
  if (embedded === null) return undefined;
  return statusError({
    channel: "teams",
    status: Number(embedded[1]),
    where,
    detail: `(answered HTTP ${answer.status} with an embedded error)`,
  });
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../errors.ts";
export type { JsonValue, Route } from "../route.ts";
export type { JsonObject } from "./_json_post.ts";
export type { Channel, SendContext } from "./channel.ts";
