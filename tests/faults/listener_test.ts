/**
 * Fault: the database goes away under a worker that relies on wake-ups (a
 * poll interval of an hour), on a private cluster this test stops and starts.
 * While it is down the worker's listener fails to subscribe again; once it
 * is back, the listener must be back within seconds (100 ms doubling to 2 s,
 * whatever the interval), so a route enqueued then is sent without waiting
 * for a poll. Every wait here ends on an event; the test's timeout only
 * guards against a hang.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostgresStore } from "../../store.ts";
import { Worker } from "../../worker.ts";
import type { Logger } from "../../observe/logger.ts";
import { type Cluster, startCluster } from "./_cluster.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { sleep } from "../../core/_async.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const HOUR = 3_600_000;
const SCHEMA = "herald_listener";

/** A logger that lets a test wait for a line. */
function waitingLogger(): { logger: Logger; next(match: RegExp): Promise<void> } {
  const waiters: { match: RegExp; resolve(): void }[] = [];
  return {
    logger: {
      log(_level, msg) {
        for (const w of [...waiters]) {
          if (!w.match.test(msg)) continue;
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      },
    },
    next: (match) => new Promise((resolve) => waiters.push({ match, resolve })),
  };
}

describe("fault: the listener comes back on its own, whatever the poll interval", () => {
  let cluster: Cluster | undefined;
  let store: PostgresStore | undefined;

  before(async () => {
    cluster = await startCluster();
    store = new PostgresStore({ url: cluster.url, schema: SCHEMA, max: 3 });
    await store.migrate();
  });
  after(async () => {
    await store?.close();
    await cluster?.destroy();
  });

  it("a worker polling hourly hears a route enqueued after the database came back", {
    timeout: 120_000,
  }, async () => {
    const channel = scriptedChannel(() => Promise.resolve());
    const { logger, next } = waitingLogger();
    // Polls are timed by a sleep that says when the loop rests, so the server
    // is stopped while no route transaction is open: this test is about the
    // listener (claims cut by a shutdown are pg_restart_test.ts's subject).
    let resting = false;
    const rested: (() => void)[] = [];
    const worker = new Worker({
      store: store!,
      channels: { log: channel },
      interval: HOUR,
      logger,
      sleep: async (ms, signal, purpose) => {
        if (purpose !== "poll") return await sleep(ms, signal);
        resting = true;
        for (const r of rested.splice(0)) r();
        try {
          await sleep(ms, signal);
        } finally {
          resting = false;
        }
      },
    });
    const atRest = (): Promise<void> =>
      resting ? Promise.resolve() : new Promise((resolve) => rested.push(resolve));
    const stop = new AbortController();
    const started = next(/^worker started$/);
    const running = worker.run(stop.signal);
    try {
      await started;
      // A route enqueued now proves the listener works before the outage.
      const sent = new Promise<string>((resolve) =>
        worker.addEventListener("sent", (e) => resolve((e as CustomEvent).detail.routeId))
      );
      const first = (await store!.enqueue({ kind: "k" }, [{ channel: "log", destination: "a" }]))
        .routeIds[0];
      assert.equal(await sent, first);

      const refused = next(/could not listen for new routes/);
      await atRest();
      await cluster!.stop();
      await refused; // the probe noticed, and subscribing again fails while it is down
      const relistened = next(/^listening for new routes$/);
      await cluster!.start();
      await relistened;

      const again = new Promise<string>((resolve) =>
        worker.addEventListener("sent", (e) => resolve((e as CustomEvent).detail.routeId))
      );
      const second = (await store!.enqueue({ kind: "k" }, [{ channel: "log", destination: "b" }]))
        .routeIds[0];
      assert.equal(await again, second, "woken by NOTIFY, not by an hourly poll");
    } finally {
      stop.abort();
      await running;
    }
  });
});
