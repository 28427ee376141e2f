/**
 * End to end on the real database: enqueue webhook routes, let the worker
 * deliver them to a local receiver that verifies every signature, and check
 * each route ends where its receiver's answers should put it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { verifyWebhook, webhookChannel } from "../../channels/mod.ts";
import { Worker } from "../../worker.ts";
import { silentLogger } from "../../observe/logger.ts";
import { freshStore } from "../_helpers/pg.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

describe("webhook delivery end to end (Postgres + local receiver)", () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let server: TestServer;
  const verified: string[] = [];
  const flaky = new Map<string, number>();

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    server = await startServer(async (req, res) => {
      const ok = await verifyWebhook({ secret: SECRET, headers: req.headers, body: req.body });
      if (!ok) return void res.writeHead(401).end("bad signature");
      const id = req.headers["webhook-id"]!;
      verified.push(id);
      if (req.path === "/gone") return void res.writeHead(410).end();
      if (req.path === "/flaky") {
        const n = (flaky.get(id) ?? 0) + 1;
        flaky.set(id, n);
        if (n === 1) return void res.writeHead(503, { "retry-after": "0" }).end();
      }
      res.writeHead(204).end();
    });
  });
  after(async () => {
    await server.close();
    await env.cleanup();
  });

  it("delivers, retries a 503 honouring Retry-After, and fails a 410 for good", async () => {
    const { routeIds } = await env.store.enqueue(
      { kind: "order.shipped", payload: { order: 42 } },
      [
        { channel: "webhook", destination: `${server.url}/ok` },
        { channel: "webhook", destination: `${server.url}/flaky` },
        { channel: "webhook", destination: `${server.url}/gone` },
      ],
    );
    const [ok, flakyId, gone] = routeIds as [string, string, string];
    const worker = new Worker({
      store: env.store,
      channels: { webhook: webhookChannel({ secret: SECRET, allowHosts: ["127.0.0.1"] }) },
      retry: { minMs: 0 }, // honour Retry-After: 0 to the letter, so the second tick finds it due
      logger: silentLogger,
    });
    assert.equal(await worker.tick(), 3, "each route once in the first tick");
    assert.equal((await env.store.getRoute(ok))?.status, "sent");
    const retried = await env.store.getRoute(flakyId);
    assert.equal(retried?.status, "queued");
    assert.match(retried?.lastError ?? "", /503/);
    const failed = await env.store.getRoute(gone);
    assert.equal(failed?.status, "failed");
    assert.match(failed?.lastError ?? "", /410/);

    assert.equal(await worker.tick(), 1, "Retry-After: 0 makes it due again at once");
    assert.equal((await env.store.getRoute(flakyId))?.status, "sent");
    assert.deepEqual(
      verified.sort(),
      [ok, flakyId, flakyId, gone].sort(),
      "webhook-id is the route id",
    );
  });
});
