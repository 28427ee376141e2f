import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { telegramChannel } from "../channels/telegram.ts";
import { HeraldError, InvalidArgumentError, PermanentError, RetryLaterError } from "../errors.ts";
import { closedPort, startServer, type TestHandler } from "./_helpers/http_server.ts";
import { makeCtx, makeRoute, rejection } from "./_helpers/http_route.ts";

const TOKEN = "123456789:AAH-secret_bot-token-value";

async function withApi(
  handler: TestHandler,
  run: (apiUrl: string, server: Awaited<ReturnType<typeof startServer>>) => Promise<void>,
): Promise<void> {
  const server = await startServer(handler);
  try {
    await run(server.url, server);
  } finally {
    await server.close();
  }
}

const ok: TestHandler = (_q, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ ok: true, result: { message_id: 7 } }));
};

describe("telegram channel", () => {
  it("POSTs sendMessage with the chat id from the destination", async () => {
    await withApi(ok, async (apiUrl, server) => {
      const channel = telegramChannel({ botToken: TOKEN, apiUrl });
      const out = await channel.send(makeRoute({ destination: "-1001234567890" }), makeCtx());
      assert.deepEqual(out, { httpStatus: 200 });
      const [req] = server.requests;
      assert.equal(req?.method, "POST");
      assert.equal(req?.path, `/bot${TOKEN}/sendMessage`);
      assert.equal(req?.headers["content-type"], "application/json");
      assert.deepEqual(JSON.parse(req?.body ?? ""), {
        text: "Order 42 shipped",
        chat_id: "-1001234567890",
      });
    });
  });

  it("sends a template's parse_mode", async () => {
    await withApi(ok, async (apiUrl, server) => {
      const channel = telegramChannel({
        botToken: TOKEN,
        apiUrl,
        template: (r) => ({ text: `<b>${r.kind}</b>`, parse_mode: "HTML" }),
      });
      await channel.send(makeRoute({ destination: "@herald_news" }), makeCtx());
      assert.deepEqual(JSON.parse(server.requests[0]?.body ?? ""), {
        text: "<b>order.shipped</b>",
        parse_mode: "HTML",
        chat_id: "@herald_news",
      });
    });
  });

  it("turns parameters.retry_after into the retry delay", async () => {
    const limited: TestHandler = (_q, res) => {
      res.writeHead(429, { "content-type": "application/json" });
      res.end(JSON.stringify({
        ok: false,
        error_code: 429,
        description: "Too Many Requests: retry after 34",
        parameters: { retry_after: 34 },
      }));
    };
    await withApi(limited, async (apiUrl) => {
      const err = await rejection(
        telegramChannel({ botToken: TOKEN, apiUrl }).send(
          makeRoute({ destination: "42" }),
          makeCtx(),
        ),
      );
      assert.ok(err instanceof RetryLaterError);
      assert.equal(err.retryAfterMs, 34_000);
    });
  });

  it("fails permanently when the bot was blocked, without leaking the token", async () => {
    const blocked: TestHandler = (_q, res) => {
      res.writeHead(403, { "content-type": "application/json" });
      res.end(JSON.stringify({
        ok: false,
        error_code: 403,
        description: `Forbidden: bot was blocked by the user (bot${TOKEN})`,
      }));
    };
    await withApi(blocked, async (apiUrl) => {
      const err = await rejection(
        telegramChannel({ botToken: TOKEN, apiUrl }).send(
          makeRoute({ destination: "42" }),
          makeCtx(),
        ),
      );
      assert.ok(err instanceof PermanentError);
      assert.equal(err.httpStatus, 403);
      assert.match(err.message, /bot was blocked by the user/);
      assert.equal(err.message.includes("secret_bot-token"), false, err.message);
    });
  });

  it("keeps the token out of network errors", async () => {
    const apiUrl = `http://127.0.0.1:${await closedPort()}`;
    const err = await rejection(
      telegramChannel({ botToken: TOKEN, apiUrl }).send(
        makeRoute({ destination: "42" }),
        makeCtx(),
      ),
    );
    assert.ok(err instanceof HeraldError && err.code === "HERALD_NETWORK", String(err));
    assert.equal(err.message.includes("secret_bot-token"), false, err.message);
  });

  it("validates the token and the chat id", async () => {
    assert.throws(
      () => telegramChannel({ botToken: "not a token" }),
      (err: unknown) => err instanceof InvalidArgumentError && !err.message.includes("not a token"),
    );
    const err = await rejection(
      telegramChannel({ botToken: TOKEN }).send(makeRoute({ destination: "chat 42" }), makeCtx()),
    );
    assert.ok(err instanceof PermanentError);
  });
});
