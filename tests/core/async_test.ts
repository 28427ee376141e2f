/**
 * core/_async.ts: `raceAbort` gives up on work it was handed once its signal
 * is aborted, and must leave nothing unhandled behind.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { raceAbort } from "../../core/_async.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("raceAbort", () => {
  it("an already aborted signal: rejects with its reason, and the work's later rejection is handled", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const stop = new AbortController();
      stop.abort(new Error("shut down"));
      let fail!: (err: Error) => void;
      const work = new Promise<never>((_, reject) => (fail = reject));
      await assert.rejects(raceAbort(work, stop.signal), /shut down/);
      // The work notices the abort later, as a channel does, and rejects too.
      fail(new Error("aborted inside the channel"));
      // Unhandled rejections are reported after the microtask queue drains.
      await new Promise((resolve) => setTimeout(resolve, 0));
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("aborted while the work runs: rejects at once; the work settling later changes nothing", async () => {
    const stop = new AbortController();
    let finish!: (value: string) => void;
    const work = new Promise<string>((resolve) => (finish = resolve));
    const raced = raceAbort(work, stop.signal);
    stop.abort(new Error("timed out"));
    await assert.rejects(raced, /timed out/);
    finish("late");
    assert.equal(await work, "late");
  });
});
