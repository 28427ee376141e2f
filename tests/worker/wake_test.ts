/**
 * Wake-ups: a notification sends a route without waiting for the interval, a
 * lost subscription is replaced and catches up, and the poll that is the floor.
 * How a wake-up reaches one loop at a time: `wake_loops_test.ts`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLeaks } from "../_helpers/leaks.ts";
import { ManualSleep, nextEvent } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

describe("wake-ups (LISTEN)", () => {
  it("a route enqueued while the worker sleeps is sent without waiting for the interval", async () => {
    const sleeper = new ManualSleep();
    const { worker, enqueue, store } = setup({ sleep: sleeper.sleep, interval: 3_600_000 });
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await sleeper.nextSleep();
    const sent = nextEvent<{ routeId: string }>(worker, "sent");
    const { routeIds: [id] } = await enqueue();
    assert.equal((await sent).routeId, id);
    assert.equal((await store.getRoute(id!))?.status, "sent");
    assert.ok(sleeper.calls.every((ms) => ms > 3_000_000), "never woken by the timer");
    stop.abort();
    await running;
    assert.equal(store.listenerCount, 0, "the subscription is closed on shutdown");
  });

  it("a listener reconnect runs a catch-up tick", async () => {
    const sleeper = new ManualSleep();
    const { worker, store, enqueue } = setup({ sleep: sleeper.sleep, interval: 3_600_000 });
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await sleeper.nextSleep();
    // Enqueued while the listener is away: no notification reaches the worker.
    store.notifications = false;
    const { routeIds: [id] } = await enqueue();
    store.notifications = true;
    const sent = nextEvent<{ routeId: string }>(worker, "sent");
    store.reconnectListeners();
    assert.equal((await sent).routeId, id);
    stop.abort();
    await running;
  });
});

describe("wake-ups (LISTEN): a lost subscription", () => {
  it("a listener that stops hearing its probe subscribes again and catches up", async () => {
    const sleeper = new ManualSleep();
    // Every wait is hand-driven: the loop's and the listener's probe.
    const { worker, store, enqueue, lines } = setup({ sleep: sleeper.sleep, interval: 3_600_000 });
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await sleeper.nextSleep();
    const sent = nextEvent<{ routeId: string }>(worker, "sent");
    store.notifications = false; // deaf: no wake-ups, and the probe goes unheard
    const { routeIds: [id] } = await enqueue(); // so this route is never announced
    sleeper.wakeListener(); // the probe runs, goes unheard, and the listener subscribes again
    assert.equal((await sent).routeId, id, "sent by the catch-up tick of the new subscription");
    assert.ok(lines.some((l) => l.level === "warn" && /stopped hearing/.test(l.msg)));
    assert.deepEqual(sleeper.listenerCalls.slice(0, 1), [2_000], "probed every 2 s");
    store.notifications = true;
    stop.abort();
    await running;
    assert.equal(store.listenerCount, 0);
  });

  it("one unheard probe is probed again, not replaced: a stalled process can miss its own deadline", async () => {
    const sleeper = new ManualSleep();
    const { worker, store, lines } = setup({ sleep: sleeper.sleep, interval: 3_600_000 });
    const answers = [false, true, false, false]; // missed then heard; then deaf
    let subscribed = 0;
    const listen = store.listen.bind(store);
    store.listen = async (handlers) => {
      subscribed++;
      const subscription = await listen(handlers);
      return { ...subscription, alive: () => Promise.resolve(answers.shift() ?? true) };
    };
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await sleeper.nextListenerSleep();
    const probed = sleeper.nextListenerSleep();
    sleeper.wakeListener(); // unheard, heard at once on the second chance
    await probed;
    assert.equal(subscribed, 1, "kept: the second probe was heard");
    assert.ok(lines.some((l) => l.level === "debug" && /probing once more/.test(l.msg)));
    assert.ok(!lines.some((l) => l.level === "warn"), "no warning for a single miss");
    const replaced = sleeper.nextListenerSleep();
    sleeper.wakeListener(); // unheard twice: replaced
    await replaced;
    assert.equal(subscribed, 2, "replaced after two misses in a row");
    assert.ok(lines.some((l) => l.level === "warn" && /stopped hearing/.test(l.msg)));
    stop.abort();
    await running;
  });

  it("a subscription that fails is tried again after 100 ms, doubling to 2 s, whatever the interval", async () => {
    const sleeper = new ManualSleep();
    const { worker, store, lines } = setup({ sleep: sleeper.sleep, interval: 3_600_000 });
    let refusals = 0;
    const listen = store.listen.bind(store);
    store.listen = (handlers) => {
      if (refusals++ < 6) return Promise.reject(new Error("connection refused"));
      return listen(handlers);
    };
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    for (let i = 0; i < 6; i++) {
      await sleeper.nextListenerSleep();
      sleeper.wakeListener();
    }
    await sleeper.nextListenerSleep(); // subscribed: now waiting to probe
    assert.deepEqual(sleeper.listenerCalls, [100, 200, 400, 800, 1_600, 2_000, 2_000]);
    assert.ok(lines.some((l) => /^listening for new routes$/.test(l.msg)));
    stop.abort();
    await running;
  });
});

describe("wake-ups (LISTEN): polling", () => {
  it("listen: false keeps to polling", async () => {
    const sleeper = new ManualSleep();
    const { worker, store } = setup({ listen: false, sleep: sleeper.sleep });
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await sleeper.nextSleep();
    assert.equal(store.listenerCount, 0);
    stop.abort();
    await running;
  });

  it("a full tick is followed by another at once", async () => {
    const sleeper = new ManualSleep();
    const { worker, enqueue, store } = setup({
      listen: false,
      sleep: sleeper.sleep,
      routesPerTick: 2,
    });
    await enqueue(5);
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await sleeper.nextSleep();
    assert.deepEqual(store.allRoutes().map((r) => r.status), Array(5).fill("sent"));
    assert.equal(sleeper.calls.length, 1, "no sleep between full ticks");
    stop.abort();
    await running;
  });

  it("shaves up to 10% off the interval at random", async () => {
    const sleeper = new ManualSleep();
    const { worker } = setup({
      listen: false,
      sleep: sleeper.sleep,
      interval: 1_000,
      random: () => 0.5,
    });
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await sleeper.nextSleep();
    assert.deepEqual(sleeper.calls, [950]);
    stop.abort();
    await running;
  });
});

/**
 * A sleep for several loops: each loop's wait ends only when the worker wakes
 * it (or shuts down). The listener's waits (its probe) never end on their
 * own. `until` re-checks a condition at every change of `asleep` (loops
 * waiting now) and whenever `changed` is called.
 */
