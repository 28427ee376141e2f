/**
 * What every HTTP channel shares: one POST with a per-send timeout, no
 * redirects, a capped read of the answer, and the mapping from HTTP status to
 * Herald's outcomes (2xx sent; 408/425/429/5xx retried, honouring
 * `Retry-After` up to {@link MAX_RETRY_DELAY_MS}; any other answer
 * permanent). Providers refine the mapping with a `classify` hook.
 *
 * @module
 */
import type { SendContext } from "./channel.ts";
import type { AddressGuard } from "./_address.ts";
import {
  type DeliveryDetails,
  HeraldError,
  InvalidArgumentError,
  PermanentError,
  RetryLaterError,
} from "../core/errors.ts";
import { cut, redact, redactUrl } from "../core/_redact.ts";
import { VERSION } from "../core/version.ts";
import { parseRetryAfter } from "./_retry_after.ts";

export {
  delayFromSeconds,
  MAX_RETRY_DELAY_MS,
  parseRateLimitReset,
  parseRetryAfter,
} from "./_retry_after.ts";
import type { HttpOptions } from "./options.ts";

/** {@link HttpOptions} with defaults filled in. */
export interface ResolvedHttp {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
  readonly now: () => number;
}

/** The `User-Agent` of every request, so receivers can tell Herald apart. */
export const USER_AGENT = `Herald/${VERSION}`;
/** Default per-send timeout. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** At most this many bytes of an answer are read; the rest is cancelled. */
export const MAX_BODY_BYTES = 4096;
/**
 * The read limit for providers whose success answer must be read whole to
 * know the message was taken (Discord's message object, Telegram's result,
 * which echo the text back and easily pass {@link MAX_BODY_BYTES}).
 */
export const MAX_RESULT_BYTES = 256 * 1024;

/** The part of an answer a provider hook may look at. */
export interface HttpAnswer {
  /** The HTTP status. */
  readonly status: number;
  /** The response headers. */
  readonly headers: Headers;
  /** At most {@link MAX_BODY_BYTES} (or the call's `maxBodyBytes`) of the body, as UTF-8. */
  readonly text: string;
  /** The body was longer, and `text` was cut off at the cap (maybe inside a secret). */
  readonly cut: boolean;
  /** The injected clock (epoch ms) when the answer arrived, for date-valued headers. */
  readonly receivedAt: number;
  /** What to mask in any text taken from the answer: the call's secrets and URL credentials. */
  readonly secrets: readonly string[];
}

/** One request to make. */
export interface HttpCall {
  /** Channel name used as the prefix of every message. */
  readonly channel: string;
  /** Absolute URL; checked by `guard` first when there is one. */
  readonly target: string;
  /** Request headers besides `User-Agent`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Request body (JSON or form text). */
  readonly body: string;
  /** Exact strings (keys, tokens) to mask in any message. */
  readonly secrets: readonly string[];
  /** Address guard for destinations taken from a route. */
  readonly guard?: AddressGuard;
  /** Read limit for the answer; default {@link MAX_BODY_BYTES}. */
  readonly maxBodyBytes?: number;
  /**
   * Provider-specific reading of an answer that is not a redirect: return an
   * error to throw it, `undefined` to fall back to the status rules.
   */
  readonly classify?: (answer: HttpAnswer, where: string) => Error | undefined;
}

/** Validates and fills in {@link HttpOptions}; throws `InvalidArgumentError`. */
export function resolveHttp(options: HttpOptions): ResolvedHttp {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidArgumentError("timeoutMs", "must be a positive number", timeoutMs);
  }
  return {
    // Looked up per call so a later polyfill or test stub of globalThis.fetch applies.
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    timeoutMs,
    now: options.now ?? Date.now,
  };
}

/**
 * POSTs `call` and classifies the answer: returns `{ httpStatus }` on 2xx,
 * throws `PermanentError` / `RetryLaterError` otherwise, a `HeraldError`
 * `HERALD_SEND_TIMEOUT` on timeout, and `ctx.signal.reason` when the worker
 * aborted the send.
 */
