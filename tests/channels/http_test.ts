import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { webhookChannel } from "../../channels/webhook.ts";
import { MAX_BODY_BYTES, parseRetryAfter } from "../../channels/_http.ts";
import { HeraldError, PermanentError, RetryLaterError } from "../../core/errors.ts";
import { closedPort, type TestHandler } from "../_helpers/http_server.ts";
import { capture } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { makeCtx, makeRoute, rejection } from "../_helpers/http_route.ts";

const NOW = Date.UTC(2024, 2, 1, 12, 0, 0);
const channel = webhookChannel({ allowHosts: ["127.0.0.1"], now: () => NOW });

/** Sends one route to a fresh server answering with `handler`; the value or the error. */
async function sendTo(handler: TestHandler): Promise<unknown> {
  const { result } = await capture(
    handler,
    (server) => channel.send(makeRoute({ destination: `${server.url}/hook` }), makeCtx()),
  );
  return result;
}

checkLeaks();

describe("HTTP status classification", () => {
  for (const status of [200, 201, 202, 204]) {
    it(`${status} is sent and reports httpStatus`, async () => {
      assert.deepEqual(await sendTo((_q, res) => void res.writeHead(status).end()), {
        httpStatus: status,
      });
    });
  }
  for (const status of [408, 425, 429, 500, 502, 503, 504]) {
    it(`${status} is retried (RetryLaterError with httpStatus)`, async () => {
      const err = await sendTo((_q, res) => void res.writeHead(status).end("busy"));
      assert.ok(err instanceof RetryLaterError, String(err));
      assert.equal(err.httpStatus, status);
      assert.equal(err.retryAfterMs, undefined);
    });
  }
  for (const status of [400, 401, 403, 404, 405, 409, 410, 413, 422]) {
    it(`${status} is permanent (PermanentError with httpStatus)`, async () => {
      const err = await sendTo((_q, res) => void res.writeHead(status).end("nope"));
      assert.ok(err instanceof PermanentError, String(err));
      assert.equal(err.httpStatus, status);
      assert.match(err.message, new RegExp(`HTTP ${status} from .*: nope`));
    });
  }
});

describe("Retry-After", () => {
  it("reads delay seconds", async () => {
    const err = await sendTo((_q, res) => void res.writeHead(429, { "retry-after": "120" }).end());
    assert.ok(err instanceof RetryLaterError);
    assert.equal(err.retryAfterMs, 120_000);
    assert.equal(err.httpStatus, 429);
  });
  it("reads an HTTP date against the injected clock", async () => {
    const at = new Date(NOW + 90_000).toUTCString();
    const err = await sendTo((_q, res) => void res.writeHead(503, { "retry-after": at }).end());
    assert.ok(err instanceof RetryLaterError);
    assert.equal(err.retryAfterMs, 90_000);
  });
  it("ignores malformed values and clamps past dates to zero", () => {
    assert.equal(parseRetryAfter("soon", NOW), undefined);
    assert.equal(parseRetryAfter(null, NOW), undefined);
    assert.equal(parseRetryAfter(new Date(NOW - 5000).toUTCString(), NOW), 0);
  });
});

