/**
 * Batch mode's overlap: a loop claims its next batch while the current one
 * sends, and sends it the moment the current batch's sends are over; one
 * batch sending and two transactions at most, the next claim skips the batch
 * before it even once that batch has committed its routes as due, and a batch
 * claimed ahead sends nothing after shutdown begins.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RouteTransaction, Store } from "../../store.ts";
import type { FakeStore } from "../_helpers/fake_store.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";

checkLeaks();

/** Hooks around the nth transaction (1-based) a store opens. */
interface Hooks {
  beforeClaim?(n: number): Promise<void>;
  beforeFinalise?(n: number): Promise<void>;
  afterCommit?(n: number): Promise<void>;
}

/** `inner` with its transactions numbered, logged and held at the hooks. */
function hooked(inner: FakeStore, log: string[], hooks: Hooks): Store {
  let opened = 0;
  const transaction = async <T>(
    fn: (tx: RouteTransaction) => Promise<T>,
    options?: { lockTimeoutMs?: number },
  ): Promise<T> => {
    const n = ++opened;
    const result = await inner.transaction((tx) =>
      fn(around(tx, {
        claimDue: async (params) => {
          await hooks.beforeClaim?.(n);
          const routes = await tx.claimDue(params);
          log.push(`claim ${n}: ${routes.length}`);
          return routes;
        },
        finalise: async (records, fallbacks) => {
          await hooks.beforeFinalise?.(n);
          return await tx.finalise(records, fallbacks);
        },
      })), options);
    log.push(`commit ${n}`);
    await hooks.afterCommit?.(n);
    return result;
  };
  return around(inner, { transaction } as Partial<Store>);
}

/** `target` with `overrides` in place of its methods (the rest bound to it). */
function around<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(t, key) {
      if (key in overrides) return overrides[key as keyof T];
      const value = Reflect.get(t, key, t);
      return typeof value === "function" ? value.bind(t) : value;
    },
  });
}

/** Settles once `event` happens, or on the event loop's next turn (so a missing one fails, never hangs). */
function whenOrNextTurn(event: Promise<void>): Promise<void> {
  return Promise.race([event, new Promise<void>((resolve) => setTimeout(resolve, 0))]);
}

