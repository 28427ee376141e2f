/**
 * The contract, listen area: a store with `listen` calls `onConnect` once
 * the subscription is made, `onNotify` when a committed enqueue makes a route
 * due (never for one scheduled later), and nothing after `close()`. Every
 * wait is on an event (the handler called, the subscription's own probe
 * heard), never on the clock. A store without `listen` skips the area.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import type { Store, Subscription } from "../../../store.ts";
import { type ContractArea, type ContractRun, HOUR } from "./fixtures.ts";

/** How long a probe may take before `alive()` answers false: a bound, never waited out. */
const PROBE_BOUND_MS = 30_000;

/** A subscription that counts its calls and can wait for the next one. */
interface Listening {
  readonly sub: Subscription;
  readonly notified: () => number;
  readonly connected: () => number;
  /** Resolves when `onNotify` has been called `n` times in all. */
  notifies(n: number): Promise<void>;
}

/** Subscribes and waits for `onConnect`. */
async function subscribe(listen: NonNullable<Store["listen"]>): Promise<Listening> {
  const calls = { notify: 0, connect: 0 };
  const waiters: { n: number; resolve(): void }[] = [];
  let connected!: () => void;
  const onConnect = new Promise<void>((resolve) => (connected = resolve));
  const sub = await listen({
    onNotify() {
      calls.notify++;
      for (const w of waiters.filter((w) => calls.notify >= w.n)) w.resolve();
    },
    onConnect() {
      calls.connect++;
      connected();
    },
  });
  await onConnect;
  return {
    sub,
    notified: () => calls.notify,
    connected: () => calls.connect,
    notifies: (n) =>
      calls.notify >= n
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ n, resolve })),
  };
}

/** The store's `listen`, bound; or `undefined` after skipping `t`. */
function listenOf({ store }: ContractRun, t: TestContext): Store["listen"] {
  if (store.listen === undefined) {
    t.skip("this store has no listen(): workers only poll it");
    return undefined;
  }
  return store.listen.bind(store);
}

const due = [{ channel: "log", destination: "x" }];

/** Wake-ups: what a subscription hears, and when it stops. */
export const LISTEN: ContractArea = {
  name: "listen",
  cases: [
    {
      name: "onConnect is called once the subscription is made",
      run: async (c, t) => {
        const listen = listenOf(c, t);
        if (!listen) return;
        const l = await subscribe(listen);
        try {
          assert.equal(l.connected(), 1);
          assert.equal(l.notified(), 0, "nothing was enqueued");
        } finally {
          await l.sub.close();
        }
      },
    },
    {
      name: "a committed enqueue of a due route calls onNotify",
      run: async (c, t) => {
        const listen = listenOf(c, t);
        if (!listen) return;
        const l = await subscribe(listen);
        try {
          await c.store.enqueue({ kind: "wake" }, due);
          await l.notifies(1);
        } finally {
          await l.sub.close();
        }
      },
    },
    {
      name: "an enqueue scheduled an hour ahead does not notify",
      run: async (c, t) => {
        const listen = listenOf(c, t);
        if (!listen) return;
        const l = await subscribe(listen);
        try {
          if (!l.sub.alive) return t.skip("no alive(): nothing shows a notification will not come");
          const deliverAt = new Date(Date.now() + HOUR);
          await c.store.enqueue({ kind: "later" }, [{ ...due[0]!, deliverAt }]);
          // The probe travels the same channel after the enqueue committed, so once it
          // is heard, any notification of that enqueue has been delivered before it.
          assert.equal(await l.sub.alive(PROBE_BOUND_MS), true, "the probe was heard");
          assert.equal(l.notified(), 0, "a route due in an hour wakes no one");
          await c.store.enqueue({ kind: "now" }, due);
          await l.notifies(1);
        } finally {
          await l.sub.close();
        }
      },
    },
    {
      name: "close() stops notifications",
      run: async (c, t) => {
        const listen = listenOf(c, t);
        if (!listen) return;
        const closed = await subscribe(listen);
        await closed.sub.close();
        // A second subscription hears the enqueue; the closed one, had it still been
        // listening, would have been told no later than that.
        const open = await subscribe(listen);
        try {
          await c.store.enqueue({ kind: "after-close" }, due);
          await open.notifies(1);
          assert.equal(closed.notified(), 0, "the closed subscription was not called");
        } finally {
          await open.sub.close();
        }
      },
    },
  ],
};
