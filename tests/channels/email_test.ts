import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { emailChannel, type EmailChannelOptions } from "../../channels/email.ts";
import { InvalidArgumentError, PermanentError, RetryLaterError } from "../../core/errors.ts";
import type { TestHandler } from "../_helpers/http_server.ts";
import { type Capture, capture } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { makeCtx, makeRoute } from "../_helpers/http_route.ts";
import type { Route } from "../../core/route.ts";

const KEY = "re_live_SUPERSECRETAPIKEY_123";
const mail = { subject: "Your order shipped", text: "Order 42 is on its way", html: "<p>42</p>" };

/** One send of `route` through an e-mail channel (`options`, base URL the stand-in's). */
function sendEmail(
  options: Omit<EmailChannelOptions, "baseUrl">,
  route: Partial<Route> = {},
  handler: TestHandler = (_q, res) => void res.writeHead(200).end("{}"),
): Promise<Capture> {
  const full = makeRoute({
    channel: "email",
    destination: "ada@example.com",
    payload: mail,
    ...route,
  });
  return capture(
    handler,
    (server) => emailChannel({ ...options, baseUrl: server.url }).send(full, makeCtx()),
  );
}

checkLeaks();

describe("email channel: Resend", () => {
  it("POSTs /emails with a Bearer key and the route id as Idempotency-Key", async () => {
    const { req, result } = await sendEmail({
      provider: "resend",
      apiKey: KEY,
      from: "Herald <alerts@example.com>",
    });
    assert.deepEqual(result, { httpStatus: 200 });
    assert.equal(req?.method, "POST");
    assert.equal(req?.path, "/emails");
    assert.equal(req?.headers["authorization"], `Bearer ${KEY}`);
    assert.equal(req?.headers["content-type"], "application/json");
    assert.equal(req?.headers["idempotency-key"], makeRoute().id);
    assert.deepEqual(JSON.parse(req?.body ?? ""), {
      from: "Herald <alerts@example.com>",
      to: ["ada@example.com"],
      subject: "Your order shipped",
      text: "Order 42 is on its way",
      html: "<p>42</p>",
    });
  });

  it("retries a concurrent request with the same idempotency key", async () => {
    const { result } = await sendEmail(
      { provider: "resend", apiKey: KEY, from: "a@example.com" },
      {},
      (_q, res) => {
        res.writeHead(409, { "content-type": "application/json" });
        res.end(JSON.stringify({ name: "concurrent_idempotent_requests", message: "in progress" }));
      },
    );
    assert.ok(result instanceof RetryLaterError, String(result));
    assert.equal(result.httpStatus, 409);
  });

  it("fails permanently on a validation error, with the key masked", async () => {
    const { result } = await sendEmail(
      { provider: "resend", apiKey: KEY, from: "a@example.com" },
      {},
      (q, res) => {
        res.writeHead(422, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            name: "validation_error",
            message: `bad key ${q.headers["authorization"]}`,
          }),
        );
      },
    );
    assert.ok(result instanceof PermanentError);
    assert.equal(result.httpStatus, 422);
    assert.match(result.message, /validation_error/);
    assert.equal(result.message.includes("SUPERSECRETAPIKEY"), false, result.message);
  });
});

describe("email channel: Postmark", () => {
  it("POSTs /email with X-Postmark-Server-Token", async () => {
    const { req, result } = await sendEmail({
      provider: "postmark",
      apiKey: "pm-server-token-0001",
      from: "alerts@example.com",
    });
    assert.deepEqual(result, { httpStatus: 200 });
    assert.equal(req?.path, "/email");
    assert.equal(req?.headers["x-postmark-server-token"], "pm-server-token-0001");
    assert.equal(req?.headers["accept"], "application/json");
    assert.equal(req?.headers["authorization"], undefined);
    assert.deepEqual(JSON.parse(req?.body ?? ""), {
      From: "alerts@example.com",
      To: "ada@example.com",
      Subject: "Your order shipped",
      TextBody: "Order 42 is on its way",
      HtmlBody: "<p>42</p>",
      MessageStream: "outbound",
      Metadata: { herald_route_id: makeRoute().id },
    });
  });

  it("treats an inactive recipient (422, ErrorCode 406) as permanent", async () => {
    const { result } = await sendEmail(
      { provider: "postmark", apiKey: "tok-123456", from: "a@example.com" },
      {},
      (_q, res) => {
        res.writeHead(422, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            ErrorCode: 406,
            Message: "You tried to send to recipient(s) that have been marked as inactive.",
          }),
        );
      },
    );
    assert.ok(result instanceof PermanentError);
    assert.match(result.message, /inactive/);
  });
});

describe("email channel: SendGrid", () => {
  it("POSTs /v3/mail/send with personalizations and text before html", async () => {
    const { req, result } = await sendEmail(
      {
        provider: "sendgrid",
        apiKey: "SG.key.secret",
        from: '"Herald Alerts" <alerts@example.com>',
      },
      {},
      (_q, res) => void res.writeHead(202).end(),
    );
    assert.deepEqual(result, { httpStatus: 202 });
    assert.equal(req?.path, "/v3/mail/send");
    assert.equal(req?.headers["authorization"], "Bearer SG.key.secret");
    assert.deepEqual(JSON.parse(req?.body ?? ""), {
      personalizations: [{ to: [{ email: "ada@example.com" }] }],
      from: { email: "alerts@example.com", name: "Herald Alerts" },
      subject: "Your order shipped",
      content: [
        { type: "text/plain", value: "Order 42 is on its way" },
        { type: "text/html", value: "<p>42</p>" },
      ],
      custom_args: { herald_route_id: makeRoute().id },
    });
  });

  it("uses a template instead of the payload", async () => {
    const { req } = await sendEmail(
      {
        provider: "sendgrid",
        apiKey: "SG.key.secret",
        from: "alerts@example.com",
        template: (r) => ({ subject: `[${r.kind}]`, html: "<b>x</b>" }),
      },
      { payload: { anything: true } },
    );
    const body = JSON.parse(req?.body ?? "") as { subject: string; content: unknown };
    assert.equal(body.subject, "[order.shipped]");
    assert.deepEqual(body.content, [{ type: "text/html", value: "<b>x</b>" }]);
  });
});

describe("email channel: validation", () => {
  const base = { provider: "resend", apiKey: KEY, from: "a@example.com" } as const;

  it("refuses bad recipients and incomplete messages permanently, before any request", async () => {
    for (
      const destination of [
        "not-an-address",
        "a@example.com, b@example.com",
        "a@example.com\r\nBcc: x@y.z",
      ]
    ) {
      const { req, result } = await sendEmail(base, { destination });
      assert.ok(result instanceof PermanentError, destination);
      assert.equal(req, undefined);
    }
    const noSubject = await sendEmail(base, { payload: { text: "hi" } });
    assert.ok(noSubject.result instanceof PermanentError);
    assert.match(noSubject.result.message, /no subject/);
    const noBody = await sendEmail(base, { payload: { subject: "hi" } });
    assert.ok(noBody.result instanceof PermanentError);
  });

  it("rejects unknown providers and missing keys at construction", () => {
    assert.throws(
      () => emailChannel({ ...base, provider: "mailgun" as "resend" }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "provider",
    );
    assert.throws(
      () => emailChannel({ ...base, apiKey: "" }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "apiKey",
    );
    assert.throws(
      () => emailChannel({ ...base, baseUrl: "ftp://x" }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "baseUrl",
    );
  });
});
