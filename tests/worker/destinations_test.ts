/**
 * Destination isolation, driven through the worker on a FakeStore with a
 * hand-moved clock: a destination that never answers holds at most its cap
 * of loops; one that keeps failing opens, spends no attempt while open, is
 * probed once per cool-down and drains when it recovers; 410 disables it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PermanentError, RetryLaterError } from "../../core/errors.ts";
import type { DestinationEventDetail } from "../../core/events.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

const DEAD = "https://dead.example";
const OK = "https://ok.example";

/** Sleeps that only end when woken or stopped: the loops run on notifications alone. */
const wakeOnly = (_ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((r) => signal.addEventListener("abort", () => r(), { once: true }));

function routesTo(base: string, n: number, from = 0) {
  return Array.from(
    { length: n },
    (_, i) => ({ channel: "webhook", destination: `${base}/${from + i}` }),
  );
}

describe("destinations, through the worker", () => {
  it("a destination that never answers holds at most its cap of loops: every healthy route goes", async () => {
    let hanging = 0;
    let peak = 0;
    let healthy = 0;
    let allHealthy!: () => void;
    const done = new Promise<void>((r) => (allHealthy = r));
    const channel = scriptedChannel((route, signal) => {
      if (route.destination.startsWith(OK)) {
        if (++healthy === 20) allHealthy();
        return Promise.resolve();
      }
      hanging++;
      peak = Math.max(peak, hanging);
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => {
          hanging--;
          reject(signal.reason);
        }, { once: true })
      );
    });
    const { worker, store } = setup({
      channels: { webhook: channel },
      concurrency: 4,
      listen: false,
      sendTimeoutMs: 600_000,
      sleep: wakeOnly,
    });
    await store.enqueue({ kind: "k" }, routesTo(DEAD, 100));
    await store.enqueue({ kind: "k" }, routesTo(OK, 20));
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    await done;
    assert.equal(peak, 2, "half of 4 loops, no more, wait on the dead destination");
    const shut = worker.shutdown({ timeoutMs: 0 });
    stop.abort();
    await Promise.all([running, shut]);
    const dead = store.allRoutes().filter((r) => r.destination.startsWith(DEAD));
    assert.ok(
      dead.every((r) => r.status === "queued" && r.attempts === 0),
      "cut sends spend nothing",
    );
  });

  it("failures open a destination; while open nothing is sent or spent; one probe per cool-down; recovery drains it", async () => {
    let answering = false;
    const sent: string[] = [];
    const channel = scriptedChannel((route) => {
      sent.push(route.id);
      if (!answering) return Promise.reject(new RetryLaterError("HTTP 503", { httpStatus: 503 }));
      return Promise.resolve();
    });
    const events: [string, DestinationEventDetail][] = [];
    const { worker, store, advance } = setup({
      channels: { webhook: channel },
      maxAttempts: 3,
      destinations: { failureThreshold: 3, cooldownMs: 60_000 },
      retry: { minMs: 1_000, maxMs: 1_000 },
    });
    for (const name of ["destination.opened", "destination.closed", "destination.disabled"]) {
      worker.addEventListener(name, (e) => events.push([name, (e as CustomEvent).detail]));
    }
    await store.enqueue({ kind: "k" }, routesTo(DEAD, 50));

    await worker.tick();
    assert.equal(sent.length, 3, "three failures open it; the tick claims nothing more");
    assert.deepEqual(events.map(([n, d]) => [n, d.destination, d.trips]), [[
      "destination.opened",
      DEAD,
      1,
    ]]);
    advance(30_000); // the retries' backoff is over, the cool-down is not
    assert.equal(await worker.tick(), 0);
    assert.equal(sent.length, 3);

    for (let round = 1; round <= 4; round++) {
      advance(60_000 * 2 ** (round - 1)); // each failed probe doubles the cool-down
      await worker.tick();
      assert.equal(sent.length, 3 + round, `round ${round}: one probe, no more`);
    }
    const routes = store.allRoutes();
    assert.ok(routes.every((r) => r.status === "queued"), "nothing failed by the outage");
    assert.equal(routes.reduce((n, r) => n + r.attempts, 0), 3, "only the three before it opened");

    answering = true;
    advance(60_000 * 2 ** 4);
    await worker.tick();
    for (let i = 0; i < 5 && store.allRoutes().some((r) => r.status === "queued"); i++) {
      await worker.tick();
    }
    assert.ok(store.allRoutes().every((r) => r.status === "sent"), "the backlog drains");
    assert.equal(events.at(-1)?.[0], "destination.closed");
    const d = await store.destination("webhook", DEAD);
    assert.equal(d?.state, "closed");
    assert.equal(d?.consecutiveFailures, 0);
  });

  it("410 Gone from a webhook on a shared host disables it; its other routes stay queued until it is enabled", async () => {
    const hook = "https://hooks.slack.com/services/T0/B0/revoked";
    let gone = true;
    const channel = scriptedChannel(() =>
      gone ? Promise.reject(new PermanentError("HTTP 410", { httpStatus: 410 })) : Promise.resolve()
    );
    const { worker, store } = setup({ channels: { slack: channel } });
    let disabled: DestinationEventDetail | undefined;
    worker.addEventListener("destination.disabled", (e) => (disabled = (e as CustomEvent).detail));
    await store.enqueue(
      { kind: "k" },
      Array.from({ length: 5 }, () => ({ channel: "slack", destination: hook })),
    );
    await worker.tick();
    assert.match(disabled?.destination ?? "", /^https:\/\/hooks\.slack\.com#[0-9a-f]{16}$/);
    assert.match(disabled?.reason ?? "", /410/);
    const [first, ...rest] = store.allRoutes();
    assert.equal(first?.status, "failed");
    assert.ok(rest.every((r) => r.status === "queued" && r.attempts === 0));
    assert.equal(await worker.tick(), 0);

    gone = false;
    await store.setDestinationState("slack", disabled!.destination, "enable");
    await worker.tick();
    assert.deepEqual(store.allRoutes().map((r) => r.status), [
      "failed",
      "sent",
      "sent",
      "sent",
      "sent",
    ]);
  });

  it("410 Gone from one path of an origin fails that route only: the host's other paths go on", async () => {
    const channel = scriptedChannel((route) =>
      route.destination.endsWith("/gone")
        ? Promise.reject(new PermanentError("HTTP 410", { httpStatus: 410 }))
        : Promise.resolve()
    );
    const { worker, store } = setup({ channels: { webhook: channel } });
    await store.enqueue({ kind: "k" }, [
      { channel: "webhook", destination: `${DEAD}/gone` },
      ...routesTo(DEAD, 3),
    ]);
    await worker.tick();
    assert.deepEqual(store.allRoutes().map((r) => r.status), ["failed", "sent", "sent", "sent"]);
    assert.equal((await store.destination("webhook", DEAD))?.state, "closed");
  });

  it("a refusal of a route by a live destination (4xx) counts as an answer, not a failure", async () => {
    // 503, 400, 503, 400, ...: never two failures in a row, so never open.
    const channel = scriptedChannel((_route, _signal, call) =>
      Promise.reject(
        call % 2 === 1
          ? new RetryLaterError("HTTP 503", { httpStatus: 503 })
          : new PermanentError("HTTP 400", { httpStatus: 400 }),
      )
    );
    const { worker, store } = setup({
      channels: { webhook: channel },
      destinations: { failureThreshold: 2 },
    });
    await store.enqueue({ kind: "k" }, routesTo(DEAD, 6));
    await worker.tick();
    assert.equal(channel.calls.length, 6, "every route was tried");
    const d = await store.destination("webhook", DEAD);
    assert.equal(d?.state, "closed");
    assert.equal(d?.consecutiveFailures, 0);
    assert.ok(d?.lastSuccessAt, "the 400 told it was alive");
  });

  it("a channel's rate limit: one send per token; a loop with nothing to claim sleeps until the next token", async () => {
    const hook = "https://hooks.slack.com/services/T0/B0/limited";
    const channel = {
      ...scriptedChannel(() => Promise.resolve()),
      rateLimit: { perSecond: 1 / 60, burst: 1 },
    };
    const { worker, store, advance } = setup({ channels: { slack: channel } });
    await store.enqueue(
      { kind: "k" },
      Array.from({ length: 3 }, () => ({ channel: "slack", destination: hook })),
    );
    assert.equal(await worker.tick(), 1, "one token");
    assert.equal(await worker.tick(), 0, "the next is a minute away; nothing spent");
    assert.ok(
      store.allRoutes().filter((r) => r.status === "queued").every((r) => r.attempts === 0),
    );
    advance(60_000);
    assert.equal(await worker.tick(), 1);

    const sleeps: number[] = [];
    const stop = new AbortController();
    const { worker: looping, store: other } = setup({
      channels: { slack: channel },
      interval: 600_000,
      listen: false,
      sleep: (ms, signal) => {
        sleeps.push(ms);
        stop.abort(); // one sleep is all this looks at
        if (signal.aborted) return Promise.resolve();
        return new Promise((r) => signal.addEventListener("abort", () => r(), { once: true }));
      },
    });
    await other.enqueue(
      { kind: "k" },
      Array.from({ length: 3 }, () => ({ channel: "slack", destination: hook })),
    );
    await looping.run(stop.signal);
    assert.ok(
      sleeps[0]! > 50_000 && sleeps[0]! <= 60_000,
      `slept ${sleeps[0]} ms, not the interval`,
    );
  });

  it("refuses a channel's bad rate limit, naming it", () => {
    const bad = { send: () => Promise.resolve(), rateLimit: { perSecond: 0, burst: 1 } };
    assert.throws(
      () => setup({ channels: { slack: bad } }),
      /channels\.slack\.rateLimit\.perSecond/,
    );
  });

  it("refuses bad destination settings, naming them", () => {
    assert.throws(
      () => setup({ destinations: { maxInFlight: 0 } }),
      /destinations\.maxInFlight/,
    );
    assert.throws(
      () => setup({ destinations: { cooldown: 5 } as never }),
      /destinations\.cooldown/,
    );
  });
});
