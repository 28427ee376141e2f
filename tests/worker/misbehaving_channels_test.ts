/**
 * Channels that break the rules (throw synchronously, throw a non-Error, never settle) are retried, never a crash.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLeaks } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

describe("misbehaving channels", () => {
  const cases: [string, () => unknown, RegExp][] = [
    ["throws synchronously", () => {
      throw new Error("sync boom");
    }, /sync boom/],
    ["throws a non-Error", () => {
      throw { weird: true };
    }, /non-error thrown/],
    ["rejects with undefined", () => Promise.reject(undefined), /non-error thrown: undefined/],
  ];
  for (const [name, behave, lastError] of cases) {
    it(`a channel that ${name} is retried, not a crash`, async () => {
      const { worker, enqueue, store } = setup({ channels: { log: scriptedChannel(behave) } });
      const { routeIds: [id] } = await enqueue();
      assert.equal(await worker.tick(), 1);
      const route = await store.getRoute(id!);
      assert.equal(route?.status, "queued");
      assert.equal(route?.attempts, 1);
      assert.match(route?.lastError ?? "", lastError);
    });
  }

  it("a channel that returns a non-promise counts as sent", async () => {
    const { worker, enqueue, store } = setup({ channels: { log: scriptedChannel(() => 42) } });
    const { routeIds: [id] } = await enqueue();
    await worker.tick();
    assert.equal((await store.getRoute(id!))?.status, "sent");
  });

  it("a send that outlives the timeout is cut off and retried", async () => {
    const hung = scriptedChannel(() => new Promise(() => {})); // ignores its signal for ever
    const { worker, enqueue, store } = setup({ channels: { log: hung }, sendTimeoutMs: 20 });
    const { routeIds: [id] } = await enqueue();
    assert.equal(await worker.tick(), 1);
    const route = await store.getRoute(id!);
    assert.equal(route?.status, "queued");
    assert.equal(route?.attempts, 1);
    assert.match(route?.lastError ?? "", /timed out after 20 ms/);
    assert.equal(
      store.lockTimeouts[0],
      20 + 5_000,
      "the lock safety net sits above the send timeout",
    );
  });
});
