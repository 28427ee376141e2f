/**
 * The three e-mail HTTP APIs Herald speaks, each reduced to a path, headers
 * and a body. Only what a notification needs: one recipient, subject, text
 * and/or HTML, and the route id wherever the provider can carry it.
 *
 * @module
 */
import type { Route } from "../core/route.ts";
import { RetryLaterError } from "../core/errors.ts";
import {
  detailOf,
  type HttpAnswer,
  isTransientStatus,
  jsonObjectOf,
  parseRateLimitReset,
  parseRetryAfter,
  statusError,
} from "./_http.ts";
import type { EmailMessage, EmailProvider } from "./options.ts";

/** Every {@link EmailProvider}, for validating configuration. */
export const EMAIL_PROVIDERS: readonly EmailProvider[] = ["resend", "postmark", "sendgrid"];

/** What a provider needs to build one request. */
export interface EmailRequestParams {
  readonly apiKey: string;
  readonly from: string;
  readonly to: string;
  readonly message: EmailMessage;
  readonly route: Route;
  /** Postmark message stream; other providers ignore it. */
  readonly messageStream?: string;
}

/** One provider's request shape. */
export interface EmailApi {
  readonly defaultBaseUrl: string;
  readonly path: string;
  headers(params: EmailRequestParams): Record<string, string>;
  body(params: EmailRequestParams): unknown;
  classify?(answer: HttpAnswer, where: string): Error | undefined;
}

/** Resend: POST /emails, Bearer key, `Idempotency-Key` honoured for 24 h. */
const resend: EmailApi = {
  defaultBaseUrl: "https://api.resend.com",
  path: "/emails",
  headers: (p) => ({
    authorization: `Bearer ${p.apiKey}`,
    "content-type": "application/json",
    // The route id makes Resend drop a duplicate after a lost answer.
    "idempotency-key": p.route.id,
  }),
  body: (p) => ({
    from: p.from,
    to: [p.to],
    subject: p.message.subject,
    ..._optional("text", p.message.text),
    ..._optional("html", p.message.html),
  }),
  classify(answer, where) {
    // 409 concurrent_idempotent_requests: the first request with this key is
    // still in flight; asking again shortly is the documented remedy.
    if (answer.status === 409 && answer.text.includes("concurrent_idempotent_requests")) {
      return new RetryLaterError(
        `email: HTTP 409 from ${where}: a request with this idempotency key is still in progress`,
        { httpStatus: 409 },
      );
    }
    return undefined;
  },
};

/** Postmark: POST /email, `X-Postmark-Server-Token`; no idempotency key, so the route id goes in Metadata. */
const postmark: EmailApi = {
  defaultBaseUrl: "https://api.postmarkapp.com",
  path: "/email",
  headers: (p) => ({
    accept: "application/json",
    "content-type": "application/json",
    "x-postmark-server-token": p.apiKey,
  }),
  body: (p) => ({
    From: p.from,
    To: p.to,
    Subject: p.message.subject,
    ..._optional("TextBody", p.message.text),
    ..._optional("HtmlBody", p.message.html),
    MessageStream: p.messageStream ?? "outbound",
    Metadata: { herald_route_id: p.route.id },
  }),
  classify: _postmarkAnswer,
};

/**
 * Postmark API error codes that mean "come back later", whatever the HTTP
 * status carrying them (API errors come as 422 with `{ ErrorCode, Message }`).
 */
const POSTMARK_RETRY_CODES: ReadonlyMap<number, string> = new Map([
  [100, "maintenance"],
  [429, "rate limit exceeded"],
]);

/**
 * Postmark answers `{ ErrorCode, Message }`: 0 on success, an API error code
 * otherwise. Maintenance (100) and rate limiting (429) are retried under any
 * status; any other code follows the status (422: permanent, 500/503:
 * retried); a 2xx with a non-zero code is not a send.
 */
