/**
 * Batch mode (routesPerTransaction > 1): K routes in one transaction, each finalised with its own outcome.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PermanentError, RetryLaterError } from "../../core/errors.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

describe("batch mode (routesPerTransaction > 1)", () => {
  it("claims K routes in one transaction and finalises each with its own outcome", async () => {
    const channel = scriptedChannel((route) => {
      const p = route.destination;
      if (p === "d0") return Promise.resolve({ httpStatus: 202 });
      if (p === "d1") return Promise.reject(new PermanentError("HTTP 404", { httpStatus: 404 }));
      if (p === "d2") {
        return Promise.reject(new RetryLaterError("HTTP 429", { retryAfterMs: 5_000 }));
      }
      return Promise.reject(new Error("socket hang up"));
    });
    const { worker, enqueue, store } = setup({
      channels: { log: channel },
      routesPerTransaction: 10,
    });
    const { routeIds } = await enqueue(4);
    assert.equal(await worker.tick(), 4);
    assert.equal(store.lockTimeouts.length, 1, "one transaction for the whole batch");
    const routes = await Promise.all(routeIds.map((id) => store.getRoute(id)));
    assert.deepEqual(routes.map((r) => r?.status), ["sent", "failed", "queued", "queued"]);
    assert.deepEqual(routes.map((r) => r?.attempts), [1, 1, 1, 1]);
    assert.equal(routes[2]!.nextAttemptAt.getTime() - routes[2]!.updatedAt.getTime(), 5_000);
    assert.match(routes[3]?.lastError ?? "", /socket hang up/);
    assert.deepEqual(store.finalised.map((f) => f.httpStatus), [202, 404, undefined, undefined]);
  });

  it("sends a batch concurrently", async () => {
    let inFlight = 0;
    let peak = 0;
    const channel = scriptedChannel(async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await Promise.resolve();
      await Promise.resolve();
      inFlight--;
    });
    const { worker, enqueue } = setup({ channels: { log: channel }, routesPerTransaction: 5 });
    await enqueue(5);
    assert.equal(await worker.tick(), 5);
    assert.equal(peak, 5);
  });
});

describe("batch mode (routesPerTransaction > 1): limits and shutdown", () => {
  it("respects routesPerTick across batches and the seen-exclusion within a tick", async () => {
    const failing = scriptedChannel(() => Promise.reject(new Error("HTTP 500")));
    const { worker, enqueue, store } = setup({
      channels: { log: failing },
      routesPerTransaction: 4,
      routesPerTick: 6,
      retry: { baseMs: 0, maxMs: 0 },
    });
    await enqueue(3);
    assert.equal(await worker.tick(), 3, "each route once per tick although due again at once");
    assert.deepEqual(store.allRoutes().map((r) => r.attempts), [1, 1, 1]);
    assert.equal(store.lockTimeouts.length, 1);
  });

  it("on a shutdown deadline, finished sends are recorded and cut ones left as they were", async () => {
    const channel = scriptedChannel((route, signal) =>
      route.destination === "d0" ? Promise.resolve() : new Promise((_, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason));
      })
    );
    const { worker, enqueue, store } = setup({
      channels: { log: channel },
      routesPerTransaction: 3,
    });
    const { routeIds } = await enqueue(3);
    let claimed = 0;
    const allClaimed = new Promise<void>((resolve) =>
      worker.addEventListener("claimed", () => ++claimed === 3 && resolve())
    );
    const ticking = worker.tick();
    await allClaimed;
    await worker.shutdown({ timeoutMs: 0 });
    assert.equal(await ticking, 1);
    const routes = await Promise.all(routeIds.map((id) => store.getRoute(id)));
    assert.deepEqual(routes.map((r) => r?.status), ["sent", "queued", "queued"]);
    assert.deepEqual(routes.map((r) => r?.attempts), [1, 0, 0]);
    assert.equal(store.openTransactions, 0);
  });

  it("a batch claimed ahead whose connection is lost before its turn sends nothing", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    // The first batch's sends wait at the gate; the batch claimed ahead waits for them.
    const channel = scriptedChannel((route) =>
      route.destination === "d0" || route.destination === "d1" ? gate : Promise.resolve()
    );
    const { worker, enqueue, store } = setup({
      channels: { log: channel },
      routesPerTransaction: 2,
    });
    const { routeIds } = await enqueue(4);
    let claimed = 0;
    const allClaimed = new Promise<void>((resolve) =>
      worker.addEventListener("claimed", () => ++claimed === 4 && resolve())
    );
    const ticking = worker.tick();
    await allClaimed;
    // The database goes away: both transactions roll back; the first batch's sends go on.
    store.loseConnections();
    await new Promise((resolve) => setImmediate(resolve)); // the failed transactions are handled
    open();
    assert.equal(await ticking, 2, "the first batch's outcomes, salvaged");
    assert.deepEqual(channel.calls.map((r) => r.destination), ["d0", "d1"]);
    const routes = await Promise.all(routeIds.map((id) => store.getRoute(id)));
    assert.deepEqual(routes.map((r) => [r?.status, r?.attempts]), [
      ["sent", 1],
      ["sent", 1],
      ["queued", 0],
      ["queued", 0],
    ]);
    assert.equal(store.openTransactions, 0);
  });
});
