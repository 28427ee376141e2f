import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  TEAMS_MAX_MESSAGE_BYTES,
  teamsChannel,
  type TeamsChannelOptions,
} from "../../channels/teams.ts";
import { InvalidArgumentError, PermanentError, RetryLaterError } from "../../core/errors.ts";
import type { TestHandler } from "../_helpers/http_server.ts";
import { makeCtx, makeRoute, rejection } from "../_helpers/http_route.ts";
import { type Capture, captureSend } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import type { Route } from "../../core/route.ts";

// Follows https://learn.microsoft.com/en-us/connectors/teams/ (the "When a Teams webhook request
// is received" trigger answers 202 Accepted; a message is limited to about 28 KB) and
// https://learn.microsoft.com/en-us/power-automate/oauth-authentication (tenant-restricted
// triggers take an Entra ID bearer token).
const local = { allowHosts: ["127.0.0.1"] } as const;
const FLOW = "/workflows/8f3a1c2e9b7d4e6f8a0b1c2d3e4f5a6b/triggers/manual/paths/invoke" +
  "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Zk3vQ8bWmX1pL0rT9sYuV2cN4dE6fG7hJ";
const TOKEN =
  "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJzZXJ2aWNlLmZsb3cifQ.c2lnbmF0dXJlLXNlY3JldA";

/** The Workflows trigger's answer: 202 Accepted, empty body, the run id in a header. */
const accepted: TestHandler = (_q, res) => {
  res.writeHead(202, { "x-ms-workflow-run-id": "08584735421195848436954281636CU00" }).end();
};

/** One send of `route` through `teamsChannel(options)` to a Workflows stand-in answering with `handler`. */
function send(
  options: TeamsChannelOptions,
  route: Partial<Route>,
  handler: TestHandler = accepted,
): Promise<Capture> {
  return captureSend(teamsChannel(options), { ...route, destination: FLOW }, handler);
}

checkLeaks();

describe("teams channel", () => {
  it("posts an Adaptive Card message; the trigger's 202 counts as sent", async () => {
    const { reqs, result } = await send(local, {
      payload: { title: "Deploy", text: "api is live" },
    });
    assert.deepEqual(result, { httpStatus: 202 });
    assert.equal(reqs[0]?.headers["authorization"], undefined);
    assert.deepEqual(JSON.parse(reqs[0]?.body ?? ""), {
      type: "message",
      attachments: [{
        contentType: "application/vnd.microsoft.card.adaptive",
        content: {
          $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
          type: "AdaptiveCard",
          version: "1.4",
          body: [
            { type: "TextBlock", text: "Deploy", weight: "Bolder", size: "Medium", wrap: true },
            { type: "TextBlock", text: "api is live", wrap: true },
          ],
        },
      }],
    });
  });

  it("refuses a message over 28 KB permanently, before any request", async () => {
    assert.equal(TEAMS_MAX_MESSAGE_BYTES, 28 * 1024);
    const big = await send(local, { payload: { text: "x".repeat(28 * 1024) } });
    assert.ok(big.result instanceof PermanentError, String(big.result));
    assert.match(big.result.message, /over the 28672-byte \(28 KB\) limit/);
    assert.equal(big.reqs.length, 0);
    // Counted in UTF-8 bytes: 10,000 euro signs are 30,000 bytes.
    const euros = await send(local, { payload: { text: "€".repeat(10_000) } });
    assert.ok(euros.result instanceof PermanentError, String(euros.result));
    assert.equal(euros.reqs.length, 0);
    const fits = await send(local, { payload: { text: "x".repeat(27 * 1024) } });
    assert.deepEqual(fits.result, { httpStatus: 202 });
  });

  it("treats a legacy connector's HTTP 200 with an embedded 429 as retry-later", async () => {
    const { result } = await send(local, {}, (_q, res) => {
      res.writeHead(200).end("Microsoft Teams endpoint returned HTTP error 429 with ContextId x");
    });
    assert.ok(result instanceof RetryLaterError, String(result));
  });

  it("refuses private destinations like the other URL channels", async () => {
    const err = await rejection(
      teamsChannel().send(makeRoute({ destination: "https://10.0.0.5/webhook" }), makeCtx()),
    );
    assert.ok(err instanceof PermanentError);
    assert.match(err.message, /^teams: refused destination: host is a private address/);
  });
});

