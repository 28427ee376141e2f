/**
 * Worker.run: the poll loop (ticks at once, then once per interval), a failed tick, and how
 * run ends. These pin the poll loop itself; wake-ups are tested in wake_test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WORKER_DEFAULTS } from "../../worker.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { ManualSleep } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

describe("Worker.run", () => {
  it("ticks at once, then once per interval (default 5 s)", async () => {
    const sleeper = new ManualSleep();
    const { worker, enqueue, store } = setup({ listen: false, sleep: sleeper.sleep });
    const { routeIds: [first] } = await enqueue();
    const stop = new AbortController();
    const slept = sleeper.nextSleep();
    const running = worker.run(stop.signal);
    await slept;
    assert.equal((await store.getRoute(first!))?.status, "sent", "queued route drained at startup");
    assert.deepEqual(sleeper.calls, [WORKER_DEFAULTS.interval]);

    const { routeIds: [second] } = await enqueue();
    assert.equal(
      (await store.getRoute(second!))?.status,
      "queued",
      "nothing happens between ticks",
    );
    const sleptAgain = sleeper.nextSleep();
    sleeper.wake();
    await sleptAgain;
    assert.equal((await store.getRoute(second!))?.status, "sent");
    assert.deepEqual(sleeper.calls, [5_000, 5_000]);
    stop.abort();
    await running;
  });

  it("treats an interval <= 0 as the 5 s default and uses a given one", async () => {
    for (const [interval, expected] of [[0, 5_000], [-1, 5_000], [250, 250]] as const) {
      const sleeper = new ManualSleep();
      const { worker } = setup({ listen: false, sleep: sleeper.sleep, interval });
      const stop = new AbortController();
      const slept = sleeper.nextSleep();
      const running = worker.run(stop.signal);
      await slept;
      stop.abort();
      await running;
      assert.deepEqual(sleeper.calls, [expected]);
    }
  });
});

describe("Worker.run: failures", () => {
  it("logs a failed tick as a warning and goes on", async () => {
    const sleeper = new ManualSleep();
    const { worker, enqueue, store, lines } = setup({ listen: false, sleep: sleeper.sleep });
    const { routeIds: [id] } = await enqueue();
    store.failNext("claim", new Error("connection reset"));
    const stop = new AbortController();
    const slept = sleeper.nextSleep();
    const running = worker.run(stop.signal);
    await slept;
    const warn = lines.find((l) => l.level === "warn");
    assert.equal(warn?.msg, "tick failed; the loop goes on");
    assert.match(String((warn?.fields as { error?: string }).error), /connection reset/);
    assert.equal((await store.getRoute(id!))?.status, "queued");
    const sleptAgain = sleeper.nextSleep();
    sleeper.wake();
    await sleptAgain;
    assert.equal((await store.getRoute(id!))?.status, "sent");
    stop.abort();
    await running;
  });

  it("refuses to run twice at once", async () => {
    const sleeper = new ManualSleep();
    const { worker } = setup({ listen: false, sleep: sleeper.sleep });
    const stop = new AbortController();
    const slept = sleeper.nextSleep();
    const running = worker.run(stop.signal);
    await slept;
    await assert.rejects(worker.run(), /already running/);
    stop.abort();
    await running;
  });
});

describe("Worker.run: stopping", () => {
  it("an aborted signal ends run cleanly, with no tick after the abort", async () => {
    const sleeper = new ManualSleep();
    const { worker, enqueue, store } = setup({ listen: false, sleep: sleeper.sleep });
    const stop = new AbortController();
    const slept = sleeper.nextSleep();
    const running = worker.run(stop.signal);
    await slept;
    const { routeIds: [id] } = await enqueue();
    stop.abort();
    await running; // resolves, does not throw
    assert.equal((await store.getRoute(id!))?.status, "queued");
    assert.equal(await worker.tick(), 0, "a shut-down worker claims nothing");
    assert.equal(sleeper.calls.length, 1);
  });

  it("returns at once when given an already aborted signal", async () => {
    const { worker, enqueue, store } = setup();
    const { routeIds: [id] } = await enqueue();
    await worker.run(AbortSignal.abort());
    assert.equal((await store.getRoute(id!))?.status, "queued");
  });
});
