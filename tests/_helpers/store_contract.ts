/**
 * The store conformance suite: every `Store` implementation must pass it.
 * It runs on `FakeStore` (tests/fake_store_test.ts) and `PostgresStore`
 * (tests/postgres_store_test.ts), so the fake cannot drift from the real thing.
 */
import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { Store } from "../../store.ts";
import { SCHEMA_VERSION } from "../../store.ts";
import type { Finalisation, Outcome } from "../../core/route.ts";

/** How the suite gets a fresh, empty store (and throws it away). */
export interface ContractTarget {
  readonly name: string;
  /**
   * False for a store with a single session (embedded PGlite): the tests that
   * hold two transactions open at once would wait on each other for ever.
   */
  readonly concurrentTransactions?: boolean;
  open(): Promise<OpenedStore>;
}

/** A fresh store, and what the suite needs to see its clock. */
export interface OpenedStore {
  readonly store: Store;
  cleanup(): Promise<void>;
  /**
   * The store's clock now, in milliseconds (fractions kept). Absent where it
   * cannot be read beside an open transaction (a single-session database):
   * the clock tests are skipped there.
   */
  clock?(): Promise<number>;
  /** Lets at least `ms` pass on the store's clock (waits on the clock, or moves a fake one). */
  elapse?(ms: number): Promise<void>;
}

const HOUR = 3_600_000;

/** A finalisation record for `routeId`. */
export function rec(routeId: string, outcome: Outcome): Finalisation {
  return { routeId, outcome, durationMs: 1 };
}

