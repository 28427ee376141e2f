import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError, PermanentError, RetryLaterError } from "../../core/errors.ts";
import { backoff } from "../../core/retry.ts";
import { Worker, WORKER_DEFAULTS } from "../../worker.ts";
import type { WorkerOptions } from "../../worker.ts";
import { FakeStore } from "../_helpers/fake_store.ts";
import { silentLogger } from "../../observe/logger.ts";
import { ManualSleep, nextEvent, recordingLogger, scriptedChannel } from "../_helpers/kit.ts";

const ok = () => scriptedChannel(() => Promise.resolve());

function setup(options: Partial<WorkerOptions> = {}) {
  let now = 1_700_000_000_000;
  const store = new FakeStore({ now: () => now });
  const { logger, lines } = recordingLogger();
  const worker = new Worker({
    store,
    channels: { log: ok() },
    logger,
    random: () => 0,
    ...options,
  });
  return {
    store,
    worker,
    lines,
    advance: (ms: number) => void (now += ms),
    enqueue: (n = 1, extra: object = {}) =>
      store.enqueue(
        { kind: "test", payload: { n } },
        Array.from({ length: n }, (_, i) => ({ channel: "log", destination: `d${i}`, ...extra })),
      ),
  };
}

describe("Worker.run", () => {
  // These pin the poll loop itself; wake-ups are tested below.
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

describe("finalising outcomes", () => {
  it("success marks the route sent with sent_at", async () => {
    const { worker, enqueue, store } = setup();
    const { routeIds: [id] } = await enqueue();
    const sent = nextEvent<{ routeId: string; attempt: number }>(worker, "sent");
    await worker.tick();
    const detail = await sent;
    assert.equal(typeof (detail as { durationMs?: unknown }).durationMs, "number");
    assert.deepEqual({ ...detail, durationMs: 0 }, {
      routeId: id,
      channel: "log",
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

  it("a route's own maxAttempts overrides the worker's", async () => {
    const channel = scriptedChannel(() => Promise.reject(new Error("nope")));
    const { worker, enqueue, store } = setup({ channels: { log: channel }, maxAttempts: 5 });
    const { routeIds: [id] } = await enqueue(1, { maxAttempts: 1 });
    await worker.tick();
    assert.equal((await store.getRoute(id!))?.status, "failed");
  });

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
    const paging = new Worker({ store, channels: { pager: ok() }, logger: silentLogger });
    assert.equal(await paging.tick(), 1);
    assert.equal((await store.getRoute(pager!))?.status, "sent");
  });
});

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
    const { worker, enqueue, store } = setup({ channels: { log: channel } });
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

describe("Worker config", () => {
  const store = new FakeStore();
  const bad: [string, Partial<WorkerOptions>][] = [
    ["interval", { interval: Number.NaN }],
    ["interval", { interval: "5s" as unknown as number }],
    ["routesPerTick", { routesPerTick: 0 }],
    ["routesPerTick", { routesPerTick: 1.5 }],
    ["maxAttempts", { maxAttempts: 0 }],
    ["maxAttempts", { maxAttempts: -3 }],
    ["sendTimeoutMs", { sendTimeoutMs: 0 }],
    ["shutdownTimeoutMs", { shutdownTimeoutMs: -1 }],
    ["retry.baseMs", { retry: { baseMs: -1 } }],
    ["retry.maxMs", { retry: { baseMs: 10, maxMs: 5 } }],
    ["channels", { channels: { "Not A Name": { send: () => Promise.resolve() } } }],
    ["channels.log", { channels: { log: {} as never } }],
    ["store", { store: {} as never }],
    ["logger", { logger: {} as never }],
    ["random", { random: 4 as never }],
  ];
  for (const [field, options] of bad) {
    it(`refuses a bad '${field}' with a typed error naming it`, () => {
      assert.throws(
        () => new Worker({ store, channels: {}, ...options }),
        (err: unknown) =>
          err instanceof InvalidArgumentError && err.field === field &&
          err.message.includes(`'${field}'`),
      );
    });
  }
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
      () => new Worker({ store: new FakeStore(), channels: {}, retry: { minMs: 10, maxMs: 5 } }),
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
    assert.equal(peak, 3);
    for (const open of gate.splice(0)) open();
    stop.abort();
    await running;
    assert.equal(store.openTransactions, 0);
  });
});

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
});
