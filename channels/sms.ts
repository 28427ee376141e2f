/**
 * The `sms` channel: sends a text message through Twilio's Messages API.
 *
 * @module
 */
import type { Channel, SendContext } from "./channel.ts";
import type { RateLimit } from "../core/destination.ts";
import { type DeliveryDetails, InvalidArgumentError, PermanentError } from "../core/errors.ts";
import type { Route } from "../core/route.ts";
import { postHttp, resolveHttp } from "./_http.ts";
import type { HttpOptions } from "./options.ts";
import { applyTemplate, requireText } from "./_payload.ts";
import {
  baseUrl,
  HTTP_OPTIONS,
  refuseUnknownOptions,
  requireString,
  requireToken,
} from "./_options.ts";

/** Twilio's public API endpoint. */
export const TWILIO_API_URL = "https://api.twilio.com";

/** Options of {@link smsChannel}. */
export interface SmsChannelOptions extends HttpOptions {
  /** Twilio Account SID (`AC…`). */
  readonly accountSid: string;
  /** Twilio Auth Token (or an API key secret paired with `apiKeySid`). Never logged. */
  readonly authToken: string;
  /**
   * Sender: an E.164 number (`"+15005550006"`), an alphanumeric sender id, or
   * a Messaging Service SID (`"MG…"`, sent as `MessagingServiceSid`).
   */
  readonly from: string;
  /** Authenticate with an API key (`SK…`) instead of the account's own token. */
  readonly apiKeySid?: string;
  /** API base URL; override for tests. */
  readonly baseUrl?: string;
  /** Renders a route to the message body; by default `payload.text`. */
  readonly template?: (route: Route) => string;
}

/**
 * Twilio's published default for one long-code number: one message a second
 * (toll-free and short codes allow more: raise it with
 * `herald destinations set sms '*' --rate N`).
 */
export const TWILIO_RATE: RateLimit = { perSecond: 1, burst: 1 };

/**
 * Creates the SMS channel (Twilio). The destination is the recipient's
 * number in E.164 form (`"+4915112345678"`). Sends
 * `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, with
 * HTTP Basic auth. Twilio's Messages API documents no idempotency key, so a
 * retry after a lost answer can send twice; invalid or unsubscribed numbers
 * (HTTP 400 with Twilio error 21211, 21610, …) are permanent.
 *
 * @example
 * ```ts
 * import { smsChannel } from "./sms.ts";
 * const sms = smsChannel({
 *   accountSid: "AC00000000000000000000000000000000",
 *   authToken: "your_auth_token",
 *   from: "+15005550006",
 *   template: (route) => `Herald: ${route.kind}`,
 * });
 * ```
 */
export function smsChannel(options: SmsChannelOptions): Channel {
  refuseUnknownOptions<SmsChannelOptions>(options, {
    ...HTTP_OPTIONS,
    accountSid: true,
    authToken: true,
    from: true,
    apiKeySid: true,
    baseUrl: true,
    template: true,
  }, "smsChannel");
  const http = resolveHttp(options);
  const accountSid = requireString(options.accountSid, "accountSid");
  if (!/^AC[0-9a-fA-F]{32}$/.test(accountSid)) {
    throw new InvalidArgumentError(
      "accountSid",
      "must be AC followed by 32 hex digits",
      accountSid,
    );
  }
  const authToken = requireToken(options.authToken, "authToken");
  const from = requireString(options.from, "from").trim();
  const user = options.apiKeySid === undefined
    ? accountSid
    : requireToken(options.apiKeySid, "apiKeySid");
  const target = `${baseUrl(options.baseUrl ?? TWILIO_API_URL, "baseUrl")}` +
    `/2010-04-01/Accounts/${accountSid}/Messages.json`;
  const authorization = `Basic ${btoa(`${user}:${authToken}`)}`;
  const template = options.template;
  return {
    rateLimit: TWILIO_RATE,
    async send(route: Route, ctx: SendContext): Promise<DeliveryDetails> {
      const to = route.destination.trim();
      if (!/^\+[1-9][0-9]{1,14}$/.test(to)) {
        throw new PermanentError("sms: the destination is not an E.164 phone number (+<digits>)");
      }
      const text = template === undefined
        ? requireText(route, "sms")
        : applyTemplate(template, route, "sms");
      if (typeof text !== "string" || text === "") {
        throw new PermanentError("sms: the template returned no text");
      }
      const form = new URLSearchParams({ To: to });
      form.set(/^MG[0-9a-fA-F]{32}$/.test(from) ? "MessagingServiceSid" : "From", from);
      form.set("Body", text);
      return await postHttp(
        {
          channel: "sms",
          target,
          headers: {
            authorization,
            accept: "application/json",
            "content-type": "application/x-www-form-urlencoded",
          },
          body: form.toString(),
          secrets: [authToken, authorization.slice("Basic ".length)],
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
export type { HttpOptions } from "./options.ts";
export type { Channel, SendContext } from "./channel.ts";
