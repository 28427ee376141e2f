/** The progress line of long commands, on a terminal and off one. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Progress } from "../../cli/_progress.ts";
import type { Io } from "../../cli/_command.ts";

function io(lines: string[], ends: number[], terminal: boolean): Io {
  return {
    env: {},
    out: () => {},
    err: () => {},
    ...(terminal
      ? { progress: { update: (t: string) => void lines.push(t), end: () => void ends.push(1) } }
      : {}),
  };
}

describe("Progress", () => {
  it("on a terminal: count, total, rate and time left on one line, redrawn at most every 200 ms, ended once", () => {
    const lines: string[] = [];
    const ends: number[] = [];
    let now = 10_000;
    const p = new Progress(io(lines, ends, true), "deleted", 5_000, () => now);
    assert.equal(p.live, true);
    now += 1_000;
    p.update(1_000);
    now += 199;
    p.update(1_001); // within the redraw interval: not drawn
    now += 1;
    p.update(1_200);
    p.done();
    assert.deepEqual(lines, [
      "herald: 1,000 of 5,000 route(s) deleted, 1,000/s, about 4.0s left",
      "herald: 1,200 of 5,000 route(s) deleted, 1,000/s, about 3.8s left",
    ]);
    assert.deepEqual(ends, [1]);
  });

  it("off a terminal: silent, so the command logs summaries instead", () => {
    const lines: string[] = [];
    const ends: number[] = [];
    const p = new Progress(io(lines, ends, false), "handled", undefined);
    assert.equal(p.live, false);
    p.update(10);
    p.done();
    assert.deepEqual([lines, ends], [[], []]);
  });
});