describe("transport failures", () => {
  it("does not follow redirects: a 3xx is permanent and names only the host", async () => {
    const err = await sendTo((_q, res) => {
      res.writeHead(302, { location: "http://elsewhere.example/path?token=s3cr3t-value" }).end();
    });
    assert.ok(err instanceof PermanentError, String(err));
    assert.equal(err.httpStatus, 302);
    assert.match(err.message, /redirect to http:\/\/elsewhere\.example/);
    assert.equal(err.message.includes("s3cr3t-value"), false);
  });

  it("treats an opaque redirect (status 0, as browsers report it) as permanent", async () => {
    const opaque = {
      type: "opaqueredirect",
      status: 0,
      headers: new Headers(),
      body: null,
    } as unknown as Response;
    const viaFetch = webhookChannel({
      allowHosts: ["hooks.example"],
      fetch: () => Promise.resolve(opaque),
    });
    const err = await rejection(
      viaFetch.send(makeRoute({ destination: "https://hooks.example/x" }), makeCtx()),
    );
    assert.ok(err instanceof PermanentError, String(err));
    assert.equal(err.httpStatus, undefined);
    assert.match(err.message, /redirect; redirects are not followed/);
  });

  it("masks a query value echoed as it was sent (percent-encoded, '+' for a space)", async () => {
    const key = "AzFnKeyPlanted0123456789";
    const { result: err } = await capture(
      (q, res) => void res.writeHead(401).end(JSON.stringify({ query: q.path.split("?")[1] })),
      (server) =>
        channel.send(
          makeRoute({ destination: `${server.url}/api/fn?code=${key}%3D%3D&name=a+${key}` }),
          makeCtx(),
        ),
    );
    assert.ok(err instanceof PermanentError, String(err));
    assert.match(err.message, /HTTP 401/);
    assert.equal(err.message.includes(key.slice(0, 10)), false, err.message);
    // One raw value alone, as sent, not the whole query.
    const { result: alone } = await capture(
      (q, res) => {
        const raw = q.path.split("?")[1]!.split("&")[0]!.split("=")[1];
        res.writeHead(401).end(JSON.stringify({ error: `bad code ${raw}` }));
      },
      (server) =>
        channel.send(
          makeRoute({ destination: `${server.url}/api/fn?code=${key}%3D%3D` }),
          makeCtx(),
        ),
    );
    assert.ok(alone instanceof PermanentError, String(alone));
    assert.equal(alone.message.includes(key.slice(0, 10)), false, alone.message);
  });

  it("reads at most a few KiB of an oversize answer and cancels the rest", async () => {
    const big = "x".repeat(1024 * 1024);
    const ok = await sendTo((_q, res) => void res.writeHead(200).end(big));
    assert.deepEqual(ok, { httpStatus: 200 });
    const err = await sendTo((_q, res) => void res.writeHead(400).end(big));
    assert.ok(err instanceof PermanentError);
    assert.ok(err.message.length <= 500, `message of ${err.message.length} chars`);
    assert.ok(MAX_BODY_BYTES <= 4096);
  });
});

describe("transport failures: no answer", () => {
  it("treats connection refused as transient", async () => {
    const port = await closedPort();
    const err = await rejection(
      channel.send(makeRoute({ destination: `http://127.0.0.1:${port}/` }), makeCtx()),
    );
    assert.ok(err instanceof HeraldError && err.code === "HERALD_NETWORK", String(err));
    assert.match(
      err.message,
      /^webhook: request to http:\/\/127\.0\.0\.1:\d+\/\[redacted\] failed/,
    );
  });

  it("rethrows the worker's abort reason", async () => {
    const worker = new AbortController();
    const reason = new Error("worker shutting down");
    const { result } = await capture(() => {/* never answers */}, async (server) => {
      const sending = channel.send(makeRoute({ destination: server.url }), makeCtx(worker.signal));
      await server.nextRequest();
      worker.abort(reason);
      return await sending;
    });
    assert.equal(result, reason);
  });

  it("rethrows an already-aborted signal's reason without a request", async () => {
    const worker = new AbortController();
    worker.abort(new Error("already"));
    const err = await rejection(
      channel.send(makeRoute({ destination: "http://127.0.0.1:1/" }), makeCtx(worker.signal)),
    );
    assert.equal(err, worker.signal.reason);
  });

  it("reports a timeout as HERALD_SEND_TIMEOUT, not permanent", async () => {
    const slow = webhookChannel({ allowHosts: ["127.0.0.1"], timeoutMs: 50 });
    const { result: err } = await capture(
      () => {/* never answers */},
      (server) => slow.send(makeRoute({ destination: server.url }), makeCtx()),
    );
    assert.ok(err instanceof HeraldError && !(err instanceof PermanentError), String(err));
    assert.equal(err.code, "HERALD_SEND_TIMEOUT");
    assert.match(err.message, /no answer within 50 ms/);
  });

  it("rejects a non-positive timeout at construction", () => {
    assert.throws(() => webhookChannel({ timeoutMs: 0 }), /Invalid 'timeoutMs'/);
  });
});
