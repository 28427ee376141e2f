/**
 * Worker.tick: how many routes a tick handles, in which transactions, and what a failing store does to it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLeaks } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

describe("Worker.tick", () => {
  it("handles at most routesPerTick routes, each in its own transaction", async () => {
    const { worker, enqueue, store } = setup({ routesPerTick: 3 });
    await enqueue(5);
    assert.equal(await worker.tick(), 3);
    assert.equal(store.lockTimeouts.length, 3, "one transaction per route");
    assert.deepEqual(store.allRoutes().map((r) => r.status), [
      "sent",
      "sent",
      "sent",
      "queued",
      "queued",
    ]);
    assert.equal(await worker.tick(), 2);
    assert.equal(await worker.tick(), 0);
    assert.equal(store.openTransactions, 0);
  });

  it("stops as soon as a claim finds nothing, or the signal aborts", async () => {
    const { worker, enqueue, store } = setup();
    await enqueue(2);
    assert.equal(await worker.tick(), 2);
    assert.equal(store.lockTimeouts.length, 3, "two routes, then one empty claim");
    await enqueue(3);
    const stop = new AbortController();
    worker.addEventListener("sent", () => stop.abort());
    assert.equal(await worker.tick(stop.signal), 1);
  });

  it("excludes routes already handled in this tick, so a zero-backoff retry costs one attempt per tick", async () => {
    const failing = scriptedChannel(() => Promise.reject(new Error("HTTP 503")));
    const { worker, enqueue, store } = setup({
      channels: { log: failing },
      retry: { baseMs: 0, maxMs: 0 },
      maxAttempts: 3,
    });
    const { routeIds: [id] } = await enqueue();
    assert.equal(await worker.tick(), 1);
    assert.equal(failing.calls.length, 1);
    let route = await store.getRoute(id!);
    assert.equal(route?.status, "queued");
    assert.equal(route?.attempts, 1);
    assert.equal(await worker.tick(), 1);
    assert.equal((await store.getRoute(id!))?.attempts, 2);
    assert.equal(await worker.tick(), 1);
    route = await store.getRoute(id!);
    assert.equal(route?.status, "failed");
    assert.equal(route?.attempts, 3);
    assert.match(route?.lastError ?? "", /gave up after 3 attempts: HTTP 503/);
    assert.equal(await worker.tick(), 0);
  });
});

describe("Worker.tick: a failing store", () => {
  it("a finalise or commit that fails is rolled back, its outcome salvaged; the tick goes on", async () => {
    const { worker, enqueue, store, lines } = setup();
    const { routeIds: [id, next] } = await enqueue(2);
    store.failNext("finalise", new Error("deadlock detected"));
    assert.equal(await worker.tick(), 2, "the route behind the failed one is still handled");
    const route = await store.getRoute(id!);
    assert.equal(route?.status, "sent", "recorded by the salvage, in a transaction of its own");
    assert.equal(route?.attempts, 1);
    assert.deepEqual((await store.attempts(id!)).map((a) => a.outcome), ["sent"]);
    assert.equal((await store.getRoute(next!))?.status, "sent");
    assert.equal(store.openTransactions, 0);
    const warn = lines.find((l) => l.level === "warn");
    assert.match(warn?.msg ?? "", /rolled back; the tick goes on/);
    assert.match(String((warn?.fields as { error?: string }).error), /deadlock detected/);
    const { routeIds: [third] } = await enqueue();
    store.failNext("commit", new Error("could not serialize"));
    assert.equal(await worker.tick(), 1);
    assert.equal((await store.getRoute(third!))?.status, "sent");
    assert.equal(lines.filter((l) => l.level === "error").length, 0);
  });

  it("a store that fails before claiming fails the tick", async () => {
    const { worker, enqueue, store } = setup();
    await enqueue();
    store.failNext("claim", new Error("connection refused"));
    await assert.rejects(worker.tick(), /connection refused/);
  });
});