export async function postHttp(
  call: HttpCall,
  ctx: SendContext,
  http: ResolvedHttp,
): Promise<DeliveryDetails> {
  const timer = new AbortController();
  const timeout = setTimeout(() => {
    timer.abort(
      new HeraldError(
        "HERALD_SEND_TIMEOUT",
        `${call.channel}: no answer within ${http.timeoutMs} ms`,
      ),
    );
  }, http.timeoutMs);
  const signal = AbortSignal.any([ctx.signal, timer.signal]);
  let where = "the provider";
  let secrets = call.secrets;
  try {
    const url = call.guard === undefined
      ? new URL(call.target)
      : await call.guard.check(call.target, call.channel, signal);
    where = redactUrl(url.href);
    // Receivers echo the request path in errors, and the path is often the
    // credential (Slack, Discord, Telegram), so mask it like a key.
    secrets = _withUrlSecrets(call.secrets, url);
    const response = await http.fetch(url, {
      method: "POST",
      headers: { "user-agent": USER_AGENT, ...call.headers },
      body: call.body,
      redirect: "manual",
      signal,
    });
    const body = await _readCapped(response, call.maxBodyBytes ?? MAX_BODY_BYTES);
    return _classify({ ...call, secrets }, response, body, where, http.now);
  } catch (err) {
    // Whatever failed, an abort explains it best: the worker's first, so it
    // sees its own reason, then our timeout.
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (timer.signal.aborted) throw timer.signal.reason;
    if (err instanceof HeraldError) throw err;
    // Connection refused, reset, DNS failure: transient, retried with backoff.
    throw new HeraldError(
      "HERALD_NETWORK",
      `${call.channel}: request to ${where} failed: ${_describeNetworkError(err, secrets)}`,
    );
  } finally {
    clearTimeout(timeout);
  }
}

/** Whether a status is worth retrying: 408, 425, 429 and every 5xx. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * The error for a failed answer: `RetryLaterError` for transient statuses,
 * `PermanentError` for the rest, unless `transient` says otherwise (a
 * provider documents a retryable code under a permanent-looking status).
 * `detail` must already be redacted.
 */
export function statusError(params: {
  channel: string;
  status: number;
  where: string;
  detail: string;
  retryAfterMs?: number | undefined;
  transient?: boolean;
}): HeraldError {
  const { channel, status, where, detail, retryAfterMs } = params;
  const message = `${channel}: HTTP ${status} from ${where}${detail === "" ? "" : `: ${detail}`}`;
  const transient = params.transient ?? isTransientStatus(status);
  if (!transient) return new PermanentError(message, { httpStatus: status });
  return retryAfterMs === undefined
    ? new RetryLaterError(message, { httpStatus: status })
    : new RetryLaterError(message, { httpStatus: status, retryAfterMs });
}

/**
 * The answer's body as a JSON object, or `undefined` when it is not one
 * (`null`, an array, text), so provider hooks can read fields without a
 * TypeError that would pass for a network error.
 */
