import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { telegramChannel, type TelegramChannelOptions } from "../../channels/telegram.ts";
import {
  HeraldError,
  InvalidArgumentError,
  PermanentError,
  RetryLaterError,
} from "../../core/errors.ts";
import { closedPort, type TestHandler } from "../_helpers/http_server.ts";
import { type Capture, capture } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { makeCtx, makeRoute, rejection } from "../_helpers/http_route.ts";

// Follows https://core.telegram.org/bots/api#making-requests: every answer is a JSON object
// with a Boolean `ok`; on failure `error_code`, `description` and, sometimes,
// `parameters` (ResponseParameters: `migrate_to_chat_id`, `retry_after`).
const TOKEN = "123456789:AAH-secret_bot-token-value";

/** One send to `destination` through a Bot API stand-in answering with `handler`. */
function sendTelegram(
  handler: TestHandler,
  destination = "42",
  options: Partial<TelegramChannelOptions> = {},
): Promise<Capture> {
  return capture(
    handler,
    (server) =>
      telegramChannel({ botToken: TOKEN, apiUrl: server.url, ...options })
        .send(makeRoute({ destination }), makeCtx()),
  );
}

const ok: TestHandler = (_q, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ ok: true, result: { message_id: 7 } }));
};

/** Answers `status` with `body` written as is. */
const answering = (status: number, body: string): TestHandler => (_q, res) => {
  res.writeHead(status, { "content-type": "application/json" }).end(body);
};

/** One send to chat 42 through a Bot API answering with `handler`; the outcome. */
async function outcome(handler: TestHandler, destination = "42"): Promise<unknown> {
  return (await sendTelegram(handler, destination)).result;
}

checkLeaks();

describe("telegram channel", () => {
  it("POSTs sendMessage with the chat id from the destination", async () => {
    const { req, result } = await sendTelegram(ok, "-1001234567890");
    assert.deepEqual(result, { httpStatus: 200 });
    assert.equal(req?.method, "POST");
    assert.equal(req?.path, `/bot${TOKEN}/sendMessage`);
    assert.equal(req?.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(req?.body ?? ""), {
      text: "Order 42 shipped",
      chat_id: "-1001234567890",
    });
  });

  it("sends a template's parse_mode", async () => {
    const { req, result } = await sendTelegram(ok, "@herald_news", {
      template: (r) => ({ text: `<b>${r.kind}</b>`, parse_mode: "HTML" }),
    });
    assert.deepEqual(result, { httpStatus: 200 });
    assert.deepEqual(JSON.parse(req?.body ?? ""), {
      text: "<b>order.shipped</b>",
      parse_mode: "HTML",
      chat_id: "@herald_news",
    });
  });
});

describe("telegram channel: refusals", () => {
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
    const err = await outcome(limited);
    assert.ok(err instanceof RetryLaterError, String(err));
    assert.equal(err.retryAfterMs, 34_000);
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
    const err = await outcome(blocked);
    assert.ok(err instanceof PermanentError, String(err));
    assert.equal(err.httpStatus, 403);
    assert.match(err.message, /bot was blocked by the user/);
    assert.equal(err.message.includes("secret_bot-token"), false, err.message);
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
});

describe("telegram channel: what counts as sent", () => {
  it("counts a send only with ok: true; a 2xx with ok: false fails by its error_code", async () => {
    const long = "y".repeat(4096);
    const echoed = await outcome(answering(
      200,
      JSON.stringify({
        ok: true,
        result: {
          message_id: 7,
          from: { id: 123456789, is_bot: true, first_name: "Herald" },
          chat: { id: 42, type: "private" },
          date: 1709294400,
          text: long,
        },
      }),
    ));
    assert.deepEqual(echoed, { httpStatus: 200 }, "a long echoed result is read whole");
    const refused = await outcome(answering(
      200,
      JSON.stringify({ ok: false, error_code: 400, description: "Bad Request: message is empty" }),
    ));
    assert.ok(refused instanceof PermanentError, String(refused));
    assert.equal(refused.httpStatus, 400);
    assert.match(refused.message, /ok: false under HTTP 200\) Bad Request: message is empty/);
    const busy = await outcome(answering(
      200,
      JSON.stringify({ ok: false, error_code: 429, parameters: { retry_after: 3 } }),
    ));
    assert.ok(busy instanceof RetryLaterError, String(busy));
    assert.equal(busy.retryAfterMs, 3000);
  });

  it("reads a null body as an answer, not a network error", async () => {
    const unconfirmed = await outcome(answering(200, "null"));
    assert.ok(unconfirmed instanceof RetryLaterError, String(unconfirmed));
    assert.equal(unconfirmed.httpStatus, 200);
    assert.match(unconfirmed.message, /without ok: true; not confirmed as sent/);
    const gateway = await outcome(answering(502, "null"));
    assert.ok(gateway instanceof RetryLaterError, String(gateway));
    assert.equal(gateway.httpStatus, 502);
    const bad = await outcome(answering(400, "null"));
    assert.ok(bad instanceof PermanentError, String(bad));
    assert.equal((bad as HeraldError).code, "HERALD_PERMANENT");
  });
});

describe("telegram channel: chats", () => {
  it("names the supergroup a group was upgraded to, without the token", async () => {
    const err = await outcome(
      answering(
        400,
        JSON.stringify({
          ok: false,
          error_code: 400,
          description: "Bad Request: group chat was upgraded to a supergroup chat",
          parameters: { migrate_to_chat_id: -1001234567890 },
        }),
      ),
      "-123456789",
    );
    assert.ok(err instanceof PermanentError, String(err));
    assert.equal(err.httpStatus, 400);
    assert.match(
      err.message,
      /upgraded to a supergroup chat; the group is now the supergroup -1001234567890: use that/,
    );
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
