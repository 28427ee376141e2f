/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): the
 * `webhook-signature` header is `v1,` + base64(HMAC-SHA256(key, id.timestamp.body)),
 * where the key is the base64 part of a `whsec_…` secret. Several secrets
 * (during a rotation) give several space-separated signatures.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";

/** Default verification window: five minutes either side of now. */
export const DEFAULT_TOLERANCE_MS = 5 * 60 * 1000;

/** The shortest signing key Standard Webhooks allows: 24 bytes once base64-decoded. */
export const MIN_SECRET_BYTES = 24;

/** What {@link signWebhook} signs. */
export interface SignWebhookParams {
  /** One `whsec_…` secret or several (rotation: every one signs). */
  readonly secret: string | readonly string[];
  /** The `webhook-id` (Herald sends the route id). */
  readonly id: string;
  /** The `webhook-timestamp`, in Unix seconds. */
  readonly timestamp: number;
  /** The exact request body. */
  readonly body: string;
}

/** What {@link verifyWebhook} checks. */
export interface VerifyWebhookParams {
  /** The secret(s) the sender may have signed with; any match is accepted. */
  readonly secret: string | readonly string[];
  /** The request headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`). */
  readonly headers: Headers | Readonly<Record<string, string | undefined>>;
  /** The raw request body, exactly as received (not re-serialised JSON). */
  readonly body: string;
  /** Accepted clock difference in milliseconds; default five minutes. */
  readonly toleranceMs?: number;
  /** Clock in epoch milliseconds; defaults to `Date.now`. */
  readonly now?: () => number;
}

/**
 * Computes the `webhook-signature` header value for one message.
 *
 * @example
 * ```ts
 * import { signWebhook } from "./webhook_signature.ts";
 * const sig = await signWebhook({
 *   secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
 *   id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
 *   timestamp: 1614265330,
 *   body: '{"test": 2432232314}',
 * });
 * // sig === "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
 * ```
 */
export async function signWebhook(params: SignWebhookParams): Promise<string> {
  const keys = await importSecrets(params.secret, "secret");
  const content = _signedContent(params.id, params.timestamp, params.body);
  const sigs = await Promise.all(keys.map((k) => _hmac(k, content)));
  return sigs.map((s) => `v1,${_toBase64(s)}`).join(" ");
}

/**
 * Checks a received webhook: the timestamp is within the tolerance and one of
 * the `v1` signatures matches one of the secrets (compared in constant time).
 * Resolves `false` on any mismatch or missing header; throws only for a
 * malformed secret (a configuration error).
 *
 * @example
 * ```ts
 * import { verifyWebhook } from "./webhook_signature.ts";
 * async function handle(req: Request): Promise<Response> {
 *   const body = await req.text();
 *   const ok = await verifyWebhook({ secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers: req.headers, body });
 *   return new Response(null, { status: ok ? 204 : 401 });
 * }
 * ```
 */
export async function verifyWebhook(params: VerifyWebhookParams): Promise<boolean> {
  const tolerance = params.toleranceMs ?? DEFAULT_TOLERANCE_MS;
  // NaN would compare false and let every old message through (an unset
  // environment variable read with Number() gives one).
  if (typeof tolerance !== "number" || !(tolerance >= 0) || tolerance === Infinity) {
    throw new InvalidArgumentError("toleranceMs", "must be a finite number, 0 or more", tolerance);
  }
  const keys = await importSecrets(params.secret, "secret");
  const id = _header(params.headers, "webhook-id");
  const stamp = _header(params.headers, "webhook-timestamp");
  const header = _header(params.headers, "webhook-signature");
  if (id === undefined || stamp === undefined || header === undefined) return false;
  if (!/^[0-9]{1,12}$/.test(stamp)) return false;
  const timestamp = Number(stamp);
  const now = (params.now ?? Date.now)();
  if (Math.abs(now - timestamp * 1000) > tolerance) return false;

  const content = _signedContent(id, timestamp, params.body);
  const expected = await Promise.all(keys.map((k) => _hmac(k, content)));
  let matched = false;
  for (const part of header.split(" ")) {
    const [version, value] = part.split(",", 2);
    if (version !== "v1" || value === undefined) continue;
    const given = _fromBase64(value);
    if (given === undefined) continue;
    // No early exit: every candidate is compared, each in constant time.
    for (const e of expected) matched = _timingSafeEqual(e, given) || matched;
  }
  return matched;
}

/**
 * Decodes and imports `whsec_…` secrets as HMAC-SHA256 keys; the prefix is
 * optional, as in the reference libraries. Throws `InvalidArgumentError`
 * naming `field` (never the secret) when one is not base64 or decodes to
 * fewer than {@link MIN_SECRET_BYTES} bytes.
 */
export async function importSecrets(
  secret: string | readonly string[],
  field: string,
): Promise<CryptoKey[]> {
  return await Promise.all(
    decodeSecrets(secret, field).map((raw) =>
      crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
    ),
  );
}

/** Synchronous half of {@link importSecrets}, so constructors fail fast. */
export function decodeSecrets(
  secret: string | readonly string[],
  field: string,
): Uint8Array<ArrayBuffer>[] {
  const list = typeof secret === "string" ? [secret] : secret;
  if (list.length === 0) throw new InvalidArgumentError(field, "must name at least one secret");
  return list.map((s) => {
    const raw = _fromBase64(s.startsWith("whsec_") ? s.slice(6) : s);
    if (raw === undefined || raw.length === 0) {
      throw new InvalidArgumentError(field, 'must be "whsec_" followed by base64');
    }
    if (raw.length < MIN_SECRET_BYTES) {
      // The length is no secret; the value is never echoed.
      throw new InvalidArgumentError(
        field,
        `must decode to at least ${MIN_SECRET_BYTES} bytes (Standard Webhooks), got ${raw.length}`,
      );
    }
    return raw;
  });
}

function _signedContent(id: string, timestamp: number, body: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${id}.${timestamp}.${body}`);
}

async function _hmac(key: CryptoKey, content: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, content));
}

function _timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  // A length difference is not secret (every v1 signature is 32 bytes).
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function _header(
  headers: Headers | Readonly<Record<string, string | undefined>>,
  name: string,
): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return value;
  }
  return undefined;
}

function _toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function _fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  try {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}
