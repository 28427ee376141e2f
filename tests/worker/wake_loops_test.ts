/**
 * Wake-ups, one loop at a time: a notification wakes one sleeping loop, routes
 * enqueued together fan out, and a wake-up the woken loop cannot use is handed on.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLeaks } from "../_helpers/leaks.ts";
import { nextEvent } from "../_helpers/kit.ts";
import { setup } from "./_setup.ts";
import type { WorkerFixture } from "./_setup.ts";
import type { Channel } from "../../channels/channel.ts";
import type { Route } from "../../core/route.ts";
import type { WorkerOptions } from "../../worker.ts";
import type { ClaimParams, Enqueued, RouteTransaction, TransactionOptions } from "../../store.ts";
import type { FakeStore } from "../_helpers/fake_store.ts";

checkLeaks();

function loopSleeps(): {
  sleep: (ms: number, signal: AbortSignal, purpose?: string) => Promise<void>;
  asleep: () => number;
  changed: () => void;
  until: (condition: () => boolean) => Promise<void>;
} {
  let count = 0;
  const waiting = new Set<{ condition: () => boolean; resolve: () => void }>();
  const changed = (): void => {
    for (const w of waiting) {
      if (!w.condition()) continue;
      waiting.delete(w);
      w.resolve();
    }
  };
  return {
    sleep: (_ms, signal, purpose = "poll") =>
      new Promise<void>((resolve) => {
        const poll = purpose === "poll";
        if (poll) count++;
        signal.addEventListener("abort", () => {
          if (poll) count--;
          resolve();
          if (poll) changed();
        }, { once: true });
        if (poll) changed();
      }),
    asleep: () => count,
    changed,
    until: (condition) =>
      new Promise<void>((resolve) => {
        if (condition()) resolve();
        else waiting.add({ condition, resolve });
      }),
  };
}

/**
 * A channel whose sends to a destination whose name (the URL's last segment,
 * up to a colon) starts with `g` wait for `open(name)`; the rest succeed.
 */
function gates(onStart: () => void): {
  channel: Channel;
  started: string[];
  open: (name: string) => void;
  /** Every gate, also those no send reached yet (a failed test's cleanup). */
  openAll: () => void;
} {
  const started: string[] = [];
  const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  const gate = (name: string): { promise: Promise<void>; open: () => void } => {
    let g = gates.get(name);
    if (!g) {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      g = { promise, open };
      gates.set(name, g);
    }
    return g;
  };
  const channel: Channel = {
    send: (route) => {
      started.push(route.destination);
      onStart();
      const name = route.destination.split("/").pop()!.split(":")[0]!;
      return name.startsWith("g") ? gate(name).promise : Promise.resolve();
    },
  };
  return {
    channel,
    started,
    open: (name) => gate(name).open(),
    openAll: () => gates.forEach((g) => g.open()),
  };
}

/**
 * A running worker of `options` whose loops sleep on {@link loopSleeps} and
 * send through {@link gates}, its start-up settled (every loop asleep).
 * `stop()` opens every gate and shuts it down: call it in a `finally`, so a
 * failed assertion does not leave sends hanging.
 */
async function looping(options: Partial<WorkerOptions> = {}): Promise<
  WorkerFixture & {
    loops: ReturnType<typeof loopSleeps>;
    g: ReturnType<typeof gates>;
    stop: () => Promise<void>;
  }
> {
  const loops = loopSleeps();
  const g = gates(loops.changed);
  const fixture = setup({
    sleep: loops.sleep,
    interval: 3_600_000,
    channels: { log: g.channel },
    ...options,
  });
  const stop = new AbortController();
  const running = fixture.worker.run(stop.signal);
  const concurrency = options.concurrency ?? 1;
  await loops.until(() => loops.asleep() === concurrency);
  return {
    ...fixture,
    loops,
    g,
    stop: async () => {
      g.openAll();
      stop.abort();
      await running;
    },
  };
}

/**
 * Replaces the store's claim with `claim` (given the real transaction), the
 * rest of each route transaction left as it is.
 */
