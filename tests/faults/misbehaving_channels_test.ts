/**
 * Fault: misbehaving channels, on the real PostgresStore (tests/worker_test.ts
 * covers the same on FakeStore). A channel that throws synchronously, throws
 * a non-Error, rejects with `undefined`, returns a non-promise, returns a
 * thenable that never settles, or resolves (or rejects) after its signal
 * aborted must never crash the worker or corrupt a route: each route ends
 * with exactly one attempt row whose outcome matches what happened, and a
 * well-behaved route in the same tick is still sent.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Worker } from "../../worker.ts";
import type { Channel } from "../../channels/channel.ts";
import { freshStore } from "../_helpers/pg.ts";
import { recordingLogger } from "../_helpers/kit.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const SEND_TIMEOUT_MS = 100;

/** Settlements of the channels that answer after their signal aborted. */
const late: Promise<unknown>[] = [];

/** Resolves one macrotask after `signal` aborts; the test awaits every such settlement. */
function afterAbort(signal: AbortSignal): Promise<void> {
  const settled = new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => setTimeout(resolve, 0), { once: true })
  );
  late.push(settled.then(() => new Promise((r) => setTimeout(r, 0))));
  return settled;
}

const CHANNELS: Record<string, Channel> = {
  sync_throw: {
    send() {
      throw new Error("sync boom");
    },
  },
  non_error: {
    send() {
      throw { weird: true };
    },
  },
  reject_undefined: { send: () => Promise.reject(undefined) },
  non_promise: { send: () => 42 as unknown as Promise<void> },
  never_settles: { send: () => ({ then() {} }) as unknown as Promise<void> },
  resolve_after_abort: {
    send: async (_route, { signal }) => {
      await afterAbort(signal);
      return { httpStatus: 200 };
    },
  },
  reject_after_abort: {
    send: async (_route, { signal }) => {
      await afterAbort(signal);
      throw new Error("late failure");
    },
  },
  ok: { send: () => Promise.resolve() },
};

/** Channel -> [status, attempt outcome, last_error pattern]. */
const EXPECTED: Record<string, [string, string, RegExp | null]> = {
  sync_throw: ["queued", "retry", /sync boom/],
  non_error: ["queued", "retry", /non-error thrown/],
  reject_undefined: ["queued", "retry", /non-error thrown: undefined/],
  non_promise: ["sent", "sent", null],
  never_settles: ["queued", "retry", /timed out after 100 ms/],
  resolve_after_abort: ["queued", "retry", /timed out after 100 ms/],
  reject_after_abort: ["queued", "retry", /timed out after 100 ms/],
  ok: ["sent", "sent", null],
};

describe("fault: misbehaving channels on PostgresStore", () => {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    process.on("unhandledRejection", onUnhandled);
  });
  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    await env?.cleanup();
  });

  it("no misbehaviour crashes the worker or corrupts a route", { timeout: 60_000 }, async () => {
    const { store } = env!;
    const { logger, lines } = recordingLogger();
    const worker = new Worker({
      store,
      channels: CHANNELS,
      sendTimeoutMs: SEND_TIMEOUT_MS,
      logger,
      // An hour: the retries cannot come due while the test runs, however slow the machine.
      retry: { baseMs: 3_600_000, maxMs: 3_600_000, minMs: 3_600_000 },
    });
    const names = Object.keys(CHANNELS);
    const { routeIds } = await store.enqueue(
      { kind: "fault.channel" },
      names.map((channel) => ({ channel, destination: channel })),
    );
    assert.equal(await worker.tick(), names.length, "every route handled in one tick");
    // Late settlements (after the abort) happen now; they must change nothing.
    assert.equal(late.length, 2);
    await Promise.all(late);

    for (const [i, name] of names.entries()) {
      const id = routeIds[i]!;
      const [status, outcome, error] = EXPECTED[name]!;
      const route = await store.getRoute(id);
      assert.equal(route?.status, status, name);
      assert.equal(route?.attempts, 1, name);
      const log = await store.attempts(id);
      assert.deepEqual(log.map((a) => a.outcome), [outcome], name);
      if (error) assert.match(route?.lastError ?? "", error, name);
      else assert.equal(route?.lastError, null, name);
    }
    assert.deepEqual(unhandled, [], "no unhandled rejection");
    assert.equal(lines.filter((l) => l.level === "error").length, 0);

    // The worker is still usable: the retries are due later, so nothing is due now...
    assert.equal(await worker.tick(), 0);
    // ...and a fresh route still goes out.
    const { routeIds: [fresh] } = await store.enqueue({ kind: "k" }, [{
      channel: "ok",
      destination: "x",
    }]);
    assert.equal(await worker.tick(), 1);
    assert.equal((await store.getRoute(fresh!))?.status, "sent");
  });
});
