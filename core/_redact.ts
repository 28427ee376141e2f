/**
 * Keeps secrets out of logs, errors and `last_error`. Destinations such as
 * Slack webhook URLs are credentials in themselves, so any URL is cut down to
 * its scheme and host, and anything that looks like a credential is masked.
 *
 * @module
 */
import { httpUrl } from "./destination_key.ts";

const URL_PATTERN = /\b([a-z][a-z0-9+.-]*):\/\/[^\s"'<>()]+/gi;
/** An http(s) URL spelled without `//` (`https:host/…`, `https:\\host\…`): the parser takes it. */
const LOOSE_HTTP_URL = /\bhttps?:(?!\/\/)[/\\]*[^\s"'<>()]+/gi;
/** The words a credential's name ends in, in any case or style (`client_secret`, `accessToken`). */
const CREDENTIAL = "[a-z0-9_-]*?(?:token|secret|password|passwd|pwd|api[_-]?key|apikey|" +
  "authorization|auth|key|signature|sig|credentials?)";
/** `name=value` or `name: value`, the value quoted or not (`refresh_token=…`, `x-api-key: …`). */
const KEYED_SECRET = new RegExp(
  `(?<![a-z0-9_-])(${CREDENTIAL})(\\s*[:=]\\s*["']?)([^\\s"'&,;]+)`,
  "gi",
);
/**
 * `"name": "value"`, both quoted (JSON, a dict), the value maybe cut off
 * before its closing quote (a cut answer).
 */
const QUOTED_SECRET = new RegExp(
  `(["'])(${CREDENTIAL})\\1(\\s*[:=]\\s*)(["'])[^"']+(?:\\4|$)`,
  "gi",
);
/**
 * `"name": value`, a quoted name and a bare value that looks like a token
 * (8 or more such characters, a digit among them). Prose after a quoted name
 * is not one (`Invalid 'HERALD_DASHBOARD_TOKEN': must be at least 16…`).
 */
const QUOTED_NAME_SECRET = new RegExp(
  `(["'])(${CREDENTIAL})\\1(\\s*[:=]\\s*)(?=[\\w.~+/=-]*\\d)[\\w.~+/=-]{8,}`,
  "gi",
);
/** An `Authorization` header's value, whatever its scheme (`Token X`, `Digest …`). */
const AUTHORIZATION = /\b((?:proxy-)?authorization)(\s*[:=]\s*["']?)(?:[a-z-]+\s+)?[^\s"'&,;]+/gi;
const BEARER = /\b(bearer|basic)\s+[a-z0-9._~+/=-]+/gi;
const WHSEC = /\bwhsec_[a-z0-9+/=]+/gi;
/** Tokens known by their prefix: Slack, Stripe, GitHub, SendGrid. */
const PREFIXED_TOKEN = new RegExp(
  "\\b(?:xox[abeoprs]-[a-z0-9-]+|[rs]k_(?:live|test)_[a-z0-9]+|gh[oprsu]_[a-z0-9]+|" +
    "github_pat_[a-z0-9_]+|SG\\.[a-z0-9_-]+\\.[a-z0-9_-]+)",
  "gi",
);

/** An origin with no path, query or user, maybe tagged `#` and 16 hex digits: a destination key. */
const DESTINATION_KEY = /^https?:\/\/[^/?#@\\\s]+(#[0-9a-f]{16})?$/i;
/** The most of a text the patterns read: their cost grows with it, and 500 are kept. */
const MAX_REDACTED_INPUT = 16_384;

/** The longest `last_error` Herald stores. */
export const MAX_ERROR_LENGTH = 500;

/** Cuts a URL down to `scheme://host` (the path and query may hold tokens). */
export function redactUrl(url: string): string {
  // A destination's key (an origin, maybe with its 16-hex-digit tag) holds
  // nothing a host name does not: shown whole, so operators can tell keys apart.
  if (isDestinationKey(url)) return url;
  try {
    const u = new URL(url);
    if (u.host === "") return `${u.protocol}//[redacted]`;
    return `${u.protocol}//${u.host}/[redacted]`;
  } catch {
    return "[redacted url]";
  }
}

/** True when `text` is exactly an origin (as the URL parser writes it), maybe with its tag. */
function isDestinationKey(text: string): boolean {
  const m = DESTINATION_KEY.exec(text);
  if (!m) return false;
  try {
    const u = new URL(text);
    return u.username === "" && u.password === "" &&
      `${u.origin}${m[1] ?? ""}`.toLowerCase() === text.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * A route's destination as Herald shows it (CLI, dashboard, events): an
 * http(s) URL in any spelling a channel would send to is cut to scheme and
 * host; anything else with a path separator may be a URL missing its scheme
 * (a token in its path) and is masked whole; an e-mail address, a phone
 * number or a chat id is shown, through {@link redact}.
 */
export function redactDestination(destination: string): string {
  const url = httpUrl(destination);
  if (url !== undefined) return redactUrl(url.href);
  return /[/\\]/.test(destination) ? "[redacted]" : redact(destination);
}

/**
 * Masks URLs, `key=value` credentials, bearer tokens and signing secrets in
 * free text, then caps its length. Used on every message Herald did not write
 * itself (driver errors, `fetch` errors, channel errors) before it is logged
 * or stored. `extraSecrets` are exact strings to mask wherever they appear.
 */
export function redact(text: string, extraSecrets: readonly string[] = []): string {
  // Postgres text refuses NUL and lone surrogates. A reason it refuses would
  // fail the finalise, roll the route back and send it again for ever with no
  // attempt spent, so they never get this far.
  let out = text.replaceAll("\u0000", "\uFFFD").toWellFormed();
  for (const secret of extraSecrets) {
    if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  // Far past what is kept: the patterns below cost more than linear time on
  // some hostile texts, and a custom channel's message has no bound of its own.
  if (out.length > MAX_REDACTED_INPUT) out = cut(out, MAX_REDACTED_INPUT);
  out = out
    .replace(URL_PATTERN, (m) => redactUrl(m))
    .replace(LOOSE_HTTP_URL, (m) => redactUrl(m))
    .replace(WHSEC, "whsec_[redacted]")
    .replace(PREFIXED_TOKEN, "[redacted]")
    .replace(BEARER, "$1 [redacted]")
    .replace(AUTHORIZATION, "$1$2[redacted]")
    .replace(QUOTED_SECRET, "$1$2$1$3$4[redacted]$4")
    .replace(QUOTED_NAME_SECRET, "$1$2$1$3[redacted]")
    .replace(KEYED_SECRET, "$1$2[redacted]");
  return out.length > MAX_ERROR_LENGTH ? `${cut(out, MAX_ERROR_LENGTH - 1)}…` : out;
}

/** The first `n` UTF-16 units of `s`, never ending inside a surrogate pair. */
export function cut(s: string, n: number): string {
  const last = s.charCodeAt(n - 1);
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? n - 1 : n);
}

/** A short, secret-free description of any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const name = err.name && err.name !== "Error" ? `${err.name}: ` : "";
    return redact(`${name}${err.message}`);
  }
  if (typeof err === "string") return redact(err);
  return redact(`non-error thrown: ${safeString(err)}`);
}

function safeString(value: unknown): string {
  try {
    return typeof value === "object" && value !== null
      ? JSON.stringify(value) ?? "object"
      : String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
