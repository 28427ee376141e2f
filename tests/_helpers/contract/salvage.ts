/**
 * The contract, salvage area: an outcome whose transaction was lost is recorded route by route.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ContractArea, HOUR, rec } from "./fixtures.ts";

/** Recording outcomes after their transaction failed. */
export const SALVAGE: ContractArea = {
  name: "salvage",
  cases: [
    {
      name: "salvage records an outcome whose transaction was lost, with its attempt-log row",
      run: async ({ store }) => {
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
      },
    },
    {
      name: "salvage leaves alone a route another transaction holds, without waiting",
      run: async ({ store, target }, t) => {
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
      },
    },
  ],
};
