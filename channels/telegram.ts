/**
 * The `telegram` channel: sends a message through the Telegram Bot API
 * (`sendMessage`).
 *
 * @module
 */
import type { Channel, SendContext } from "./channel.ts";
import { type DeliveryDetails, InvalidArgumentError, PermanentError } from "../errors.ts";
import type { Route } from "../route.ts";
import {
  detailOf,
  type HttpAnswer,
  type HttpOptions,
  postHttp,
  resolveHttp,
  statusError,
} from "./_http.ts";
import { applyTemplate, requireText } from "./_payload.ts";
import { baseUrl } from "./_config.ts";

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

/**
 * Creates the Telegram channel. The destination is a chat id (`"123456789"`,
 * `"-1001234567890"`) or a public channel username (`"@mychannel"`).
 * Telegram's 429 `parameters.retry_after` becomes the retry delay; "chat not
 * found" and "bot was blocked by the user" are permanent. Telegram offers no
 * idempotency key, so a retry after a lost answer can post twice.
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
  const http = resolveHttp(options);
  const token = options.botToken;
  if (typeof token !== "string" || !/^[0-9]+:[A-Za-z0-9_-]+$/.test(token)) {
    throw new InvalidArgumentError("botToken", "must look like <bot id>:<secret>");
  }
  const api = baseUrl(options.apiUrl ?? TELEGRAM_API_URL, "apiUrl");
  const target = `${api}/bot${token}/sendMessage`;
  const template = options.template;
  return {
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
          classify: (answer, where) => _classify(answer, where, token),
        },
        ctx,
        http,
      );
    },
  };
}

/** Bot API errors are `{ ok: false, error_code, description, parameters? }`. */
function _classify(answer: HttpAnswer, where: string, token: string): Error | undefined {
  if (answer.status >= 200 && answer.status <= 299) return undefined;
  let parsed: { description?: unknown; parameters?: { retry_after?: unknown } };
  try {
    parsed = JSON.parse(answer.text) as typeof parsed;
  } catch {
    return undefined;
  }
  const retryAfter = parsed.parameters?.retry_after;
  const description = typeof parsed.description === "string" ? parsed.description : "";
  return statusError({
    channel: "telegram",
    status: answer.status,
    where,
    detail: detailOf(description, [token]),
    retryAfterMs: typeof retryAfter === "number" && retryAfter >= 0 ? retryAfter * 1000 : undefined,
  });
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../errors.ts";
export type { JsonValue, Route } from "../route.ts";
export type { HttpOptions } from "./_http.ts";
export type { Channel, SendContext } from "./channel.ts";