function signal(): { promise: Promise<void>; fire(): void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

describe("batch mode claims its next batch while the current one sends", () => {
  it("sends batch 2 the moment batch 1's sends end: one batch sending, two transactions at most", async () => {
    // K = 2: batch 2 may start when one send of batch 1 is left (a tenth, at least one).
    const log: string[] = [];
    const claimed2 = signal();
    let sending = 0;
    let peakSending = 0;
    let peakOpen = 0;
    const fixture = setup();
    const store = hooked(fixture.store, log, {});
    const channel = scriptedChannel(async (route) => {
      sending++;
      peakSending = Math.max(peakSending, sending);
      peakOpen = Math.max(peakOpen, fixture.store.openTransactions);
      log.push(`send ${route.destination}`);
      // Batch 1's sends last until batch 2 is claimed (or the event loop turned).
      if (route.destination === "d0" || route.destination === "d1") {
        await whenOrNextTurn(claimed2.promise);
      }
      sending--;
    });
    const { worker } = setup({ store, channels: { log: channel }, routesPerTransaction: 2 });
    worker.addEventListener("claimed", (e) => {
      if ((e as CustomEvent<{ destination: string }>).detail.destination === "d3") claimed2.fire();
    });
    const { routeIds } = await fixture.store.enqueue(
      { kind: "k" },
      Array.from({ length: 6 }, (_, i) => ({ channel: "log", destination: `d${i}` })),
    );
    assert.equal(await worker.tick(), 6);
    const at = (entry: string): number => log.indexOf(entry);
    assert.ok(at("claim 2: 2") < at("commit 1"), `claimed ahead: ${log.join(", ")}`);
    assert.ok(at("claim 2: 2") < at("send d2"), log.join(", "));
    assert.ok(peakSending <= 3, `K plus one straggler at most: ${peakSending}`);
    assert.equal(peakOpen, 2, "two transactions at most, and two while one sends");
    assert.equal(fixture.store.openTransactions, 0);
    const routes = await Promise.all(routeIds.map((id) => fixture.store.getRoute(id)));
    assert.deepEqual(routes.map((r) => [r?.status, r?.attempts]), Array(6).fill(["sent", 1]));
    assert.deepEqual(
      fixture.store.lockTimeouts,
      Array(fixture.store.lockTimeouts.length).fill(2 * 30_000 + 5_000),
      "a batch claimed ahead may wait one send timeout before its own",
    );
  });

  it("one hung send in a batch does not hold the batch claimed ahead: it sends while the hung one runs", async () => {
    const sent4 = signal();
    const order: string[] = [];
    const fixture = setup();
    const channel = scriptedChannel(async (route) => {
      order.push(`start ${route.destination}`);
      if (route.destination === "d4") sent4.fire();
      // d0 hangs until batch 2 is sending (or the event loop turned).
      if (route.destination === "d0") await whenOrNextTurn(sent4.promise);
      order.push(`end ${route.destination}`);
    });
    const { worker } = setup({
      store: hooked(fixture.store, [], {}),
      channels: { log: channel },
      routesPerTransaction: 4,
    });
    const { routeIds } = await fixture.store.enqueue(
      { kind: "k" },
      Array.from({ length: 8 }, (_, i) => ({ channel: "log", destination: `d${i}` })),
    );
    assert.equal(await worker.tick(), 8);
    assert.ok(order.indexOf("start d4") < order.indexOf("end d0"), order.join(", "));
    const routes = await Promise.all(routeIds.map((id) => fixture.store.getRoute(id)));
    assert.deepEqual(routes.map((r) => [r?.status, r?.attempts]), Array(8).fill(["sent", 1]));
  });

  it("a retry the batch before commits as due at once is not claimed again in the same tick", async () => {
    const log: string[] = [];
    const committed2 = signal();
    const claimed3 = signal();
    const fixture = setup();
    const store = hooked(fixture.store, log, {
      // Batch 3 claims after batch 2 committed, before the tick learns of it.
      beforeClaim: (n) => (n === 3 ? committed2.promise : Promise.resolve()),
      afterCommit: (n) => {
        if (n !== 2) return Promise.resolve();
        committed2.fire();
        return whenOrNextTurn(claimed3.promise);
      },
    });
    const failing = scriptedChannel(() => Promise.reject(new Error("HTTP 503")));
    const { worker } = setup({
      store,
      channels: { log: failing },
      routesPerTransaction: 4,
      retry: { baseMs: 0, maxMs: 0 },
      // Twelve failures in a row: the channel's destination must stay closed.
      destinations: { failureThreshold: 100 },
    });
    let claims = 0;
    worker.addEventListener("claimed", () => {
      if (++claims === 12) claimed3.fire();
    });
    const { routeIds } = await fixture.store.enqueue(
      { kind: "k" },
      Array.from({ length: 12 }, (_, i) => ({ channel: "log", destination: `d${i}` })),
    );
    assert.equal(await worker.tick(), 12);
    assert.ok(log.indexOf("commit 2") < log.indexOf("claim 3: 4"), log.join(", "));
    const routes = await Promise.all(routeIds.map((id) => fixture.store.getRoute(id)));
    assert.deepEqual(routes.map((r) => [r?.status, r?.attempts]), Array(12).fill(["queued", 1]));
  });

  it("a batch claimed ahead sends nothing once shutdown has begun: its routes stay as they were", async () => {
    const log: string[] = [];
    const claimed2 = signal();
    const release = signal();
    const fixture = setup();
    const channel = scriptedChannel(() => release.promise);
    const { worker } = setup({
      store: hooked(fixture.store, log, {}),
      channels: { log: channel },
      routesPerTransaction: 2,
    });
    worker.addEventListener("claimed", (e) => {
      if ((e as CustomEvent<{ destination: string }>).detail.destination === "d3") claimed2.fire();
    });
    const { routeIds } = await fixture.store.enqueue(
      { kind: "k" },
      Array.from({ length: 4 }, (_, i) => ({ channel: "log", destination: `d${i}` })),
    );
    const ticking = worker.tick();
    await claimed2.promise;
    const down = worker.shutdown();
    release.fire();
    assert.equal(await ticking, 2);
    await down;
    assert.deepEqual(channel.calls.map((r) => r.destination), ["d0", "d1"]);
    const routes = await Promise.all(routeIds.map((id) => fixture.store.getRoute(id)));
    assert.deepEqual(routes.map((r) => [r?.status, r?.attempts]), [
      ["sent", 1],
      ["sent", 1],
      ["queued", 0],
      ["queued", 0],
    ]);
  });

  it("does not claim ahead in per-route mode, nor after a batch that came back short", async () => {
    const log: string[] = [];
    const fixture = setup();
    const store = hooked(fixture.store, log, {});
    const { worker } = setup({ store, routesPerTransaction: 4 });
    await fixture.store.enqueue(
      { kind: "k" },
      Array.from({ length: 6 }, (_, i) => ({ channel: "log", destination: `d${i}` })),
    );
    assert.equal(await worker.tick(), 6);
    // Batch 2 (two routes, short) ends the tick: no third claim.
    assert.deepEqual(log.filter((l) => l.startsWith("claim")), ["claim 1: 4", "claim 2: 2"]);
    log.length = 0;
    const perRoute = setup({ store: hooked(fixture.store, log, {}) });
    await fixture.store.enqueue({ kind: "k" }, [{ channel: "log", destination: "x" }]);
    await fixture.store.enqueue({ kind: "k" }, [{ channel: "log", destination: "y" }]);
    assert.equal(await perRoute.worker.tick(), 2);
    assert.deepEqual(log, [
      "claim 1: 1",
      "commit 1",
      "claim 2: 1",
      "commit 2",
      "claim 3: 0",
      "commit 3",
    ]);
  });
});
