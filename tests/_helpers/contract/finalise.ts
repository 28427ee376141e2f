/**
 * The contract, finalise area: outcomes, the times they write, the attempt log, rollbacks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { claimAll, type ContractArea, HOUR, rec } from "./fixtures.ts";

/** Recording outcomes inside the route transaction. */
export const FINALISE: ContractArea = {
  name: "finalise",
  cases: [
    {
      name: "finalise records sent, retry and failed",
      run: async ({ store }) => {
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
        assert.deepEqual((await claimAll(store)).map((r) => r.id), [b]);
      },
    },
    {
      name: "times written at an outcome are the store's clock at the outcome, not at the claim",
      run: async ({ store, opened }, t) => {
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
          await tx.finalise([
            rec(id!, { status: "retry", attempts: 1, delayMs: 10, error: "slow" }),
          ]);
        });
        const route = await store.getRoute(id!);
        // Dates carry whole milliseconds; the store's clock may carry microseconds.
        assert.ok(
          route!.nextAttemptAt.getTime() > before + 10 - 1,
          `next attempt ${route!.nextAttemptAt.toISOString()} is not 10 ms after the outcome ` +
            `(${new Date(before).toISOString()}): the delay was counted from the claim`,
        );
        assert.ok(route!.updatedAt.getTime() > before - 1, "updated_at is the outcome's time");
      },
    },
    {
      name: "finalise appends to the attempt log, in the same transaction",
      run: async ({ store }) => {
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
      },
    },
    {
      name: "an error inside the transaction rolls back: status and attempts unchanged",
      run: async ({ store }) => {
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
        assert.deepEqual((await claimAll(store)).map((r) => r.id), [id]);
      },
    },
  ],
};