function onClaims(
  store: FakeStore,
  claim: (tx: RouteTransaction, params: ClaimParams) => Promise<Route[]>,
): void {
  const transaction = store.transaction.bind(store);
  store.transaction = <T>(
    fn: (tx: RouteTransaction) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T> =>
    transaction((tx) =>
      fn({
        finalise: tx.finalise.bind(tx),
        ...(tx.reportDestinations ? { reportDestinations: tx.reportDestinations.bind(tx) } : {}),
        claimDue: (params) => claim(tx, params),
      }), options);
}

/**
 * Calls `after` with how many routes each claim found, once the claim has
 * returned to the worker.
 */
function afterClaims(store: FakeStore, after: (found: number) => void): void {
  onClaims(store, async (tx, params) => {
    const routes = await tx.claimDue(params);
    queueMicrotask(() => after(routes.length));
    return routes;
  });
}

const statusOf = (store: FakeStore, destination: string): string | undefined =>
  store.allRoutes().find((r) => r.destination === destination)?.status;

const enqueueTo = (store: FakeStore, ...destinations: string[]): Promise<Enqueued> =>
  store.enqueue(
    { kind: "test", payload: {} },
    destinations.map((destination) => ({ channel: "log", destination })),
  );

/** How many route transactions (claims) one enqueued route costs, until every loop sleeps again. */
async function claimsForOneRoute(options: Partial<WorkerOptions>): Promise<number> {
  const { worker, enqueue, store, loops, stop } = await looping(options);
  try {
    const before = store.lockTimeouts.length; // one transaction per claim
    const sent = nextEvent(worker, "sent");
    await enqueue();
    await sent;
    await loops.until(() => loops.asleep() === options.concurrency);
    return store.lockTimeouts.length - before;
  } finally {
    await stop();
  }
}

describe("wake-ups (LISTEN): one loop at a time", () => {
  it("a notification wakes one sleeping loop: a lone route costs one claim that finds nothing, not one per loop", async () => {
    // The woken loop's claim (it finds the route and wakes one more loop),
    // its next claim and the other loop's claim (both find nothing).
    assert.equal(await claimsForOneRoute({ concurrency: 4 }), 3);
  });

  it("a short batch with a rate-limited route claims again in its own loop, waking no other", async () => {
    const limited = { ...gates(() => {}).channel, rateLimit: { perSecond: 1, burst: 5 } };
    // The woken loop's claim (one route, rate-limited: more may be due behind
    // it) and the claim it makes ahead (nothing); no other loop is woken for it.
    const options = { concurrency: 4, routesPerTransaction: 10, channels: { log: limited } };
    assert.equal(await claimsForOneRoute(options), 2);
  });

  it("routes enqueued together fan out: each claim that finds one wakes another loop", async () => {
    const { store, loops, g, stop } = await looping({ concurrency: 3 });
    try {
      await enqueueTo(store, "g:a", "g:b", "g:c"); // one notification
      // Every loop is sending or asleep again (a loop wakes the next before it sends).
      await loops.until(() => g.started.length + loops.asleep() === 3);
      assert.equal(g.started.length, 3, "three sends in flight at once, one per loop");
      g.open("g");
      await loops.until(() => loops.asleep() === 3);
      assert.deepEqual(store.allRoutes().map((r) => r.status), ["sent", "sent", "sent"]);
    } finally {
      await stop();
    }
  });

  it("a notification that comes after a tick's last claim, before its loop sleeps, makes it tick again", async () => {
    // Start-up (its first tick, and the listener's catch-up) is over once `looping` returns.
    const { enqueue, store, loops, stop } = await looping();
    try {
      // Enqueues one route the first time a claim finds nothing from now
      // on: its notification comes while the only loop is still ticking.
      let late: Promise<unknown> | undefined;
      afterClaims(store, (found) => {
        if (found === 0) late ??= enqueue();
      });
      await enqueue(); // wakes the loop: it sends this route, then claims nothing
      await loops.until(() => late !== undefined && loops.asleep() === 1);
      await late;
      assert.deepEqual(store.allRoutes().map((r) => r.status), ["sent", "sent"]);
    } finally {
      await stop();
    }
  });
});

describe("wake-ups (LISTEN): a wake-up the woken loop cannot use", () => {
  it("its tick fails: the wake-up is handed on to another sleeping loop, once", async () => {
    const { enqueue, store, loops, stop } = await looping({ concurrency: 3 });
    try {
      let failing = 0; // the next claims that fail (a reset connection, a database down)
      let claims = 0;
      onClaims(store, (tx, params) => {
        claims++;
        if (failing === 0) return tx.claimDue(params);
        failing--;
        return Promise.reject(new Error("connection reset"));
      });
      failing = 1;
      await enqueue();
      await loops.until(() => loops.asleep() === 3);
      assert.equal(store.allRoutes()[0]!.status, "sent", "sent by the loop it was handed on to");
      // Down: the loop it is handed on to fails too, and hands it on no further.
      const before = claims;
      failing = 2;
      await enqueue();
      await loops.until(() => loops.asleep() === 3);
      assert.equal(claims - before, 2, "the woken loop's claim and the hand-off's, no third");
      assert.equal(store.allRoutes()[1]!.status, "queued", "left to the poll");
    } finally {
      await stop();
    }
  });

  it("a destination's slot is held by a busy loop: that loop ticks again when done", async () => {
    // An origin's in-flight cap: 1 (half of the concurrency).
    const { store, loops, g, stop } = await looping({ concurrency: 2, routesPerTransaction: 10 });
    try {
      await enqueueTo(store, "https://x.example/g1");
      await loops.until(() => g.started.length === 1 && loops.asleep() === 1);
      // Wakes the sleeping loop, whose claim skips it: the origin's slot is taken.
      await enqueueTo(store, "https://x.example/x2");
      await loops.until(() => loops.asleep() === 1);
      g.open("g1");
      await loops.until(() => loops.asleep() === 2);
      assert.equal(statusOf(store, "https://x.example/x2"), "sent");
    } finally {
      await stop();
    }
  });

  it("no loop sleeps when routes turn up: the loop ending its tick takes what is left", async () => {
    const { store, loops, g, stop } = await looping({ concurrency: 2, routesPerTransaction: 2 });
    try {
      let claims = 0;
      afterClaims(store, () => {
        claims++;
        loops.changed();
      });
      // One loop sends these two (held); its claim ahead and the other loop's claim find nothing.
      await enqueueTo(store, "g1:a", "g1:b");
      await loops.until(() => g.started.length === 2 && loops.asleep() === 1);
      const before = claims;
      // The sleeping loop claims two, then two ahead (both held); two more are left.
      await enqueueTo(store, "g2:a", "g2:b", "g2:c", "g2:d", "free:a", "free:b");
      await loops.until(() => claims === before + 2 && g.started.length === 4);
      g.open("g1"); // the first loop's tick ends (its claim ahead found nothing)
      await loops.until(() => statusOf(store, "free:b") === "sent" || loops.asleep() === 1);
      assert.deepEqual(["free:a", "free:b"].map((d) => statusOf(store, d)), ["sent", "sent"]);
      g.open("g2");
      await loops.until(() => loops.asleep() === 2);
    } finally {
      await stop();
    }
  });

  it("the woken loop is paused; the busy loop that lifts the pause ticks again", async () => {
    const { store, loops, g, stop } = await looping({ concurrency: 2, routesPerTransaction: 10 });
    try {
      const { routeIds: [refused] } = await enqueueTo(store, "gp");
      store.refuse(refused!, "row");
      await loops.until(() => g.started.length === 1 && loops.asleep() === 1);
      await enqueueTo(store, "gq"); // the other loop
      await loops.until(() => g.started.length === 2 && loops.asleep() === 0);
      g.open("gp"); // its outcome refused everywhere: claiming pauses, and that loop sleeps it out
      await loops.until(() => loops.asleep() === 1);
      await enqueueTo(store, "r"); // wakes the paused loop: its tick stops at once
      await loops.until(() => loops.asleep() === 1);
      g.open("gq"); // the other loop records, which lifts the pause
      await loops.until(() => loops.asleep() === 2);
      assert.equal(statusOf(store, "r"), "sent");
    } finally {
      await stop();
    }
  });
});
