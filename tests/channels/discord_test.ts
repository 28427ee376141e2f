import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { discordChannel } from "../../channels/discord.ts";
import { truncate } from "../../channels/_payload.ts";
import { PermanentError, RetryLaterError } from "../../core/errors.ts";
import type { TestHandler } from "../_helpers/http_server.ts";
import { type Capture, captureSend } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import type { Route } from "../../core/route.ts";

// Follows https://discord.com/developers/docs/resources/webhook#execute-webhook:
// with `wait=true` Discord answers 200 and the created message object.
const local = { allowHosts: ["127.0.0.1"] } as const;
const HOOK =
  "/api/webhooks/223704706495545344/3d89bb7572e0fb30d8128367b3b1b44fecd1726de135cbe28a41f8b2f777c372ba2939e72279b94526ff5d1bd4358d65cf11";

/** Discord's answer to `POST /webhooks/{id}/{token}?wait=true`: 200 and the message. */
const saved: TestHandler = (req, res) => {
  const sent = JSON.parse(req.body) as { content?: string };
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({
    id: "1199400356164132945",
    type: 0,
    content: sent.content ?? "",
    channel_id: "1199400220394725458",
    author: { id: "223704706495545344", username: "Herald", bot: true },
    attachments: [],
    embeds: [],
    mentions: [],
    mention_roles: [],
    pinned: false,
    mention_everyone: false,
    tts: false,
    timestamp: "2024-03-01T12:00:00.123000+00:00",
    edited_timestamp: null,
    flags: 0,
    webhook_id: "223704706495545344",
  }));
};

/** One send of `route` to a Discord stand-in answering with `handler`; `destination` is the path. */
function send(route: Partial<Route>, handler: TestHandler = saved): Promise<Capture> {
  return captureSend(
    discordChannel(local),
    { ...route, destination: route.destination ?? HOOK },
    handler,
  );
}

checkLeaks();

describe("discord channel", () => {
  it("posts { content } with mentions disabled and asks Discord to wait", async () => {
    const { req, result } = await send({});
    assert.deepEqual(result, { httpStatus: 200 });
    assert.equal(req?.path, `${HOOK}?wait=true`);
    assert.deepEqual(JSON.parse(req?.body ?? ""), {
      content: "Order 42 shipped",
      allowed_mentions: { parse: [] },
    });
  });

  it("keeps the thread_id of the user's URL, and overrides a wait=false", async () => {
    const thread = await send({ destination: `${HOOK}?thread_id=1199400220394725459` });
    assert.deepEqual(thread.result, { httpStatus: 200 });
    assert.equal(thread.req?.path, `${HOOK}?thread_id=1199400220394725459&wait=true`);
    const noWait = await send({ destination: `${HOOK}?wait=false` });
    assert.equal(noWait.req?.path, `${HOOK}?wait=true`);
  });
});

describe("discord channel: what counts as sent", () => {
  it("does not count a 204 (the answer without wait, message maybe dropped) as sent", async () => {
    const { result } = await send({}, (_q, res) => void res.writeHead(204).end());
    assert.ok(result instanceof RetryLaterError, String(result));
    assert.equal(result.httpStatus, 204);
    assert.match(result.message, /not confirmed as saved/);
  });

  it("does not count a 200 without a message object as sent", async () => {
    const { result } = await send({}, (_q, res) => void res.writeHead(200).end("ok"));
    assert.ok(result instanceof RetryLaterError, String(result));
    assert.equal(result.httpStatus, 200);
  });

  it("cuts content to 2000 code points without splitting a surrogate pair", async () => {
    const { req, result } = await send({ payload: { text: "😀".repeat(2500) } });
    assert.deepEqual(result, { httpStatus: 200 });
    const sent = JSON.parse(req?.body ?? "") as { content: string };
    assert.equal([...sent.content].length, 2000);
    assert.ok(sent.content.isWellFormed());
    assert.equal(sent.content.at(-1), "…");
    const short = await send({ payload: { text: "x".repeat(2000) } });
    assert.equal((JSON.parse(short.req?.body ?? "") as { content: string }).content.length, 2000);
  });
});

describe("discord channel: rate limits and refusals", () => {
  it("reads retry_after from a 429 body when the header is missing", async () => {
    const { result } = await send({}, (_q, res) => {
      res.writeHead(429, { "content-type": "application/json" });
      res.end(JSON.stringify({
        message: "You are being rate limited.",
        retry_after: 1.5,
        global: false,
      }));
    });
    assert.ok(result instanceof RetryLaterError);
    assert.equal(result.retryAfterMs, 1500);
    assert.equal(result.httpStatus, 429);
  });

  it("fails permanently on Unknown Webhook, without the token", async () => {
    const { result } = await send({}, (q, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: `Unknown Webhook ${q.path}`, code: 10015 }));
    });
    assert.ok(result instanceof PermanentError, String(result));
    assert.equal(result.httpStatus, 404);
    assert.match(result.message, /Unknown Webhook/);
    assert.equal(result.message.includes("3d89bb7572e0fb30"), false, result.message);
  });
});

describe("truncate", () => {
  it("counts code points and keeps short text as is", () => {
    assert.equal(truncate("abc", 3), "abc");
    assert.equal(truncate("abcd", 3), "ab…");
    assert.equal(truncate("😀😀😀", 3), "😀😀😀");
    assert.equal(truncate("😀😀😀😀", 3), "😀😀…");
    assert.equal(truncate("a😀😀😀", 2), "a…");
  });
});
