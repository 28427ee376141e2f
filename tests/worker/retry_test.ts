/**
 * Retries: the backoff after a transient error, Retry-After within the policy, the floor under every retry.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError, RetryLaterError } from "../../core/errors.ts";
import { backoff } from "../../core/retry.ts";
import { Worker } from "../../worker.ts";
import { checkLeaks, fakeStore } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

describe("finalising outcomes: retries", () => {
  it("a transient error schedules a retry after backoff(attempts)", async () => {
    const channel = scriptedChannel(() => Promise.reject(new TypeError("fetch failed")));
    const { worker, enqueue, store, advance } = setup({
      channels: { log: channel },
      retry: { baseMs: 1_000, maxMs: 60_000 },
      random: () => 0.5,
    });
    const { routeIds: [id] } = await enqueue();
    await worker.tick();
    let route = await store.getRoute(id!);
    const expected = backoff(1, { baseMs: 1_000, maxMs: 60_000 }, () => 0.5);
    assert.equal(expected, 750);
    assert.equal(route!.nextAttemptAt.getTime() - route!.updatedAt.getTime(), expected);
    assert.equal(route?.lastError, "TypeError: fetch failed");
    assert.equal(await worker.tick(), 0, "not due yet");
    advance(expected);
    assert.equal(await worker.tick(), 1);
    route = await store.getRoute(id!);
    assert.equal(route?.attempts, 2);
    assert.equal(route!.nextAttemptAt.getTime() - route!.updatedAt.getTime(), 1_500);
  });

  it("honours Retry-After, capped at the policy's maximum", async () => {
    let retryAfterMs = 42_000;
    const channel = scriptedChannel(() =>
      Promise.reject(new RetryLaterError("HTTP 429", { retryAfterMs }))
    );
    const { worker, enqueue, store } = setup({
      channels: { log: channel },
      retry: { baseMs: 10, maxMs: 60_000 },
    });
    const { routeIds: [a] } = await enqueue();
    await worker.tick();
    let route = await store.getRoute(a!);
    assert.equal(route!.nextAttemptAt.getTime() - route!.updatedAt.getTime(), 42_000);
    retryAfterMs = 86_400_000;
    const { routeIds: [b] } = await enqueue();
    await worker.tick();
    route = await store.getRoute(b!);
    assert.equal(route!.nextAttemptAt.getTime() - route!.updatedAt.getTime(), 60_000);
  });
});

describe("the retry floor", () => {
  it("no retry comes sooner than retry.minMs, Retry-After: 0 included", async () => {
    const channel = scriptedChannel(() =>
      Promise.reject(new RetryLaterError("HTTP 429", { retryAfterMs: 0 }))
    );
    const { worker, enqueue, store, advance } = setup({ channels: { log: channel } });
    const { routeIds: [id] } = await enqueue();
    assert.equal(await worker.tick(), 1);
    const route = await store.getRoute(id!);
    assert.equal(route!.nextAttemptAt.getTime() - route!.updatedAt.getTime(), 500);
    assert.equal(await worker.tick(), 0, "not due again before the floor");
    advance(500);
    assert.equal(await worker.tick(), 1);
    assert.equal((await store.getRoute(id!))?.attempts, 2);
  });

  it("refuses a floor above the cap", () => {
    assert.throws(
      () => new Worker({ store: fakeStore(), channels: {}, retry: { minMs: 10, maxMs: 5 } }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "retry.minMs",
    );
  });
});

describe("backoff", () => {
  it("doubles per attempt, caps, and jitters into the upper half", () => {
    const policy = { baseMs: 1_000, maxMs: 10_000 };
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoff(n, policy, () => 1)), [
      1_000,
      2_000,
      4_000,
      8_000,
      10_000,
      10_000,
    ]);
    assert.equal(backoff(3, policy, () => 0), 2_000);
    assert.equal(backoff(1_000, policy, () => 0.5), 7_500);
    assert.equal(backoff(1, { baseMs: 0, maxMs: 0 }, () => 0.9), 0);
  });
});
