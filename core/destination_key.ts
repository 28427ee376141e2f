/**
 * How a route's destination is named: its key, from the route's address
 * alone, so the enqueuer, every worker and the operator agree on it.
 *
 * @module
 */

/** The longest host name DNS allows; a destination's may be no longer (its key is indexed). */
export const MAX_HOST_LENGTH = 253;

/** The key of every destination of a channel that is not addressed by URL. */
export const CHANNEL_WIDE = "*";

/**
 * Hosts where one origin serves many unrelated receivers, each behind its own
 * secret URL (a Slack or Discord webhook, a Teams workflow, a Telegram bot):
 * one revoked webhook must not disable the rest, so each URL there is a
 * destination of its own.
 */
const SHARED_HOSTS =
  /(^|\.)(hooks\.slack\.com|discord(app)?\.com|webhook\.office\.com|logic\.azure\.com|api\.telegram\.org)$/;

/**
 * The destination a route belongs to. For an http(s) URL: its origin
 * (`scheme://host:port`), so every path of a dead host shares one state; on
 * the shared webhook hosts above, the origin plus a short hash of the whole
 * URL (never the URL: it holds the secret). Anything else (an e-mail
 * address, a phone number, a chat id) goes through the channel's one
 * provider: the whole channel is one destination, `*`.
 */
export function destinationKey(destination: string): string {
  const url = httpUrl(destination);
  if (url === undefined) return CHANNEL_WIDE;
  if (!SHARED_HOSTS.test(url.hostname)) return url.origin;
  // The parsed form: every spelling a channel sends to the same URL
  // (`https:host/…`, `HTTPS://Host/…`) is one destination.
  return `${url.origin}#${fnv1a64(url.href)}`;
}

/**
 * `destination` parsed, when it is an http(s) URL in any spelling the URL
 * parser takes (and so a channel sends to: `https:host/…`, `https:\\host\…`,
 * a tab inside); `undefined` otherwise.
 */
export function httpUrl(destination: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(destination);
  } catch {
    return undefined;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url : undefined;
}

/**
 * True when the key names one URL (a webhook on a shared host), so a 410
 * Gone from it means the destination is gone. A 410 from one path of an
 * origin says that path is gone, not the host's other paths: the route fails
 * for good and the origin counts it as an answer.
 */
export function isSingleUrlKey(key: string): boolean {
  return /#[0-9a-f]{16}$/.test(key);
}

/** True for a key named by origin: the default in-flight cap applies to it. */
export function isOriginKey(key: string): boolean {
  return key !== CHANNEL_WIDE;
}

/** FNV-1a, 64 bits, as 16 hex digits: a stable, non-secret tag (not a MAC). */
function fnv1a64(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}
