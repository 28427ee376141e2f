/**
 * The examples in examples/ run as documented: an application enqueues in its
 * own transaction, the example worker delivers a signed webhook to the
 * example receiver and an e-mail to a Postmark-shaped local server, and shuts
 * down cleanly on SIGTERM.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { freshStore } from "../_helpers/pg.ts";
import { DATABASE_URL } from "../_helpers/pg.ts";
import { RUNTIME, scriptArgs, startScript, waitForLine } from "../_helpers/spawn.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const example = (name: string): string =>
  fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

describe(`examples on ${RUNTIME}`, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let postmark: TestServer;
  before(async () => {
    env = await freshStore();
    postmark = await startServer((_req, res) =>
      void res.writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ ErrorCode: 0, Message: "OK", MessageID: "b7bc2f4a" }))
    );
  });
  after(async () => {
    await postmark.close();
    await env.cleanup();
  });

  it("enqueue in a transaction, deliver with the worker, verify at the receiver", async () => {
    const receiver = startScript(example("receiver.ts"), [], { WEBHOOK_SECRET: SECRET, PORT: "0" });
    try {
      const listening = await waitForLine(receiver.stdout!, /listening on /);
      const receiverUrl = listening.replace(/.*listening on /, "").trim();

      const [exe, argv] = scriptArgs(example("enqueue_in_transaction.ts"), []);
      const enqueued = await new Promise<string>((resolve, reject) =>
        execFile(
          exe,
          argv,
          {
            env: {
              ...process.env,
              DATABASE_URL,
              HERALD_SCHEMA: env.schema,
              RECEIVER_URL: `${receiverUrl}/orders`,
            },
          },
          (
            err,
            stdout,
            stderr,
          ) => (err ? reject(new Error(stderr || String(err))) : resolve(stdout)),
        )
      );
      const { routeIds } = JSON.parse(enqueued.trim().split("\n").pop()!) as { routeIds: string[] };
      assert.equal(routeIds.length, 2);

      const worker = startScript(example("worker.ts"), [], {
        DATABASE_URL,
        HERALD_SCHEMA: env.schema,
        WEBHOOK_SECRET: SECRET,
        POSTMARK_TOKEN: "server-token-for-tests",
        POSTMARK_URL: postmark.url,
        ALLOW_HOSTS: "127.0.0.1",
      });
      const stopped = waitForLine(worker.stdout!, /stopped cleanly/);
      stopped.catch(() => {}); // awaited below, unless the test failed first
      try {
        await waitForLine(receiver.stdout!, new RegExp(`verified ${routeIds[0]} order\\.created`));
        while (postmark.requests.length === 0) await postmark.nextRequest();
        const mail = JSON.parse(postmark.requests[0]!.body);
        assert.equal(mail.To, "buyer@example.com");
        assert.match(mail.Subject, /Your order \d+ is confirmed/);
        for (const id of routeIds) {
          while ((await env.store.getRoute(id))?.status !== "sent") {
            await new Promise((r) => setImmediate(r));
          }
        }
      } finally {
        worker.kill("SIGTERM");
      }
      await stopped;
    } finally {
      receiver.kill("SIGTERM");
    }
  });
});
