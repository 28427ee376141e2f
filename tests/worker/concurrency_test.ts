/**
 * Concurrency: N claim loops deliver every route once, each holding its routes in a transaction of its own.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLeaks } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

/** A channel whose sends wait until the test opens `gate`; `peak()`: most sends in flight at once. */
function gatedChannel(): {
  channel: ReturnType<typeof scriptedChannel>;
  gate: (() => void)[];
  peak(): number;
} {
  let inFlight = 0;
  let peak = 0;
  const gate: (() => void)[] = [];
  const channel = scriptedChannel(() => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    return new Promise<void>((r) =>
      gate.push(() => {
        inFlight--;
        r();
      })
    );
  });
  return { channel, gate, peak: () => peak };
}

describe("concurrency", () => {
  it("N loops deliver every route exactly once", async () => {
    const seen: string[] = [];
    let release!: () => void;
    const allDone = new Promise<void>((r) => (release = r));
    const total = 300;
    const channel = scriptedChannel(async (route) => {
      seen.push(route.id);
      await Promise.resolve(); // yield, so loops interleave
      if (seen.length === total) release();
    });
    const { worker, enqueue, store } = setup({
      channels: { log: channel },
      concurrency: 4,
      routesPerTick: 7,
      listen: false,
      sleep: (_ms, signal) => new Promise((r) => signal.addEventListener("abort", () => r())),
    });
    await enqueue(total);
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await allDone;
    stop.abort();
    await running;
    assert.equal(seen.length, total);
    assert.equal(new Set(seen).size, total, "no route sent twice");
    assert.ok(store.allRoutes().every((r) => r.status === "sent" && r.attempts === 1));
  });

  it("loops hold their routes in separate transactions at the same time", async () => {
    const { channel, gate, peak } = gatedChannel();
    const { worker, enqueue, store } = setup({
      channels: { log: channel },
      concurrency: 3,
      listen: false,
      sleep: (_ms, signal) => new Promise((r) => signal.addEventListener("abort", () => r())),
    });
    await enqueue(3);
    const stop = new AbortController();
    let claimed = 0;
    const threeClaimed = new Promise<void>((resolve) =>
      worker.addEventListener("claimed", () => ++claimed === 3 && resolve())
    );
    const running = worker.run(stop.signal);
    await threeClaimed;
    assert.equal(store.openTransactions, 3);
    assert.equal(peak(), 3);
    for (const open of gate.splice(0)) open();
    stop.abort();
    await running;
    assert.equal(store.openTransactions, 0);
  });
});