export function jsonObjectOf(text: string): Readonly<Record<string, unknown>> | undefined {
  try {
    return objectOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** `value` when it is a plain JSON object (not `null`, not an array), else `undefined`. */
export function objectOf(value: unknown): Readonly<Record<string, unknown>> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined;
}

/**
 * A body excerpt safe for messages: whitespace folded, secrets masked, short.
 * `cutOff`: the text was cut at the answer's size cap, maybe inside a secret.
 */
export function detailOf(text: string, secrets: readonly string[], cutOff = false): string {
  // Mask first, then cut: a cut through a secret would leave a prefix no mask matches.
  const folded = text.replace(/\s+/g, " ").trim();
  const masked = redact(cutOff ? withoutSecretTail(folded, secrets) : folded, secrets);
  return masked.length > 300 ? `${cut(masked, 300)}…` : masked;
}

/**
 * `text` without a trailing run of 4 or more characters that begins one of
 * `secrets`: what is left of a secret where the answer was cut off.
 */
function withoutSecretTail(text: string, secrets: readonly string[]): string {
  let tail = 0;
  for (const secret of secrets) {
    const from = Math.max(0, text.length - secret.length + 1);
    for (let i = from; i <= text.length - 4 && text.length - i > tail; i++) {
      if (secret.startsWith(text.slice(i))) {
        tail = text.length - i;
        break;
      }
    }
  }
  return tail === 0 ? text : `${text.slice(0, -tail)}…`;
}

function _classify(
  call: HttpCall,
  response: Response,
  { text, cut }: { text: string; cut: boolean },
  where: string,
  now: () => number,
): DeliveryDetails {
  const status = response.status;
  // Browsers and some runtimes surface a manual redirect as an opaque
  // response with status 0; others hand back the 3xx itself.
  if (response.type === "opaqueredirect" || (status >= 300 && status <= 399)) {
    const to = _redactedLocation(response.headers.get("location"), where);
    const message = `${call.channel}: the destination answered with a redirect${to}` +
      `${status === 0 ? "" : ` (HTTP ${status})`}; redirects are not followed, fix the URL`;
    throw new PermanentError(message, status === 0 ? {} : { httpStatus: status });
  }
  const answer: HttpAnswer = {
    status,
    headers: response.headers,
    text,
    cut,
    receivedAt: now(),
    secrets: call.secrets,
  };
  const special = call.classify?.(answer, where);
  if (special !== undefined) throw special;
  if (status >= 200 && status <= 299) return { httpStatus: status };
  throw statusError({
    channel: call.channel,
    status,
    where,
    detail: detailOf(text, call.secrets, cut),
    retryAfterMs: parseRetryAfter(response.headers.get("retry-after"), answer.receivedAt),
  });
}

/** Reads at most `max` bytes and cancels the rest, so a huge answer costs nothing. */
async function _readCapped(
  response: Response,
  max: number,
): Promise<{ text: string; cut: boolean }> {
  if (response.body === null) return { text: "", cut: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let done = false;
  while (size < max) {
    const next = await reader.read();
    if (next.done) {
      done = true;
      break;
    }
    chunks.push(next.value);
    size += next.value.byteLength;
  }
  if (!done) await reader.cancel();
  reader.releaseLock();
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return { text: new TextDecoder().decode(all.subarray(0, max)), cut: size > max || !done };
}

/** Node's "fetch failed" says nothing; the useful part is in `cause`. */
function _describeNetworkError(err: unknown, secrets: readonly string[]): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 3 && current !== undefined; depth++) {
    if (!(current instanceof Error)) {
      parts.push(String(current));
      break;
    }
    const name = current.name && current.name !== "Error" ? `${current.name}: ` : "";
    parts.push(`${name}${current.message}`);
    current = current.cause;
  }
  // Mask the exact secrets before the pattern-based pass can half-rewrite them.
  return redact(parts.join(": "), secrets);
}

function _withUrlSecrets(secrets: readonly string[], url: URL): string[] {
  const parts = [url.href, `${url.pathname}${url.search}`, url.pathname];
  for (const segment of url.pathname.split("/")) {
    parts.push(segment);
    try {
      parts.push(decodeURIComponent(segment));
    } catch {
      // An undecodable segment is masked in its raw form only.
    }
  }
  // Each query value decoded and as sent (`%3D`, `+`), and the query whole.
  for (const value of url.searchParams.values()) parts.push(value);
  for (const pair of url.search.slice(1).split("&")) parts.push(pair.slice(pair.indexOf("=") + 1));
  parts.push(url.search, url.search.slice(1));
  // Short segments ("hooks", "v1") are not secret; longest first so a whole
  // path is masked before its pieces.
  return [...secrets, ...parts.filter((p) => p.length >= 8)].sort((a, b) => b.length - a.length);
}

function _redactedLocation(location: string | null, where: string): string {
  if (location === null) return "";
  try {
    return ` to ${redactUrl(new URL(location, where).href)}`;
  } catch {
    return " to a malformed location";
  }
}
