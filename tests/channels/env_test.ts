import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { channelsFromEnv } from "../../channels/mod.ts";
import { verifyWebhook } from "../../channels/webhook_signature.ts";
import { InvalidArgumentError, PermanentError } from "../../core/errors.ts";
import { capture, captureSend } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { makeCtx, makeRoute, rejection } from "../_helpers/http_route.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/** Asserts `fn` throws InvalidArgumentError naming `variable` and not echoing `secret`. */
function throwsFor(fn: () => unknown, variable: string, secret?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.equal(err.field, variable);
    assert.match(err.message, new RegExp(`Invalid '${variable}'`));
    if (secret !== undefined) assert.equal(err.message.includes(secret), false, err.message);
    return true;
  });
}

/** [environment, the variable the refusal must name, a secret it must not echo] */
const MALFORMED: [Record<string, string>, string, string?][] = [
  [{ HERALD_WEBHOOK_SECRET: "whsec_???sekrit" }, "HERALD_WEBHOOK_SECRET", "sekrit"],
  // A one-byte key is base64 all right, and too short to sign with.
  [{ HERALD_WEBHOOK_SECRET: "whsec_eA==" }, "HERALD_WEBHOOK_SECRET", "eA=="],
  [{ HERALD_HTTPS_ONLY: "maybe" }, "HERALD_HTTPS_ONLY"],
  [{ HERALD_HTTP_TIMEOUT_MS: "-5" }, "HERALD_HTTP_TIMEOUT_MS"],
  [{ HERALD_ALLOW_ADDRESSES: "10.0.0.0/99" }, "HERALD_ALLOW_ADDRESSES"],
  [{ HERALD_TELEGRAM_BOT_TOKEN: "sekrit token" }, "HERALD_TELEGRAM_BOT_TOKEN", "sekrit"],
  [
    { HERALD_EMAIL_PROVIDER: "resend", HERALD_EMAIL_API_KEY: "sekrit" },
    "HERALD_EMAIL_FROM",
    "sekrit",
  ],
  [
    {
      HERALD_EMAIL_PROVIDER: "mailgun",
      HERALD_EMAIL_API_KEY: "sekrit",
      HERALD_EMAIL_FROM: "a@example.com",
    },
    "HERALD_EMAIL_PROVIDER",
    "sekrit",
  ],
  [{ HERALD_TWILIO_AUTH_TOKEN: "sekrit" }, "HERALD_TWILIO_ACCOUNT_SID", "sekrit"],
  [
    {
      HERALD_TWILIO_ACCOUNT_SID: "AC0123456789abcdef0123456789abcdef",
      HERALD_TWILIO_AUTH_TOKEN: "sekrit",
      HERALD_TWILIO_FROM: "+15005550006",
      HERALD_TWILIO_BASE_URL: "not a url",
    },
    "HERALD_TWILIO_BASE_URL",
    "sekrit",
  ],
];

checkLeaks();

describe("channelsFromEnv", () => {
  it("always builds log, webhook, slack, discord and teams", () => {
    assert.deepEqual(Object.keys(channelsFromEnv({})).sort(), [
      "discord",
      "log",
      "slack",
      "teams",
      "webhook",
    ]);
  });

  it("builds telegram, email and sms when their variables are set", () => {
    const channels = channelsFromEnv({
      HERALD_TELEGRAM_BOT_TOKEN: "123:abc",
      HERALD_EMAIL_PROVIDER: "Postmark",
      HERALD_EMAIL_API_KEY: "pm-token",
      HERALD_EMAIL_FROM: "alerts@example.com",
      HERALD_TWILIO_ACCOUNT_SID: "AC0123456789abcdef0123456789abcdef",
      HERALD_TWILIO_AUTH_TOKEN: "tok",
      HERALD_TWILIO_FROM: "+15005550006",
    });
    for (const name of ["telegram", "email", "sms"]) assert.ok(channels[name], name);
  });

  it("signs webhooks with HERALD_WEBHOOK_SECRET and honours HERALD_ALLOW_HOSTS", async () => {
    const { webhook } = channelsFromEnv({
      HERALD_WEBHOOK_SECRET: `${SECRET}, whsec_c2Vjb25kLXNlY3JldC1vZi0yNC1ieXRlcw==`,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
    });
    assert.ok(webhook);
    const { req, result } = await captureSend(webhook);
    assert.deepEqual(result, { httpStatus: 204 });
    assert.ok(req);
    assert.equal(req.headers["webhook-signature"]?.split(" ").length, 2);
    assert.equal(
      await verifyWebhook({ secret: SECRET, headers: req.headers, body: req.body }),
      true,
    );
  });

  it("refuses loopback without HERALD_ALLOW_HOSTS and http with HERALD_HTTPS_ONLY", async () => {
    const { webhook } = channelsFromEnv({});
    const err = await rejection(
      webhook?.send(makeRoute({ destination: "http://127.0.0.1:9/" }), makeCtx()) ??
        Promise.resolve(),
    );
    assert.ok(err instanceof PermanentError);
    const strict = channelsFromEnv({ HERALD_HTTPS_ONLY: "yes", HERALD_ALLOW_HOSTS: "127.0.0.1" });
    const httpErr = await rejection(
      strict["slack"]?.send(makeRoute({ destination: "http://127.0.0.1:9/" }), makeCtx()) ??
        Promise.resolve(),
    );
    assert.match(String(httpErr), /https-only/);
  });
});

describe("channelsFromEnv: e-mail, and values refused", () => {
  it("sends email to HERALD_EMAIL_BASE_URL", async () => {
    const route = makeRoute({
      destination: "ada@example.com",
      payload: { subject: "s", text: "t" },
    });
    const { req, result } = await capture(
      (_q, res) => void res.writeHead(200).end("{}"),
      (server) => {
        const { email } = channelsFromEnv({
          HERALD_EMAIL_PROVIDER: "resend",
          HERALD_EMAIL_API_KEY: "re_key_123",
          HERALD_EMAIL_FROM: "alerts@example.com",
          HERALD_EMAIL_BASE_URL: server.url,
        });
        assert.ok(email);
        return email.send(route, makeCtx());
      },
    );
    assert.deepEqual(result, { httpStatus: 200 });
    assert.equal(req?.path, "/emails");
  });

  it("names the variable for malformed or missing values, never echoing secrets", () => {
    for (const [env, variable, secret] of MALFORMED) {
      throwsFor(() => channelsFromEnv(env), variable, secret);
    }
  });
});