/** The local stand-in is allowed, and may be sent the bearer token. */
const trusted = { ...local, bearerTokenHosts: ["127.0.0.1"] };

describe("teams channel: tenant-restricted Workflows triggers", () => {
  it("sends the bearer token, asking a token function before every send", async () => {
    const fixed = await send({ ...trusted, bearerToken: TOKEN }, {});
    assert.deepEqual(fixed.result, { httpStatus: 202 });
    assert.equal(fixed.reqs[0]?.headers["authorization"], `Bearer ${TOKEN}`);
    let calls = 0;
    const fresh = { ...trusted, bearerToken: () => Promise.resolve(`${TOKEN}${++calls}`) };
    const first = await send(fresh, {});
    const second = await send(fresh, {});
    assert.equal(first.reqs[0]?.headers["authorization"], `Bearer ${TOKEN}1`);
    assert.equal(second.reqs[0]?.headers["authorization"], `Bearer ${TOKEN}2`);
  });

  it("keeps the token out of the error when the trigger refuses it", async () => {
    const { result } = await send({ ...trusted, bearerToken: TOKEN }, {}, (q, res) => {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({
        error: {
          code: "MisMatchingOAuthClaims",
          message: "One or more claims either missing or does not match with the open " +
            `authentication access control policy. (${q.headers["authorization"]})`,
        },
      }));
    });
    assert.ok(result instanceof PermanentError, String(result));
    assert.equal(result.httpStatus, 401);
    assert.match(result.message, /MisMatchingOAuthClaims/);
    assert.equal(result.message.includes("c2lnbmF0dXJl"), false, result.message);
  });
});

describe("teams channel: tenant-restricted Workflows triggers, refused", () => {
  it("never sends the token to a host outside bearerTokenHosts", async () => {
    // Default hosts: the Workflows domains only, so 127.0.0.1 does not get it.
    const { reqs, result } = await send({ ...local, bearerToken: TOKEN }, {});
    assert.ok(result instanceof PermanentError, String(result));
    assert.match(result.message, /goes only to logic\.azure\.com, powerplatform\.com, not to/);
    assert.equal(result.message.includes(TOKEN), false);
    assert.equal(reqs.length, 0);
  });

  it("never sends the token over plain http beyond this machine", async () => {
    let requests = 0;
    const teams = teamsChannel({
      bearerToken: TOKEN,
      fetch: () => {
        requests++;
        return Promise.resolve(new Response(null, { status: 202 }));
      },
      resolve: () => Promise.resolve(["20.42.64.1"]),
    });
    const destination =
      "http://prod-00.westus.logic.azure.com/workflows/x/triggers/manual/paths/invoke";
    const err = await rejection(teams.send(makeRoute({ destination }), makeCtx()));
    assert.ok(err instanceof PermanentError, String(err));
    assert.match(
      err.message,
      /goes only over https, not to http:\/\/prod-00\.westus\.logic\.azure\.com/,
    );
    assert.equal(requests, 0);
  });

  it("retries when the token function fails, and checks its options", async () => {
    const failing = {
      ...trusted,
      bearerToken: () => Promise.reject(new Error("token endpoint unreachable")),
    };
    const { reqs, result } = await send(failing, {});
    assert.ok(result instanceof Error && !(result instanceof PermanentError), String(result));
    assert.match(result.message, /bearerToken\(\) failed: token endpoint unreachable/);
    assert.equal(reqs.length, 0);
    assert.throws(
      () => teamsChannel({ bearerToken: "two words" }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "bearerToken",
    );
    assert.throws(
      () => teamsChannel({ bearerToken: TOKEN, bearerTokenHosts: [] }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "bearerTokenHosts",
    );
  });
});
