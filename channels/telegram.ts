/**
 * The `telegram` channel: sends a message through the Telegram Bot API
 * (`sendMessage`).
 *
 * @module
 */
import type { Channel, SendContext } from "./channel.ts";
import type { RateLimit } from "../core/destination.ts";
import {
  type DeliveryDetails,
  InvalidArgumentError,
  PermanentError,
  RetryLaterError,
} from "../core/errors.ts";
import type { Route } from "../core/route.ts";
import {
  delayFromSeconds,
  detailOf,
  type HttpAnswer,
  jsonObjectOf,
  MAX_RESULT_BYTES,
  objectOf,
  parseRetryAfter,
  postHttp,
  resolveHttp,
  statusError,
} from "./_http.ts";
import type { HttpOptions } from "./options.ts";
import { applyTemplate, requireText } from "./_payload.ts";
import { baseUrl, HTTP_OPTIONS, refuseUnknownOptions } from "./_options.ts";

/** The Bot API's public endpoint. */
export const TELEGRAM_API_URL = "https://api.telegram.org";

/** A `sendMessage` request body without `chat_id` (the destination supplies it). */
export interface TelegramMessage {
  /** Message text, 1–4096 characters after entity parsing. */
  readonly text: string;
  /** `"HTML"`, `"MarkdownV2"` or `"Markdown"`; plain text when absent. */
  readonly parse_mode?: string;
  /** Deliver without sound. */
  readonly disable_notification?: boolean;
}

/** Options of {@link telegramChannel}. */
export interface TelegramChannelOptions extends HttpOptions {
  /** The bot token from @BotFather (`123456:ABC…`); it is part of the URL, never logged. */
  readonly botToken: string;
  /** API base URL; override for tests or a self-hosted Bot API server. */
  readonly apiUrl?: string;
  /** Renders a route; by default `{ text: payload.text }`. */
  readonly template?: (route: Route) => TelegramMessage;
}

/** Telegram's published limit for one bot: about 30 messages a second. */
export const TELEGRAM_RATE: RateLimit = { perSecond: 30, burst: 1 };

/**
 * Creates the Telegram channel. The destination is a chat id (`"123456789"`,
 * `"-1001234567890"`) or a public channel username (`"@mychannel"`). Sent
 * means an answer with `ok: true`; `ok: false` fails by its `error_code`, even
 * under HTTP 200. Telegram's 429 `parameters.retry_after` becomes the retry
 * delay; "chat not found" and "bot was blocked by the user" are permanent; a
 * group upgraded to a supergroup fails naming the new chat id to use.
 * Telegram offers no idempotency key, so a retry after a lost answer can post
 * twice.
 *
 * @example
 * ```ts
 * import { telegramChannel } from "./telegram.ts";
 * const telegram = telegramChannel({
 *   botToken: "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
 *   template: (route) => ({ text: `<b>${route.kind}</b>`, parse_mode: "HTML" }),
 * });
 * ```
 */
export function telegramChannel(options: TelegramChannelOptions): Channel {
  refuseUnknownOptions<TelegramChannelOptions>(options, {
    ...HTTP_OPTIONS,
    botToken: true,
    apiUrl: true,
    template: true,
  }, "telegramChannel");
  const http = resolveHttp(options);
  const token = options.botToken;
  if (typeof token !== "string" || !/^[0-9]+:[A-Za-z0-9_-]+$/.test(token)) {
    throw new InvalidArgumentError("botToken", "must look like <bot id>:<secret>");
  }
  const api = baseUrl(options.apiUrl ?? TELEGRAM_API_URL, "apiUrl");
  const target = `${api}/bot${token}/sendMessage`;
  const template = options.template;
  return {
    rateLimit: TELEGRAM_RATE,
    async send(route: Route, ctx: SendContext): Promise<DeliveryDetails> {
      const chatId = route.destination.trim();
      if (!/^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$/.test(chatId)) {
        throw new PermanentError(
          "telegram: the destination must be a numeric chat id or an @channel username",
        );
      }
      const message = template === undefined
        ? { text: requireText(route, "telegram") }
        : applyTemplate(template, route, "telegram");
      return await postHttp(
        {
          channel: "telegram",
          target,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ ...message, chat_id: chatId }),
          secrets: [token],
          classify: _classify,
          // The result echoes the message back: read it whole to see `ok: true`.
          maxBodyBytes: MAX_RESULT_BYTES,
        },
        ctx,
        http,
      );
    },
  };
}

/**
 * The Bot API answers `{ ok: true, result }` or `{ ok: false, error_code,
 * description, parameters? }`. A 2xx is a send only with `ok: true`; `ok:
 * false` fails by its `error_code`, even under HTTP 200; a 2xx that is not a
 * Bot API answer at all (a proxy's page, `null`) is not confirmed: retried.
 */
function _classify(answer: HttpAnswer, where: string): Error | undefined {
  const reply = jsonObjectOf(answer.text);
  const is2xx = answer.status >= 200 && answer.status <= 299;
  if (is2xx && reply?.["ok"] === true) return undefined;
  if (reply?.["ok"] !== false) {
    if (!is2xx) return undefined; // not a Bot API error: the status rules apply
    return new RetryLaterError(
      `telegram: HTTP ${answer.status} from ${where} without ok: true; not confirmed as sent`,
      { httpStatus: answer.status },
    );
  }
  const code = reply["error_code"];
  const coded = typeof code === "number" && Number.isInteger(code) && code >= 400 && code <= 599;
  const status = is2xx && coded ? code : answer.status;
  const parameters = objectOf(reply["parameters"]);
  const description = typeof reply["description"] === "string" ? reply["description"] : "";
  const detail = (is2xx ? `(ok: false under HTTP ${answer.status}) ` : "") +
    detailOf(description, answer.secrets) + _migrated(parameters?.["migrate_to_chat_id"]);
  return statusError({
    channel: "telegram",
    status,
    where,
    detail,
    retryAfterMs: delayFromSeconds(parameters?.["retry_after"]) ??
      parseRetryAfter(answer.headers.get("retry-after"), answer.receivedAt),
  });
}

/** Chat ids are not secret: name the supergroup so the operator can fix the destination. */
function _migrated(chatId: unknown): string {
  return typeof chatId === "number" && Number.isSafeInteger(chatId)
    ? `; the group is now the supergroup ${chatId}: use that as the destination`
    : "";
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../core/errors.ts";
export type { JsonValue, Route } from "../core/route.ts";
export type { HttpOptions } from "./options.ts";
export type { Channel, SendContext } from "./channel.ts";
