import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { MIN_SECRET_BYTES, signWebhook, verifyWebhook } from "../../channels/webhook_signature.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

// The example vector published with the Standard Webhooks specification.
const SPEC = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const AT = () => SPEC.timestamp * 1000;
const headers = (signature: string, timestamp = String(SPEC.timestamp)) => ({
  "webhook-id": SPEC.id,
  "webhook-timestamp": timestamp,
  "webhook-signature": signature,
});

checkLeaks();

describe("Standard Webhooks signatures", () => {
  it("reproduces the specification's example vector", async () => {
    assert.equal(await signWebhook(SPEC), SPEC.signature);
  });

  it("agrees with an independent node:crypto HMAC", () => {
    const key = Buffer.from(SPEC.secret.slice(6), "base64");
    const mac = createHmac("sha256", key).update(`${SPEC.id}.${SPEC.timestamp}.${SPEC.body}`);
    assert.equal(`v1,${mac.digest("base64")}`, SPEC.signature);
  });

  it("verifies the vector, with or without the whsec_ prefix, among other signatures", async () => {
    const base = { body: SPEC.body, now: AT };
    assert.equal(
      await verifyWebhook({ ...base, secret: SPEC.secret, headers: headers(SPEC.signature) }),
      true,
    );
    assert.equal(
      await verifyWebhook({
        ...base,
        secret: SPEC.secret.slice(6),
        headers: headers(SPEC.signature),
      }),
      true,
    );
    const several = `v2,abc v1,bm9wZQ== ${SPEC.signature}`;
    assert.equal(
      await verifyWebhook({ ...base, secret: SPEC.secret, headers: headers(several) }),
      true,
    );
    assert.equal(
      await verifyWebhook({
        ...base,
        secret: SPEC.secret,
        headers: new Headers(headers(SPEC.signature)),
      }),
      true,
    );
  });
});

describe("Standard Webhooks signatures: verifying", () => {
  it("rejects a changed body, a wrong secret and missing headers", async () => {
    const base = { secret: SPEC.secret, now: AT, headers: headers(SPEC.signature) };
    assert.equal(await verifyWebhook({ ...base, body: '{"test": 2432232315}' }), false);
    assert.equal(
      await verifyWebhook({
        ...base,
        body: SPEC.body,
        secret: "whsec_c2Vjb25kLXNlY3JldC1vZi0yNC1ieXRlcw==",
      }),
      false,
    );
    assert.equal(await verifyWebhook({ ...base, body: SPEC.body, headers: {} }), false);
    assert.equal(
      await verifyWebhook({ ...base, body: SPEC.body, headers: headers("v1,not-base64!") }),
      false,
    );
  });

  it("accepts any of several secrets (rotation)", async () => {
    const ok = await verifyWebhook({
      secret: ["whsec_c2Vjb25kLXNlY3JldC1vZi0yNC1ieXRlcw==", SPEC.secret],
      headers: headers(SPEC.signature),
      body: SPEC.body,
      now: AT,
    });
    assert.equal(ok, true);
  });

  it("enforces the timestamp tolerance (default five minutes, both directions)", async () => {
    const base = { secret: SPEC.secret, headers: headers(SPEC.signature), body: SPEC.body };
    const minute = 60_000;
    assert.equal(await verifyWebhook({ ...base, now: () => AT() + 5 * minute }), true);
    assert.equal(await verifyWebhook({ ...base, now: () => AT() + 5 * minute + 1000 }), false);
    assert.equal(await verifyWebhook({ ...base, now: () => AT() - 6 * minute }), false);
    assert.equal(
      await verifyWebhook({ ...base, now: () => AT() + 10 * minute, toleranceMs: 11 * minute }),
      true,
    );
    assert.equal(
      await verifyWebhook({ ...base, now: AT, headers: headers(SPEC.signature, "16142653e3") }),
      false,
    );
  });
});

describe("Standard Webhooks signatures: a tolerance that is not one", () => {
  it("refuses NaN, Infinity and a negative toleranceMs, naming it (NaN accepted any age)", async () => {
    const base = { secret: SPEC.secret, headers: headers(SPEC.signature), body: SPEC.body };
    const years = () => AT() + 20 * 365 * 86_400_000; // the vector, replayed 20 years on
    for (const toleranceMs of [Number.NaN, Infinity, -1, "300000" as unknown as number]) {
      await assert.rejects(
        verifyWebhook({ ...base, now: years, toleranceMs }),
        (err: unknown) => err instanceof InvalidArgumentError && err.field === "toleranceMs",
        String(toleranceMs),
      );
    }
    assert.equal(await verifyWebhook({ ...base, now: years, toleranceMs: 0 }), false);
  });
});

describe("Standard Webhooks signatures: secrets refused", () => {
  it("throws InvalidArgumentError for a malformed secret, without echoing it", async () => {
    await assert.rejects(
      verifyWebhook({ secret: "whsec_%%%", headers: headers(SPEC.signature), body: "" }),
      (err: unknown) => err instanceof InvalidArgumentError && !err.message.includes("%%%"),
    );
  });

  it("refuses secrets shorter than 24 bytes (Standard Webhooks), naming the field", async () => {
    assert.equal(MIN_SECRET_BYTES, 24);
    const tooShort = (err: unknown): boolean =>
      err instanceof InvalidArgumentError && err.field === "secret" &&
      /at least 24 bytes/.test(err.message) && !err.message.includes("dHdlbnR5");
    for (const secret of ["whsec_eA==", "whsec_dHdlbnR5LXRocmVlLWJ5dGVzLWxvbmc="]) {
      assert.throws(() => webhookChannel({ secret }), tooShort, secret);
      assert.throws(() => webhookChannel({ secret: [SPEC.secret, secret] }), tooShort, secret);
      await assert.rejects(signWebhook({ ...SPEC, secret }), tooShort);
      await assert.rejects(
        verifyWebhook({ secret, headers: headers(SPEC.signature), body: SPEC.body, now: AT }),
        tooShort,
      );
    }
    // Exactly 24 bytes is enough.
    assert.ok(webhookChannel({ secret: "whsec_dHdlbnR5LWZvdXItYnl0ZXMtbG9uZyEh" }));
  });
});