function _postmarkAnswer(answer: HttpAnswer, where: string): Error | undefined {
  const body = jsonObjectOf(answer.text);
  const code = body?.["ErrorCode"];
  const ok = answer.status >= 200 && answer.status <= 299;
  if (typeof code !== "number" || (ok && code === 0)) return undefined;
  const pause = POSTMARK_RETRY_CODES.get(code);
  const text = typeof body?.["Message"] === "string" ? body["Message"] : "";
  const detail = `Postmark ErrorCode ${code}${pause === undefined ? "" : ` (${pause})`}: ` +
    detailOf(text, answer.secrets);
  const transient = pause !== undefined || (!ok && isTransientStatus(answer.status));
  return statusError({
    channel: "email",
    status: answer.status,
    where,
    detail,
    transient,
    retryAfterMs: transient
      ? parseRetryAfter(answer.headers.get("retry-after"), answer.receivedAt)
      : undefined,
  });
}

/** SendGrid: POST /v3/mail/send, Bearer key; no idempotency key, so the route id goes in custom_args. */
const sendgrid: EmailApi = {
  defaultBaseUrl: "https://api.sendgrid.com",
  path: "/v3/mail/send",
  headers: (p) => ({
    authorization: `Bearer ${p.apiKey}`,
    "content-type": "application/json",
  }),
  body: (p) => {
    const content: { type: string; value: string }[] = [];
    // SendGrid requires text/plain, when present, before text/html.
    if (p.message.text !== undefined) content.push({ type: "text/plain", value: p.message.text });
    if (p.message.html !== undefined) content.push({ type: "text/html", value: p.message.html });
    return {
      personalizations: [{ to: [{ email: p.to }] }],
      from: _sendgridAddress(p.from),
      subject: p.message.subject,
      content,
      custom_args: { herald_route_id: p.route.id },
    };
  },
  classify: _sendgridAnswer,
};

/**
 * SendGrid documents one 403 that passes: "You are temporarily blocked from
 * sending emails due to repeated bad requests"; every other 403 (an
 * unverified sender, a key without Mail Send) is permanent. Its rate limit
 * answer (429) carries `X-RateLimit-Reset` in Unix epoch seconds, not
 * `Retry-After`.
 */
function _sendgridAnswer(answer: HttpAnswer, where: string): Error | undefined {
  const { status } = answer;
  const detail = detailOf(answer.text, answer.secrets, answer.cut);
  if (status === 403 && /temporarily blocked/i.test(_sendgridMessages(answer.text))) {
    return statusError({ channel: "email", status, where, detail, transient: true });
  }
  if (status !== 429 || answer.headers.has("retry-after")) return undefined;
  const reset = parseRateLimitReset(answer.headers.get("x-ratelimit-reset"), answer.receivedAt);
  return reset === undefined
    ? undefined
    : statusError({ channel: "email", status, where, detail, retryAfterMs: reset });
}

/** The `message`s of SendGrid's `{ errors: [{ message, field, help }] }`, joined. */
function _sendgridMessages(text: string): string {
  const errors = jsonObjectOf(text)?.["errors"];
  if (!Array.isArray(errors)) return "";
  return errors.map((e) => (e as { message?: unknown } | null)?.message)
    .filter((m): m is string => typeof m === "string").join(" ");
}

/** The request shapes by provider name. */
export const EMAIL_APIS: Readonly<Record<EmailProvider, EmailApi>> = { resend, postmark, sendgrid };

function _optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

/** `"Name <a@b>"` → `{ email, name }`; a bare address → `{ email }`. */
function _sendgridAddress(from: string): { email: string; name?: string } {
  const match = /^\s*(.*?)\s*<([^<>]+)>\s*$/.exec(from);
  if (match === null) return { email: from.trim() };
  const name = (match[1] ?? "").replace(/^"(.*)"$/, "$1");
  const email = match[2] ?? "";
  return name === "" ? { email } : { email, name };
}
