/**
 * Builds the channel set from environment variables, for the CLI. Every
 * variable is listed in docs/channels.md.
 *
 * @module
 */
import type { Channel } from "./channel.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { parseBoolean } from "../core/_validate.ts";
import type { AddressGuardOptions } from "./options.ts";
import type { HttpOptions } from "./options.ts";
import { logChannel } from "./log.ts";
import { webhookChannel } from "./webhook.ts";
import { slackChannel } from "./slack.ts";
import { discordChannel } from "./discord.ts";
import { teamsChannel } from "./teams.ts";
import { telegramChannel } from "./telegram.ts";
import { emailChannel, type EmailProvider } from "./email.ts";
import { smsChannel } from "./sms.ts";

/** Environment variables as `process.env` / `Deno.env.toObject()` give them. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Builds every channel whose required variables are present: `log`,
 * `webhook` (unsigned without `HERALD_WEBHOOK_SECRET`), `slack`, `discord`
 * and `teams` always; `telegram` with `HERALD_TELEGRAM_BOT_TOKEN`; `email`
 * when any `HERALD_EMAIL_*` is set (then provider, key and sender are all
 * required); `sms` when any `HERALD_TWILIO_*` is set (then SID, token and
 * sender are required). Throws `InvalidArgumentError` whose `field` is the
 * offending variable; secret values are never echoed.
 *
 * @example
 * ```ts
 * import { channelsFromEnv } from "./env.ts";
 * const channels = channelsFromEnv({
 *   HERALD_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
 *   HERALD_HTTPS_ONLY: "true",
 * });
 * // Object.keys(channels): log, webhook, slack, discord, teams
 * ```
 */
export function channelsFromEnv(env: Env): Record<string, Channel> {
  const http = _httpOptions(env);
  const guarded = { ...http, ..._guardOptions(env) };
  const secret = _list(env, "HERALD_WEBHOOK_SECRET", /[\s,]+/);
  const channels: Record<string, Channel> = {
    log: logChannel(),
    webhook: _as(
      { secret: "HERALD_WEBHOOK_SECRET", allowAddresses: "HERALD_ALLOW_ADDRESSES" },
      () =>
        webhookChannel({
          ...guarded,
          ...(secret.length === 0 ? {} : { secret }),
          propagateTrace: parseBoolean("HERALD_WEBHOOK_TRACE", _get(env, "HERALD_WEBHOOK_TRACE")) ??
            true,
        }),
    ),
    slack: _as({ allowAddresses: "HERALD_ALLOW_ADDRESSES" }, () => slackChannel(guarded)),
    discord: _as({ allowAddresses: "HERALD_ALLOW_ADDRESSES" }, () => discordChannel(guarded)),
    teams: _as({ allowAddresses: "HERALD_ALLOW_ADDRESSES" }, () => teamsChannel(guarded)),
  };

  const botToken = _get(env, "HERALD_TELEGRAM_BOT_TOKEN");
  if (botToken !== undefined) {
    const apiUrl = _get(env, "HERALD_TELEGRAM_API_URL");
    channels["telegram"] = _as(
      { botToken: "HERALD_TELEGRAM_BOT_TOKEN", apiUrl: "HERALD_TELEGRAM_API_URL" },
      () => telegramChannel({ ...http, botToken, ...(apiUrl === undefined ? {} : { apiUrl }) }),
    );
  }

  const email = _group(env, "HERALD_EMAIL_", ["PROVIDER", "API_KEY", "FROM"]);
  if (email !== undefined) {
    const [provider = "", apiKey = "", from = ""] = email;
    const base = _get(env, "HERALD_EMAIL_BASE_URL");
    const stream = _get(env, "HERALD_EMAIL_MESSAGE_STREAM");
    channels["email"] = _as({
      provider: "HERALD_EMAIL_PROVIDER",
      apiKey: "HERALD_EMAIL_API_KEY",
      from: "HERALD_EMAIL_FROM",
      baseUrl: "HERALD_EMAIL_BASE_URL",
    }, () =>
      emailChannel({
        ...http,
        provider: provider.toLowerCase() as EmailProvider,
        apiKey,
        from,
        ...(base === undefined ? {} : { baseUrl: base }),
        ...(stream === undefined ? {} : { messageStream: stream }),
      }));
  }

  const twilio = _group(env, "HERALD_TWILIO_", ["ACCOUNT_SID", "AUTH_TOKEN", "FROM"]);
  if (twilio !== undefined) {
    const [accountSid = "", authToken = "", from = ""] = twilio;
    const base = _get(env, "HERALD_TWILIO_BASE_URL");
    const keySid = _get(env, "HERALD_TWILIO_API_KEY_SID");
    channels["sms"] = _as({
      accountSid: "HERALD_TWILIO_ACCOUNT_SID",
      authToken: "HERALD_TWILIO_AUTH_TOKEN",
      from: "HERALD_TWILIO_FROM",
      baseUrl: "HERALD_TWILIO_BASE_URL",
    }, () =>
      smsChannel({
        ...http,
        accountSid,
        authToken,
        from,
        ...(base === undefined ? {} : { baseUrl: base }),
        ...(keySid === undefined ? {} : { apiKeySid: keySid }),
      }));
  }
  return channels;
}

