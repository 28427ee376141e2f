import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { webhookChannel } from "../../channels/webhook.ts";
import { verifyWebhook } from "../../channels/webhook_signature.ts";
import { HeraldError, InvalidArgumentError, PermanentError } from "../../core/errors.ts";
import { closedPort } from "../_helpers/http_server.ts";
import { capture, captureSend } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { makeCtx, makeRoute, rejection } from "../_helpers/http_route.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET = "whsec_c2VjcmV0LXRoYXQtaXMtYmVpbmctcm90YXRlZA==";
const NOW = Date.UTC(2024, 2, 1, 12, 0, 5);
const local = { allowHosts: ["127.0.0.1"], now: () => NOW } as const;

/** Independent of our code: node:crypto over the spec's signed content. */
function expectedSignature(secret: string, id: string, ts: string, body: string): string {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64");
}

checkLeaks();

describe("webhook channel", () => {
  it("POSTs the documented envelope with Standard Webhooks headers", async () => {
    const route = makeRoute();
    const { req, result } = await captureSend(webhookChannel({ ...local, secret: SECRET }), {
      destination: "/hooks/in?x=1",
    });
    assert.deepEqual(result, { httpStatus: 204 });
    assert.ok(req);
    assert.equal(req.method, "POST");
    assert.equal(req.path, "/hooks/in?x=1");
    assert.equal(req.headers["content-type"], "application/json");
    assert.equal(req.headers["user-agent"], "Herald/0.1.0");
    assert.equal(req.headers["webhook-id"], route.id);
    assert.equal(req.headers["webhook-timestamp"], String(Math.floor(NOW / 1000)));
    assert.deepEqual(JSON.parse(req.body), {
      type: "order.shipped",
      timestamp: "2024-03-01T12:00:00.000Z",
      routeId: route.id,
      notificationId: route.notificationId,
      data: { text: "Order 42 shipped", orderId: 42 },
    });
    const sig = expectedSignature(SECRET, route.id, String(Math.floor(NOW / 1000)), req.body);
    assert.equal(req.headers["webhook-signature"], `v1,${sig}`);
    assert.equal(
      await verifyWebhook({ secret: SECRET, headers: req.headers, body: req.body, now: () => NOW }),
      true,
    );
  });

  it("signs with every secret during a rotation, the same id on every retry", async () => {
    const channel = webhookChannel({ ...local, secret: [SECRET, OLD_SECRET] });
    const route = makeRoute();
    const { reqs, result } = await capture(
      (_req, res) => void res.writeHead(503).end(),
      async (server) => {
        const to = makeRoute({ destination: server.url });
        await rejection(channel.send(to, makeCtx()));
        await rejection(channel.send(to, makeCtx()));
      },
    );
    assert.equal(result, undefined, "both sends were refused with 503");
    const [first, second] = reqs;
    assert.ok(first && second);
    assert.equal(first.headers["webhook-id"], second.headers["webhook-id"]);
    const ts = first.headers["webhook-timestamp"] ?? "";
    assert.equal(
      first.headers["webhook-signature"],
      `v1,${expectedSignature(SECRET, route.id, ts, first.body)} ` +
        `v1,${expectedSignature(OLD_SECRET, route.id, ts, first.body)}`,
    );
  });

  it("sends unsigned requests when no secret is configured", async () => {
    const { req, result } = await captureSend(webhookChannel(local));
    assert.deepEqual(result, { httpStatus: 204 });
    assert.equal(req?.headers["webhook-signature"], undefined);
    assert.equal(req?.headers["webhook-id"], makeRoute().id);
  });
});

describe("webhook channel: refusals", () => {
  it("refuses a malformed secret at construction without echoing it", () => {
    const bad = "whsec_not base64!!";
    assert.throws(
      () => webhookChannel({ secret: bad }),
      (err: unknown) =>
        err instanceof InvalidArgumentError && err.field === "secret" && !err.message.includes(bad),
    );
  });

  it("keeps the secret and the URL path out of every error", async () => {
    const token = "T0KEN-in-the-path-1234";
    const { result: err } = await captureSend(
      webhookChannel({ ...local, secret: SECRET }),
      { destination: `/${token}` },
      (_req, res) => {
        res.writeHead(400, { "content-type": "text/plain" });
        res.end(`bad request for /${token} signed ${SECRET}`);
      },
    );
    assert.ok(err instanceof PermanentError, String(err));
    assert.equal(err.httpStatus, 400);
    assert.equal(err.message.includes(token), false, err.message);
    assert.equal(err.message.includes("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), false, err.message);
    assert.match(err.message, /HTTP 400 from http:\/\/127\.0\.0\.1:\d+/);

    const refused = `http://127.0.0.1:${await closedPort()}/${token}`;
    const netErr = await rejection(
      webhookChannel({ ...local, secret: SECRET }).send(
        makeRoute({ destination: refused }),
        makeCtx(),
      ),
    );
    assert.ok(netErr instanceof HeraldError && netErr.code === "HERALD_NETWORK", String(netErr));
    assert.equal(netErr.message.includes(token), false, netErr.message);
  });

  it("refuses loopback destinations unless allowed", async () => {
    const { reqs, result: err } = await captureSend(webhookChannel());
    assert.ok(err instanceof PermanentError, String(err));
    assert.match(err.message, /loopback/);
    assert.equal(reqs.length, 0);
  });

  it("times out as a transient HERALD_SEND_TIMEOUT", async () => {
    const { result: err } = await captureSend(
      webhookChannel({ ...local, timeoutMs: 50 }),
      {},
      () => {/* never answers */},
    );
    assert.ok(err instanceof HeraldError, String(err));
    assert.equal(err.code, "HERALD_SEND_TIMEOUT");
    assert.equal(err instanceof PermanentError, false);
  });
});
