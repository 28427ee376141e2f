/**
 * `herald run --wait-for-database`: retried on a backoff until the deadline,
 * with a last attempt at the deadline itself, never giving up before it. The
 * clock is the test's own: a sleep moves it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { migrateWhenReachable } from "../../cli/_wait.ts";
import { HeraldError } from "../../core/errors.ts";
import type { Logger } from "../../observe/logger.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

/** A database that comes up at `upAt` on a clock that only sleeps move; when each attempt ran. */
function fakeDatabase(upAt: number) {
  let now = 0;
  const attempts: number[] = [];
  return {
    attempts,
    clock: { now: () => now, sleep: (ms: number) => Promise.resolve(void (now += ms)) },
    store: {
      migrate(): Promise<void> {
        attempts.push(now);
        if (now >= upAt) return Promise.resolve();
        return Promise.reject(new HeraldError("HERALD_UNAVAILABLE", "connection refused"));
      },
    },
  };
}

const quiet: Logger = { log() {} };

describe("run --wait-for-database", () => {
  it("a database up 100 ms before the deadline is waited for (the backoff no longer gives up early)", async () => {
    const db = fakeDatabase(9_900);
    await migrateWhenReachable(db.store, 10_000, quiet, db.clock);
    // 100 ms doubling to 5 s: the next step after 6,300 would end at 11,300, past the
    // deadline; it is cut to end at the deadline, and that attempt finds the database.
    assert.deepEqual(db.attempts, [0, 100, 300, 700, 1_500, 3_100, 6_300, 10_000]);
  });

  it("a database that never comes up: the last attempt is at the deadline, then its error", async () => {
    const db = fakeDatabase(Infinity);
    await assert.rejects(
      migrateWhenReachable(db.store, 3_000, quiet, db.clock),
      (err: unknown) => err instanceof HeraldError && err.code === "HERALD_UNAVAILABLE",
    );
    assert.deepEqual(db.attempts, [0, 100, 300, 700, 1_500, 3_000]);
  });

  it("0 waits for nothing, and an error other than an unreachable database is not waited on", async () => {
    const db = fakeDatabase(Infinity);
    await assert.rejects(migrateWhenReachable(db.store, 0, quiet, db.clock), HeraldError);
    assert.deepEqual(db.attempts, [0]);
    const denied = { migrate: () => Promise.reject(new Error("permission denied")) };
    await assert.rejects(
      migrateWhenReachable(denied, 60_000, quiet, db.clock),
      /permission denied/,
    );
  });
});