function _httpOptions(env: Env): HttpOptions {
  const raw = _get(env, "HERALD_HTTP_TIMEOUT_MS");
  if (raw === undefined) return {};
  if (!/^[0-9]+$/.test(raw) || Number(raw) <= 0) {
    throw new InvalidArgumentError("HERALD_HTTP_TIMEOUT_MS", "must be a positive integer", raw);
  }
  return { timeoutMs: Number(raw) };
}

function _guardOptions(env: Env): AddressGuardOptions {
  const hosts = _list(env, "HERALD_ALLOW_HOSTS", /[\s,]+/);
  const addresses = _list(env, "HERALD_ALLOW_ADDRESSES", /[\s,]+/);
  const httpsOnly = _bool(env, "HERALD_HTTPS_ONLY");
  return {
    ...(hosts.length === 0 ? {} : { allowHosts: hosts }),
    ...(addresses.length === 0 ? {} : { allowAddresses: addresses }),
    ...(httpsOnly === undefined ? {} : { httpsOnly }),
  };
}

/** A variable's trimmed value; blank counts as unset. */
function _get(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

function _list(env: Env, name: string, separator: RegExp): string[] {
  return (_get(env, name) ?? "").split(separator).filter((s) => s !== "");
}

function _bool(env: Env, name: string): boolean | undefined {
  return parseBoolean(name, _get(env, name));
}

/**
 * All-or-nothing variables: `undefined` when none is set, their values when
 * all are, an error naming the first missing one otherwise.
 */
function _group(env: Env, prefix: string, names: readonly string[]): string[] | undefined {
  const values = names.map((n) => _get(env, `${prefix}${n}`));
  if (values.every((v) => v === undefined)) return undefined;
  const missing = names.find((_, i) => values[i] === undefined);
  if (missing !== undefined) {
    const set = names.filter((_, i) => values[i] !== undefined).map((n) => `${prefix}${n}`);
    throw new InvalidArgumentError(
      `${prefix}${missing}`,
      `is required when ${set.join(", ")} is set`,
    );
  }
  return values as string[];
}

/**
 * Runs a constructor and renames the option in its `InvalidArgumentError`
 * to the variable it came from, so the message says what to fix.
 */
function _as(fields: Readonly<Record<string, string>>, build: () => Channel): Channel {
  try {
    return build();
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    const name = fields[err.field];
    if (name === undefined) throw err;
    const problem = err.message.replace(`Invalid '${err.field}': `, "");
    throw new InvalidArgumentError(name, problem);
  }
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../core/errors.ts";
export type { JsonValue, Route } from "../core/route.ts";
export type { Channel, SendContext } from "./channel.ts";
