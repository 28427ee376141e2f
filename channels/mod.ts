/**
 * Herald's channels: each turns a claimed route into one delivery over HTTP
 * with web-standard APIs only (`fetch`, `URL`, `crypto.subtle`,
 * `AbortSignal`). Every HTTP channel takes an injectable `fetch`, a per-send
 * `timeoutMs` (default 30 s), classifies answers (2xx sent; 408/425/429/5xx
 * retried with `Retry-After`, capped at `MAX_RETRY_DELAY_MS`; other 4xx, 410
 * and redirects permanent; each provider refines this with what its API
 * documents, see docs/channels.md) and keeps URLs, tokens and keys out of
 * every message. Channels whose destination is a URL refuse non-public
 * addresses unless allowed.
 *
 * @example
 * ```ts
 * import { channelsFromEnv, emailChannel, webhookChannel } from "./mod.ts";
 * const channels = {
 *   ...channelsFromEnv({ HERALD_HTTPS_ONLY: "true" }),
 *   webhook: webhookChannel({ secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
 *   email: emailChannel({ provider: "postmark", apiKey: "server-token", from: "alerts@example.com" }),
 * };
 * ```
 *
 * @module
 */
export type { Channel, SendContext } from "./channel.ts";
// Re-exported so this entry point documents every type its API mentions.
export type { JsonValue, Route } from "../core/route.ts";
export type { DeliveryDetails } from "../core/errors.ts";
export { logChannel, type LogChannelOptions } from "./log.ts";
export {
  webhookChannel,
  type WebhookChannelOptions,
  type WebhookEnvelope,
  webhookEnvelope,
} from "./webhook.ts";
export {
  DEFAULT_TOLERANCE_MS,
  MIN_SECRET_BYTES,
  signWebhook,
  type SignWebhookParams,
  verifyWebhook,
  type VerifyWebhookParams,
} from "./webhook_signature.ts";
export { slackChannel, type SlackChannelOptions } from "./slack.ts";
export { discordChannel, type DiscordChannelOptions } from "./discord.ts";
export {
  TEAMS_MAX_MESSAGE_BYTES,
  TEAMS_WORKFLOW_HOSTS,
  teamsCard,
  teamsChannel,
  type TeamsChannelOptions,
} from "./teams.ts";
export {
  TELEGRAM_API_URL,
  telegramChannel,
  type TelegramChannelOptions,
  type TelegramMessage,
} from "./telegram.ts";
export {
  emailChannel,
  type EmailChannelOptions,
  type EmailMessage,
  type EmailProvider,
} from "./email.ts";
export { smsChannel, type SmsChannelOptions, TWILIO_API_URL } from "./sms.ts";
export { channelsFromEnv, type Env } from "./env.ts";
export type { AddressGuardOptions, Resolver } from "./options.ts";
export { DEFAULT_TIMEOUT_MS, MAX_RETRY_DELAY_MS, USER_AGENT } from "./_http.ts";
export type { HttpOptions } from "./options.ts";
export type { JsonObject, WebhookUrlChannelOptions } from "./options.ts";
