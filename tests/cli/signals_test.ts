/** One Ctrl-C reaching the program twice (terminal and npm) is one press; a later one is the second. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { pressCounter } from "../../cli/_signals.ts";

describe("pressCounter", () => {
  it("counts a signal within the window of the last press as that press", () => {
    const press = pressCounter(200);
    assert.equal(press(1_000), 1);
    assert.equal(press(1_003), undefined, "npm's forwarded copy, 3 ms later");
    assert.equal(press(1_199), undefined);
    assert.equal(press(1_200), 2, "200 ms on: a second press");
    assert.equal(press(1_350), undefined, "measured from the last press, not the first");
    assert.equal(press(5_000), 3);
  });
});
