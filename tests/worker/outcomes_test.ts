/**
 * Finalising outcomes: sent, failed for good, a route's own attempt budget, secrets kept out, and only the channels a worker has.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PermanentError } from "../../core/errors.ts";
import { Worker } from "../../worker.ts";
import { silentLogger } from "../../observe/logger.ts";
import { checkLeaks, trackWorker } from "../_helpers/leaks.ts";
import { nextEvent, scriptedChannel } from "../_helpers/kit.ts";
import { ok, setup } from "./_setup.ts";

checkLeaks();

describe("finalising outcomes", () => {
  it("success marks the route sent with sent_at", async () => {
    const { worker, enqueue, store } = setup();
    const { routeIds: [id], notificationId } = await enqueue();
    const sent = nextEvent<{ routeId: string; attempt: number }>(worker, "sent");
    await worker.tick();
    const detail = await sent;
    assert.equal(typeof (detail as { durationMs?: unknown }).durationMs, "number");
    assert.deepEqual({ ...detail, durationMs: 0 }, {
      routeId: id,
      notificationId,
      kind: "test",
      channel: "log",
      destination: "d0",
      attempt: 1,
      durationMs: 0,
    });
    const route = await store.getRoute(id!);
    assert.equal(route?.status, "sent");
    assert.equal(route?.attempts, 1);
    assert.ok(route?.sentAt instanceof Date);
  });

  it("a permanent error fails the route at once", async () => {
    const channel = scriptedChannel(() => {
      throw new PermanentError("HTTP 404 from example.com", { httpStatus: 404 });
    });
    const { worker, enqueue, store } = setup({ channels: { log: channel } });
    const { routeIds: [id] } = await enqueue();
    const failed = nextEvent<{ httpStatus?: number }>(worker, "failed");
    await worker.tick();
    assert.equal((await failed).httpStatus, 404);
    const route = await store.getRoute(id!);
    assert.equal(route?.status, "failed");
    assert.equal(route?.attempts, 1);
    assert.equal(route?.lastError, "PermanentError: HTTP 404 from example.com");
  });

  it("a route's own maxAttempts overrides the worker's", async () => {
    const channel = scriptedChannel(() => Promise.reject(new Error("nope")));
    const { worker, enqueue, store } = setup({ channels: { log: channel }, maxAttempts: 5 });
    const { routeIds: [id] } = await enqueue(1, { maxAttempts: 1 });
    await worker.tick();
    assert.equal((await store.getRoute(id!))?.status, "failed");
  });
});

describe("finalising outcomes: secrets and channels", () => {
  it("keeps secrets out of last_error and the logs", async () => {
    const token = "xoxb-SECRET-TOKEN-1234567890";
    const channel = scriptedChannel(() =>
      Promise.reject(
        new Error(`error sending request for url (https://hooks.slack.com/services/${token})`),
      )
    );
    const { worker, enqueue, store, lines } = setup({ channels: { log: channel } });
    const { routeIds: [id] } = await enqueue(1, {
      destination: `https://hooks.slack.com/services/${token}`,
    });
    await worker.tick();
    const route = await store.getRoute(id!);
    assert.ok(route?.lastError);
    assert.equal(route.lastError.includes(token), false, route.lastError);
    assert.equal(JSON.stringify(lines).includes(token), false);
  });

  it("claims only routes of channels it has: the others wait for a worker that has them", async () => {
    const { worker, store } = setup();
    const { routeIds: [pager] } = await store.enqueue({ kind: "k" }, [{
      channel: "pager",
      destination: "x",
    }]);
    const { routeIds: [fine] } = await store.enqueue({ kind: "k" }, [{
      channel: "log",
      destination: "y",
    }]);
    assert.equal(await worker.tick(), 1);
    const route = await store.getRoute(pager!);
    assert.equal(route?.status, "queued");
    assert.equal(route?.attempts, 0);
    assert.equal((await store.getRoute(fine!))?.status, "sent");
    const paging = trackWorker(
      new Worker({ store, channels: { pager: ok() }, logger: silentLogger }),
    );
    assert.equal(await paging.tick(), 1);
    assert.equal((await store.getRoute(pager!))?.status, "sent");
  });
});
