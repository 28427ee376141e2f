/**
 * Worker.shutdown: the grace for in-flight sends, a shorter second call, and the deadline that cuts them.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLeaks } from "../_helpers/leaks.ts";
import { nextEvent, scriptedChannel } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

describe("Worker.shutdown", () => {
  it("lets an in-flight send finish before the deadline", async () => {
    let finish!: () => void;
    const channel = scriptedChannel(() => new Promise<void>((r) => (finish = r)));
    const { worker, enqueue, store } = setup({ channels: { log: channel } });
    const { routeIds: [id] } = await enqueue(2);
    const claimed = nextEvent(worker, "claimed");
    const ticking = worker.tick();
    await claimed;
    const stopping = worker.shutdown({ timeoutMs: 60_000 });
    finish();
    await stopping;
    assert.equal(await ticking, 1, "no claim after shutdown began");
    assert.equal((await store.getRoute(id!))?.status, "sent");
    assert.equal(worker.shutdown(), stopping, "safe to call twice");
  });

  it("a second call with a shorter timeout cuts the grace short", async () => {
    const channel = scriptedChannel((_r, signal) =>
      new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)))
    );
    const { worker, enqueue, store, lines } = setup({ channels: { log: channel } });
    const { routeIds: [id] } = await enqueue();
    const claimed = nextEvent(worker, "claimed");
    const ticking = worker.tick();
    await claimed;
    const first = worker.shutdown({ timeoutMs: 3_600_000 });
    const second = worker.shutdown({ timeoutMs: 0 });
    assert.equal(second, first, "the same shutdown");
    await second;
    assert.equal(await ticking, 0);
    assert.equal((await store.getRoute(id!))?.attempts, 0);
    // Said as it happened: no hour went by.
    const warned = lines.filter((l) => l.level === "warn" && /shutdown/.test(l.msg));
    assert.deepEqual(warned.map((l) => [l.msg, l.fields]), [
      ["shutdown hurried by a second stop; aborting in-flight sends", { timeout_ms: 0 }],
    ]);
  });

  it("aborts sends still in flight at the deadline; their routes stay queued, attempts unspent", async () => {
    let sawAbort = false;
    const channel = scriptedChannel((_r, signal) =>
      new Promise((_, reject) =>
        signal.addEventListener("abort", () => {
          sawAbort = true;
          reject(signal.reason);
        })
      )
    );
    const { worker, enqueue, store } = setup({ channels: { log: channel } });
    const { routeIds: [id] } = await enqueue();
    const claimed = nextEvent(worker, "claimed");
    const ticking = worker.tick();
    await claimed;
    await worker.shutdown({ timeoutMs: 0 });
    assert.equal(await ticking, 0);
    assert.ok(sawAbort, "the channel saw its signal abort");
    const route = await store.getRoute(id!);
    assert.equal(route?.status, "queued");
    assert.equal(route?.attempts, 0);
    assert.equal(route?.lastError, null);
    assert.equal(store.openTransactions, 0);
  });
});
