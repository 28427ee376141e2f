/**
 * The `teams` channel: posts an Adaptive Card to a Microsoft Teams Workflows
 * URL ("When a Teams webhook request is received") or a legacy incoming
 * webhook (Microsoft 365 connector, being retired).
 *
 * @module
 */
import { isLoopbackName } from "../core/_host.ts";
import type { Channel } from "./channel.ts";
import { InvalidArgumentError, PermanentError } from "../core/errors.ts";
import type { Route } from "../core/route.ts";
import { redact } from "../core/_redact.ts";
import { type ExtraRequest, jsonUrlChannel } from "./_json_post.ts";
import type { JsonObject, WebhookUrlChannelOptions } from "./options.ts";
import { type HttpAnswer, statusError } from "./_http.ts";
import { requireText, stringField } from "./_payload.ts";
import { refuseUnknownOptions, WEBHOOK_URL_OPTIONS } from "./_options.ts";

/**
 * Teams refuses a message over about 28 KB, and a Workflows URL says so only
 * after it has answered 202, when the flow runs. Herald refuses a request
 * body over this many bytes (UTF-8) before sending, as a permanent failure.
 */
export const TEAMS_MAX_MESSAGE_BYTES = 28 * 1024;

/**
 * The hosts (with their subdomains) of Workflows trigger URLs, the only ones
 * {@link TeamsChannelOptions.bearerToken} is sent to unless
 * `bearerTokenHosts` says otherwise.
 */
export const TEAMS_WORKFLOW_HOSTS: readonly string[] = ["logic.azure.com", "powerplatform.com"];

/** Options of {@link teamsChannel}. */
export interface TeamsChannelOptions extends WebhookUrlChannelOptions {
  /**
   * A Microsoft Entra ID access token for a Workflows trigger restricted to
   * "Any user in my tenant" or "Specific users in my tenant", sent as
   * `Authorization: Bearer <token>`. Tokens expire, so pass a function that
   * returns a current one: it is called before every send. Never logged.
   */
  readonly bearerToken?: string | (() => string | Promise<string>);
  /**
   * Hosts the bearer token may go to (a name also covers its subdomains);
   * default {@link TEAMS_WORKFLOW_HOSTS}. A destination elsewhere fails
   * permanently rather than receive the token.
   */
  readonly bearerTokenHosts?: readonly string[];
}

/**
 * Creates the Teams channel. The destination is the Workflows or webhook URL
 * (a credential). By default the message is a `message` activity holding one
 * Adaptive Card with `payload.title` (optional, bold) and `payload.text`;
 * pass `template` to send any card. A message over
 * {@link TEAMS_MAX_MESSAGE_BYTES} fails permanently without a request. A
 * Workflows URL answers 202 before its flow runs, so "sent" means the flow
 * was started: a flow that fails later (a private channel, a removed flow
 * owner) shows only in the flow's run history.
 *
 * @example
 * ```ts
 * import { teamsChannel } from "./teams.ts";
 * const teams = teamsChannel({ httpsOnly: true });
 * // payload: { title: "Deploy finished", text: "api v2.3.1 is live" }
 * ```
 */
export function teamsChannel(options: TeamsChannelOptions = {}): Channel {
  refuseUnknownOptions<TeamsChannelOptions>(options, {
    ...WEBHOOK_URL_OPTIONS,
    bearerToken: true,
    bearerTokenHosts: true,
  }, "teamsChannel");
  const auth = _bearer(options);
  return jsonUrlChannel({
    name: "teams",
    render: teamsCard,
    classify: _classify,
    prepare: async (destination, body) => {
      const size = new TextEncoder().encode(body).byteLength;
      if (size > TEAMS_MAX_MESSAGE_BYTES) {
        throw new PermanentError(
          `teams: the message is ${size} bytes, over the ${TEAMS_MAX_MESSAGE_BYTES}-byte ` +
            "(28 KB) limit of a Teams message; shorten the text or the template's card",
        );
      }
      return auth === undefined ? {} : await auth(destination);
    },
  }, options);
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

/** Builds the per-send `Authorization` header, or `undefined` without a token. */
function _bearer(
  options: TeamsChannelOptions,
): ((destination: string) => Promise<ExtraRequest>) | undefined {
  const token = options.bearerToken;
  if (token === undefined) return undefined;
  if (typeof token === "string" ? !/^[\x21-\x7e]+$/.test(token) : typeof token !== "function") {
    throw new InvalidArgumentError("bearerToken", "must be a token or a function returning one");
  }
  const hosts = (options.bearerTokenHosts ?? TEAMS_WORKFLOW_HOSTS).map((h) => h.toLowerCase());
  if (hosts.length === 0 || hosts.some((h) => !/^[a-z0-9.:[\]-]+$/.test(h))) {
    throw new InvalidArgumentError("bearerTokenHosts", "must list host names", hosts);
  }
  return async (destination) => {
    let url: URL;
    try {
      url = new URL(destination);
    } catch {
      return {}; // the address guard refuses it, without echoing it
    }
    const host = url.hostname;
    // Plain http only on this machine (a local stand-in): elsewhere the token
    // would cross the network in clear.
    if (url.protocol !== "https:" && !isLoopbackName(host)) {
      throw new PermanentError(
        `teams: the bearer token goes only over https, not to ${url.protocol}//${host}`,
      );
    }
    if (!hosts.some((h) => host === h || host.endsWith(`.${h}`))) {
      throw new PermanentError(
        `teams: the bearer token goes only to ${hosts.join(", ")}, not to ${host}; ` +
          "add the host to bearerTokenHosts if it is a Workflows host",
      );
    }
    const value = typeof token === "string" ? token : await _current(token);
    return { headers: { authorization: `Bearer ${value}` }, secrets: [value] };
  };
}

/** Calls the token function; a failure is transient (retried), its text kept secret-free. */
async function _current(get: () => string | Promise<string>): Promise<string> {
  let value: unknown;
  try {
    value = await get();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`teams: bearerToken() failed: ${redact(why.slice(0, 200))}`);
  }
  if (typeof value !== "string" || !/^[\x21-\x7e]+$/.test(value)) {
    throw new Error("teams: bearerToken() returned no usable token");
  }
  return value;
}

/**
 * Legacy connectors answer HTTP 200 with a text body such as "Microsoft Teams
 * endpoint returned HTTP error 429 …" when throttled; read the embedded
 * status instead of reporting success.
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
export type { DeliveryDetails } from "../core/errors.ts";
export type { JsonValue, Route } from "../core/route.ts";
export type { AddressGuardOptions, Resolver } from "./options.ts";
export type { HttpOptions } from "./options.ts";
export type { JsonObject, WebhookUrlChannelOptions } from "./options.ts";
export type { Channel, SendContext } from "./channel.ts";