/** Registers the suite for `target`. */
export function storeContract(target: ContractTarget): void {
  describe(`Store contract: ${target.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let opened: OpenedStore;

    beforeEach(async () => {
      opened = await target.open();
      ({ store, cleanup } = opened);
      assert.equal(await store.migrate(), SCHEMA_VERSION);
    });
    afterEach(async () => {
      await cleanup();
    });

    const claimAll = (exclude: string[] = []) =>
      store.transaction((tx) => tx.claimDue({ limit: 10_000, exclude }));

    it("migrate is idempotent and reports the schema version", async () => {
      assert.equal(await store.migrate(), SCHEMA_VERSION);
      assert.equal(await store.migrate(), SCHEMA_VERSION);
    });

    it("enqueue writes one queued route per destination", async () => {
      const res = await store.enqueue({ kind: "order.shipped", payload: { order: 42 } }, [
        { channel: "webhook", destination: "https://example.com/a" },
        { channel: "log", destination: "ops" },
      ]);
      assert.equal(res.routeIds.length, 2);
      assert.equal(res.duplicate, false);
      const route = await store.getRoute(res.routeIds[0]!);
      assert.ok(route);
      assert.equal(route.status, "queued");
      assert.equal(route.attempts, 0);
      assert.equal(route.channel, "webhook");
      assert.equal(route.notificationId, res.notificationId);
      assert.equal(route.maxAttempts, null);
      assert.equal(route.sentAt, null);
    });

    it("claimDue returns due routes with kind and payload, lowest priority first", async () => {
      const low = await store.enqueue({ kind: "a", payload: { n: 1 } }, [
        { channel: "log", destination: "x", priority: 5 },
      ]);
      const high = await store.enqueue({ kind: "b", payload: { n: [1, "two", null] } }, [
        { channel: "log", destination: "y", priority: -1 },
      ]);
      const claimed = await claimAll();
      assert.deepEqual(claimed.map((r) => r.id), [high.routeIds[0], low.routeIds[0]]);
      const first = claimed[0]!;
      assert.equal(first.kind, "b");
      assert.deepEqual(first.payload, { n: [1, "two", null] });
      assert.equal(first.attempts, 0);
      assert.equal(first.priority, -1);
      assert.ok(first.createdAt instanceof Date);
    });

    it("a route scheduled for later is not due; one scheduled in the past is", async () => {
      await store.enqueue({ kind: "later" }, [
        { channel: "log", destination: "x", deliverAt: new Date(Date.now() + HOUR) },
      ]);
      const past = await store.enqueue({ kind: "past" }, [
        { channel: "log", destination: "x", deliverAt: new Date(Date.now() - HOUR) },
      ]);
      assert.deepEqual((await claimAll()).map((r) => r.id), past.routeIds);
    });

    it("claimDue skips excluded ids and honours the limit", async () => {
      const { routeIds } = await store.enqueue({ kind: "k" }, [
        { channel: "log", destination: "1" },
        { channel: "log", destination: "2" },
        { channel: "log", destination: "3" },
      ]);
      const got = await store.transaction((tx) =>
        tx.claimDue({ limit: 1, exclude: [routeIds[0]!] })
      );
      assert.equal(got.length, 1);
      assert.notEqual(got[0]!.id, routeIds[0]);
      const rest = await claimAll([routeIds[0]!, routeIds[1]!]);
      assert.deepEqual(rest.map((r) => r.id), [routeIds[2]]);
    });

    const twoSessions = target.concurrentTransactions === false
      ? { skip: "needs two concurrent sessions" }
      : {};

    it("a route locked by an open transaction is skipped by another", twoSessions, async () => {
      const { routeIds } = await store.enqueue({ kind: "k" }, [
        { channel: "log", destination: "1" },
        { channel: "log", destination: "2" },
      ]);
      await store.transaction(async (tx1) => {
        const [mine] = await tx1.claimDue({ limit: 1, exclude: [] });
        assert.equal(mine?.id, routeIds[0]);
        const other = await store.transaction((tx2) => tx2.claimDue({ limit: 10, exclude: [] }));
        assert.deepEqual(other.map((r) => r.id), [routeIds[1]]);
      });
    });

    it("two open transactions never claim the same route", twoSessions, async () => {
      await store.enqueue(
        { kind: "k" },
        Array.from({ length: 6 }, (_, i) => ({ channel: "log", destination: String(i) })),
      );
      const ids: string[] = [];
      await store.transaction(async (tx1) => {
        ids.push(...(await tx1.claimDue({ limit: 4, exclude: [] })).map((r) => r.id));
        await store.transaction(async (tx2) => {
          ids.push(...(await tx2.claimDue({ limit: 4, exclude: [] })).map((r) => r.id));
        });
      });
      assert.equal(ids.length, 6);
      assert.equal(new Set(ids).size, 6);
    });

    it("finalise records sent, retry and failed", async () => {
      const { routeIds } = await store.enqueue({ kind: "k" }, [
        { channel: "log", destination: "1" },
        { channel: "log", destination: "2" },
        { channel: "log", destination: "3" },
        { channel: "log", destination: "4" },
      ]);
      const [a, b, c, d] = routeIds as [string, string, string, string];
      await store.transaction(async (tx) => {
        await tx.claimDue({ limit: 4, exclude: [] });
        await tx.finalise([rec(a, { status: "sent", attempts: 1 })]);
        await tx.finalise([
          rec(b, { status: "retry", attempts: 1, delayMs: 0, error: "HTTP 503" }),
        ]);
        await tx.finalise([
          rec(c, { status: "retry", attempts: 2, delayMs: HOUR, error: "HTTP 429" }),
        ]);
        await tx.finalise([rec(d, { status: "failed", attempts: 1, error: "HTTP 404" })]);
      });
      const [ra, rb, rc, rd] = await Promise.all(routeIds.map((id) => store.getRoute(id)));
      assert.equal(ra?.status, "sent");
      assert.ok(ra?.sentAt instanceof Date);
      assert.equal(ra?.lastError, null);
      assert.equal(rb?.status, "queued");
      assert.equal(rb?.attempts, 1);
      assert.equal(rb?.lastError, "HTTP 503");
      assert.equal(rc?.status, "queued");
      assert.equal(rc?.attempts, 2);
      assert.ok(rc!.nextAttemptAt.getTime() > Date.now() + HOUR / 2);
      assert.equal(rd?.status, "failed");
      assert.equal(rd?.lastError, "HTTP 404");
      // Only the zero-delay retry is due again.
      assert.deepEqual((await claimAll()).map((r) => r.id), [b]);
    });

    it("times written at an outcome are the store's clock at the outcome, not at the claim", async (t) => {
      const { clock, elapse } = opened;
      if (!clock || !elapse) {
        return t.skip("this store's clock cannot be read beside a transaction");
      }
      const { routeIds: [id] } = await store.enqueue({ kind: "k" }, [{
        channel: "log",
        destination: "slow",
      }]);
      let before = 0;
      await store.transaction(async (tx) => {
        await tx.claimDue({ limit: 1, exclude: [] });
        // A send slower than its backoff: the retry must still lie ahead of the outcome.
        await elapse(20);
        before = await clock();
        await tx.finalise([rec(id!, { status: "retry", attempts: 1, delayMs: 10, error: "slow" })]);
      });
      const route = await store.getRoute(id!);
      // Dates carry whole milliseconds; the store's clock may carry microseconds.
      assert.ok(
        route!.nextAttemptAt.getTime() > before + 10 - 1,
        `next attempt ${route!.nextAttemptAt.toISOString()} is not 10 ms after the outcome ` +
          `(${new Date(before).toISOString()}): the delay was counted from the claim`,
      );
      assert.ok(route!.updatedAt.getTime() > before - 1, "updated_at is the outcome's time");
    });

    it("finalise appends to the attempt log, in the same transaction", async () => {
      const { routeIds } = await store.enqueue({ kind: "k" }, [{
        channel: "log",
        destination: "1",
      }]);
      const id = routeIds[0]!;
      await store.transaction(async (tx) => {
        await tx.claimDue({ limit: 1, exclude: [] });
        await tx.finalise([{
          routeId: id,
          outcome: { status: "retry", attempts: 1, delayMs: 0, error: "HTTP 503" },
          durationMs: 12.5,
          httpStatus: 503,
        }]);
      });
      const outcomeAt = (await store.getRoute(id))!.updatedAt.getTime();
      await assert.rejects(store.transaction(async (tx) => {
        await tx.claimDue({ limit: 1, exclude: [] });
        await tx.finalise([rec(id, { status: "sent", attempts: 2 })]);
        throw new Error("rolled back");
      }));
      await store.transaction(async (tx) => {
        await tx.claimDue({ limit: 1, exclude: [] });
        await tx.finalise([rec(id, { status: "sent", attempts: 2 })]);
      });
      const log = await store.attempts(id);
      assert.equal(log.length, 2, "the rolled-back attempt left no row");
      const { startedAt, ...rest } = log[0]!;
      assert.deepEqual(rest, {
        attempt: 1,
        durationMs: 12.5,
        outcome: "retry",
        httpStatus: 503,
        error: "HTTP 503",
      });
      // The start is the outcome's time less the duration, on the store's clock.
      assert.ok(
        Math.abs(outcomeAt - startedAt.getTime() - 12.5) <= 1,
        `${startedAt.toISOString()}`,
      );
      assert.equal(log[1]?.outcome, "sent");
      assert.equal(log[1]?.error, null);
      assert.deepEqual(await store.attempts(crypto.randomUUID()), []);
    });

    it("claimDue with channels claims only routes of those channels", async () => {
      const { routeIds: [sms, email, chat] } = await store.enqueue({ kind: "k" }, [
        { channel: "sms", destination: "+15005550006" },
        { channel: "email", destination: "a@example.com" },
        { channel: "chat", destination: "c" },
      ]);
      const claimed = await store.transaction((tx) =>
        tx.claimDue({ limit: 10, exclude: [], channels: ["email", "chat"] })
      );
      assert.deepEqual(claimed.map((r) => r.id).sort(), [email, chat].sort());
      assert.deepEqual((await claimAll()).map((r) => r.id).sort(), [sms, email, chat].sort());
    });

    it("salvage records an outcome whose transaction was lost, with its attempt-log row", async () => {
      const { routeIds: [id] } = await store.enqueue({ kind: "k" }, [{
        channel: "log",
        destination: "x",
      }]);
      const record = rec(id!, { status: "retry", attempts: 1, delayMs: HOUR, error: "HTTP 503" });
      await assert.rejects(store.transaction(async (tx) => {
        await tx.claimDue({ limit: 1, exclude: [] });
        await tx.finalise([record]);
        throw new Error("the commit was lost");
      }));
      assert.equal((await store.getRoute(id!))?.attempts, 0, "rolled back");
      const unrecorded = { record, claimedAttempts: 0, holdMs: HOUR, poison: false };
      assert.deepEqual(await store.salvage([unrecorded]), ["recorded"]);
      const route = await store.getRoute(id!);
      assert.equal(route?.status, "queued");
      assert.equal(route?.attempts, 1);
      assert.equal(route?.lastError, "HTTP 503");
      assert.ok(route!.nextAttemptAt.getTime() > Date.now() + HOUR / 2, "held back by its delay");
      assert.deepEqual((await store.attempts(id!)).map((a) => a.outcome), ["retry"]);
      // Recorded already (as after a commit whose reply was lost): left alone.
      assert.deepEqual(await store.salvage([unrecorded]), ["skipped"]);
      assert.equal((await store.getRoute(id!))?.attempts, 1);
    });

    it("salvage leaves alone a route another transaction holds, without waiting", async (t) => {
      if (target.concurrentTransactions === false) return t.skip("one session only");
      const { routeIds: [id] } = await store.enqueue({ kind: "k" }, [{
        channel: "log",
        destination: "x",
      }]);
      const unrecorded = {
        record: rec(id!, { status: "sent", attempts: 1 }),
        claimedAttempts: 0,
        holdMs: 0,
        poison: true,
      };
      await store.transaction(async (tx) => {
        assert.equal((await tx.claimDue({ limit: 1, exclude: [] })).length, 1);
        assert.deepEqual(await store.salvage([unrecorded]), ["skipped"]);
      });
      assert.equal((await store.getRoute(id!))?.status, "queued");
    });

    it("an error inside the transaction rolls back: status and attempts unchanged", async () => {
      const { routeIds } = await store.enqueue({ kind: "k" }, [{
        channel: "log",
        destination: "1",
      }]);
      const id = routeIds[0]!;
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.claimDue({ limit: 1, exclude: [] });
          await tx.finalise([rec(id, { status: "failed", attempts: 1, error: "x" })]);
          throw new Error("boom after finalise");
        }),
        /boom after finalise/,
      );
      const route = await store.getRoute(id);
      assert.equal(route?.status, "queued");
      assert.equal(route?.attempts, 0);
      assert.equal(route?.lastError, null);
      assert.deepEqual((await claimAll()).map((r) => r.id), [id]);
    });

    it("an idempotency key makes enqueue write once", async () => {
      const first = await store.enqueue({ kind: "k", idempotencyKey: "order-42-shipped" }, [
        { channel: "log", destination: "1" },
        { channel: "log", destination: "2" },
      ]);
      const second = await store.enqueue({ kind: "k", idempotencyKey: "order-42-shipped" }, [
        { channel: "log", destination: "3" },
      ]);
      assert.equal(second.duplicate, true);
      assert.equal(second.notificationId, first.notificationId);
      assert.deepEqual(second.routeIds, first.routeIds);
      assert.equal((await claimAll()).length, 2);
    });

    it("bad enqueue input is refused with a typed error naming the field; nothing is written", async () => {
      await store.enqueue({ kind: "k" }, [{ channel: "log", destination: "keep" }]);
      const cases: [unknown, unknown, string][] = [
        [{ kind: "" }, [{ channel: "log", destination: "x" }], "notification.kind"],
        [{ kind: "k" }, [], "routes"],
        [{ kind: "k" }, [{ channel: "Bad Name", destination: "x" }], "routes[0].channel"],
        [{ kind: "k" }, [{ channel: "log", destination: "" }], "routes[0].destination"],
        [
          { kind: "k", payload: { n: 1n } },
          [{ channel: "log", destination: "x" }],
          "notification.payload.n",
        ],
        [
          { kind: "k" },
          [{ channel: "log", destination: "x" }, { channel: "", destination: "y" }],
          "routes[1].channel",
        ],
      ];
      for (const [n, r, field] of cases) {
        await assert.rejects(
          // deno-lint-ignore no-explicit-any
          store.enqueue(n as any, r as any),
          (err: unknown) => err instanceof InvalidArgumentError && err.field === field,
          `expected a typed error naming ${field}`,
        );
      }
      assert.equal((await claimAll()).length, 1);
    });

    it("getRoute returns undefined for an unknown id", async () => {
      assert.equal(await store.getRoute(crypto.randomUUID()), undefined);
    });
  });
}
