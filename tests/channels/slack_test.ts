import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { slackChannel } from "../../channels/mod.ts";
import { PermanentError } from "../../core/errors.ts";
import { captureSend } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

const local = { allowHosts: ["127.0.0.1"] } as const;

checkLeaks();

describe("slack channel", () => {
  it("posts { text } as JSON to the incoming webhook", async () => {
    const { req, result } = await captureSend(
      slackChannel(local),
      { destination: "/services/T000/B000/XXXXXXXX" },
      (_q, res) => void res.writeHead(200, { "content-type": "text/plain" }).end("ok"),
    );
    assert.deepEqual(result, { httpStatus: 200 });
    assert.equal(req?.method, "POST");
    assert.equal(req?.path, "/services/T000/B000/XXXXXXXX");
    assert.equal(req?.headers["content-type"], "application/json");
    assert.equal(req?.headers["user-agent"], "Herald/0.1.0");
    assert.deepEqual(JSON.parse(req?.body ?? ""), { text: "Order 42 shipped" });
  });

  it("passes payload.blocks along and uses a template when given", async () => {
    const blocks = [{ type: "section", text: { type: "mrkdwn", text: "*hi*" } }];
    const withBlocks = await captureSend(slackChannel(local), { payload: { text: "hi", blocks } });
    assert.deepEqual(JSON.parse(withBlocks.req?.body ?? ""), { text: "hi", blocks });
    const templated = await captureSend(
      slackChannel({ ...local, template: (r) => ({ text: `${r.kind}!` }) }),
      { payload: { no: "text" } },
    );
    assert.deepEqual(JSON.parse(templated.req?.body ?? ""), { text: "order.shipped!" });
  });

  it("fails permanently without text, and on Slack's 404 no_service", async () => {
    const noText = await captureSend(slackChannel(local), { payload: { other: 1 } });
    assert.ok(noText.result instanceof PermanentError);
    assert.match(noText.result.message, /no string 'text'/);
    assert.equal(noText.req, undefined);
    const gone = await captureSend(
      slackChannel(local),
      { destination: "/services/T000/B000/SECRETSECRET" },
      (_q, res) => void res.writeHead(404).end("no_service"),
    );
    assert.ok(gone.result instanceof PermanentError);
    assert.match(gone.result.message, /HTTP 404 .*no_service/);
    assert.equal(gone.result.message.includes("SECRETSECRET"), false);
  });
});
