import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { smsChannel, type SmsChannelOptions } from "../../channels/sms.ts";
import { InvalidArgumentError, PermanentError, RetryLaterError } from "../../core/errors.ts";
import type { TestHandler } from "../_helpers/http_server.ts";
import { type Capture, capture } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { makeCtx, makeRoute } from "../_helpers/http_route.ts";
import type { Route } from "../../core/route.ts";

const SID = "AC0123456789abcdef0123456789abcdef";
const TOKEN = "twilio_auth_token_SECRET_42";
const created: TestHandler = (_q, res) => {
  res.writeHead(201, { "content-type": "application/json" });
  res.end(JSON.stringify({ sid: "SM0123", status: "queued" }));
};

/** One send of `route` through a Twilio channel (`options` over the defaults) to a stand-in. */
function sendSms(
  options: Partial<SmsChannelOptions>,
  route: Partial<Route> = {},
  handler: TestHandler = created,
): Promise<Capture> {
  return capture(handler, (server) =>
    smsChannel({
      accountSid: SID,
      authToken: TOKEN,
      from: "+15005550006",
      baseUrl: server.url,
      ...options,
    }).send(makeRoute({ channel: "sms", destination: "+4915112345678", ...route }), makeCtx()));
}

checkLeaks();

describe("sms channel (Twilio)", () => {
  it("POSTs a form-encoded message with Basic auth to Messages.json", async () => {
    const { req, result } = await sendSms({});
    assert.deepEqual(result, { httpStatus: 201 });
    assert.equal(req?.method, "POST");
    assert.equal(req?.path, `/2010-04-01/Accounts/${SID}/Messages.json`);
    assert.equal(req?.headers["content-type"], "application/x-www-form-urlencoded");
    assert.equal(
      req?.headers["authorization"],
      `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString("base64")}`,
    );
    const form = new URLSearchParams(req?.body ?? "");
    assert.deepEqual([...form.entries()], [
      ["To", "+4915112345678"],
      ["From", "+15005550006"],
      ["Body", "Order 42 shipped"],
    ]);
  });

  it("sends MessagingServiceSid for an MG sender and a template's text", async () => {
    const service = "MG0123456789abcdef0123456789abcdef";
    const { req } = await sendSms({ from: service, template: (r) => `Herald: ${r.kind}` });
    const form = new URLSearchParams(req?.body ?? "");
    assert.equal(form.get("MessagingServiceSid"), service);
    assert.equal(form.get("From"), null);
    assert.equal(form.get("Body"), "Herald: order.shipped");
  });
});

describe("sms channel (Twilio): refusals", () => {
  it("fails permanently for an invalid number (21211), token masked", async () => {
    const { result } = await sendSms({}, {}, (_q, res) => {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({
        code: 21211,
        message: `The 'To' number is not a valid phone number. token=${TOKEN}`,
        status: 400,
      }));
    });
    assert.ok(result instanceof PermanentError);
    assert.equal(result.httpStatus, 400);
    assert.match(result.message, /21211/);
    assert.equal(result.message.includes(TOKEN), false, result.message);
  });

  it("retries Twilio's 429 with Retry-After", async () => {
    const { result } = await sendSms({}, {}, (_q, res) => {
      res.writeHead(429, { "retry-after": "3" }).end('{"code":20429}');
    });
    assert.ok(result instanceof RetryLaterError);
    assert.equal(result.retryAfterMs, 3000);
  });

  it("refuses non-E.164 destinations before sending", async () => {
    for (const destination of ["015112345678", "+0123", "+49 151 1234", "tel:+4915112345678"]) {
      const { req, result } = await sendSms({}, { destination });
      assert.ok(result instanceof PermanentError, destination);
      assert.equal(req, undefined);
    }
  });

  it("validates the account SID at construction without echoing the token", () => {
    assert.throws(
      () => smsChannel({ accountSid: "nope", authToken: TOKEN, from: "+15005550006" }),
      (err: unknown) =>
        err instanceof InvalidArgumentError && err.field === "accountSid" &&
        !err.message.includes(TOKEN),
    );
  });
});
