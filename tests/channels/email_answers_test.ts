import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { emailChannel, type EmailProvider } from "../../channels/email.ts";
import { MAX_RETRY_DELAY_MS } from "../../channels/_http.ts";
import { PermanentError, RetryLaterError } from "../../core/errors.ts";
import { capture } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { makeCtx, makeRoute } from "../_helpers/http_route.ts";

// How Postmark and SendGrid answer, as their API documents show:
// https://postmarkapp.com/developer/api/overview (HTTP response codes, API error codes) and
// https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send (responses),
// https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits.
const NOW = Date.UTC(2024, 2, 1, 12, 0, 0);
const KEY = "pm-live-0f9e8d7c-6b5a-4321-SECRET";
const mail = { subject: "Your order shipped", text: "Order 42 is on its way" };

/** One send through `provider` to a server answering `status`, `headers`, `body`. */
async function answer(
  provider: EmailProvider,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const route = makeRoute({ channel: "email", destination: "ada@example.com", payload: mail });
  const { result } = await capture((_q, res) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    // Some providers echo what they got; the key must still stay out of Herald's messages.
    res.end(typeof body === "string" ? body : JSON.stringify(body).replace("$KEY", KEY));
  }, (server) =>
    emailChannel({
      provider,
      apiKey: KEY,
      from: "alerts@example.com",
      baseUrl: server.url,
      now: () => NOW,
    }).send(route, makeCtx()));
  return result;
}

checkLeaks();

describe("Postmark answers", () => {
  it("200 with ErrorCode 0 is sent; a 200 with another ErrorCode is not", async () => {
    const ok = {
      To: "ada@example.com",
      SubmittedAt: "2024-03-01T07:00:00.4178645-05:00",
      MessageID: "0a129aee-e1cd-480d-b08d-4f48548ff48d",
      ErrorCode: 0,
      Message: "OK",
    };
    assert.deepEqual(await answer("postmark", 200, ok), { httpStatus: 200 });
    const odd = await answer("postmark", 200, { ErrorCode: 300, Message: "Invalid email request" });
    assert.ok(odd instanceof PermanentError, String(odd));
    assert.match(odd.message, /ErrorCode 300: Invalid email request/);
  });

  it("retries maintenance (ErrorCode 100), whether it comes as 503 or 422", async () => {
    const body = { ErrorCode: 100, Message: "The Postmark API is offline for maintenance." };
    for (const status of [503, 422]) {
      const err = await answer("postmark", status, body);
      assert.ok(err instanceof RetryLaterError, `${status}: ${String(err)}`);
      assert.equal(err.httpStatus, status);
      assert.match(err.message, /ErrorCode 100 \(maintenance\)/);
    }
  });

  it("retries rate limiting (429, or ErrorCode 429 in a 422), honouring Retry-After", async () => {
    const body = { ErrorCode: 429, Message: "Rate limit exceeded." };
    const limited = await answer("postmark", 429, body, { "retry-after": "30" });
    assert.ok(limited instanceof RetryLaterError, String(limited));
    assert.equal(limited.retryAfterMs, 30_000);
    const coded = await answer("postmark", 422, body);
    assert.ok(coded instanceof RetryLaterError, String(coded));
    assert.equal(coded.httpStatus, 422);
    const bare = await answer("postmark", 500, "Internal Server Error");
    assert.ok(bare instanceof RetryLaterError, String(bare));
  });

  it("fails for good when not allowed to send (405), and on a bad token, key masked", async () => {
    const refused = await answer("postmark", 422, {
      ErrorCode: 405,
      Message: "Not allowed to send: the account has run out of credits.",
    });
    assert.ok(refused instanceof PermanentError, String(refused));
    assert.equal(refused.httpStatus, 422);
    assert.match(refused.message, /ErrorCode 405: Not allowed to send/);
    const token = await answer("postmark", 401, {
      ErrorCode: 10,
      Message: "Request does not contain a valid Server token: $KEY",
    });
    assert.ok(token instanceof PermanentError, String(token));
    assert.equal(token.message.includes("SECRET"), false, token.message);
  });
});

describe("SendGrid answers", () => {
  it("retries the 403 'temporarily blocked ... repeated bad requests'", async () => {
    const err = await answer("sendgrid", 403, {
      errors: [{
        message: "You are temporarily blocked from sending emails due to repeated bad requests.",
        field: null,
        help: null,
      }],
    });
    assert.ok(err instanceof RetryLaterError, String(err));
    assert.equal(err.httpStatus, 403);
  });

  it("keeps every other 403 permanent", async () => {
    const err = await answer("sendgrid", 403, {
      errors: [{
        message: "The from address does not match a verified Sender Identity. Mail cannot be " +
          "sent until this error is resolved.",
        field: "from",
        help: null,
      }],
    });
    assert.ok(err instanceof PermanentError, String(err));
    assert.match(err.message, /verified Sender Identity/);
  });

  it("waits until X-RateLimit-Reset (epoch seconds) on a 429, capped at 30 days", async () => {
    const body = { errors: [{ field: null, message: "too many requests" }] };
    const limits = { "x-ratelimit-limit": "600", "x-ratelimit-remaining": "0" };
    const reset = String(NOW / 1000 + 45);
    const err = await answer("sendgrid", 429, body, { ...limits, "x-ratelimit-reset": reset });
    assert.ok(err instanceof RetryLaterError, String(err));
    assert.equal(err.retryAfterMs, 45_000);
    const far = await answer("sendgrid", 429, body, { ...limits, "x-ratelimit-reset": "9e9" });
    assert.ok(far instanceof RetryLaterError);
    assert.equal(far.retryAfterMs, undefined, "9e9 is not epoch seconds: backoff instead");
    const later = String(NOW / 1000 + 90 * 24 * 3600);
    const capped = await answer("sendgrid", 429, body, { "x-ratelimit-reset": later });
    assert.ok(capped instanceof RetryLaterError);
    assert.equal(capped.retryAfterMs, MAX_RETRY_DELAY_MS);
  });
});
