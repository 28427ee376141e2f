import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { channelCount, checkPrune, PRUNABLE, pruneRestMs } from "../../core/operator.ts";
import type { QueueStats } from "../../core/operator.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const stats = (estimated: QueueStats["estimated"]): QueueStats => ({
  byStatus: { queued: 60_000, sent: 1_000_000, failed: 0, cancelled: 0, poisoned: 1 },
  byChannel: [
    { channel: "sms", status: "queued", count: 45_000 },
    { channel: "sms", status: "poisoned", count: 1 },
  ],
  oldestDueAgeMs: null,
  oldestDueByChannel: [],
  failedLastHour: 0,
  ...(estimated ? { estimated } : {}),
});

describe("channelCount", () => {
  it("prints exact counts as they are, zero where a channel has none", () => {
    const st = stats(undefined);
    assert.equal(channelCount(st, "sms", "queued"), "45000");
    assert.equal(channelCount(st, "email", "queued"), "0");
  });
  it("marks an estimated count shared out by channel, and leaves the history's out", () => {
    const st = stats(["sent", "failed", "cancelled", "queued"]);
    assert.equal(channelCount(st, "sms", "queued"), "~45000");
    assert.equal(channelCount(st, "sms", "sent"), "-");
    assert.equal(channelCount(st, "sms", "poisoned"), "1");
  });
});

describe("prune's options", () => {
  it("fill in the defaults: all three finished statuses, batches of 1,000, a quarter of the time", () => {
    assert.deepEqual(checkPrune({ olderThanMs: 0 }), {
      olderThanMs: 0,
      statuses: PRUNABLE,
      batchSize: 1_000,
      dutyCycle: 0.25,
    });
    assert.deepEqual(checkPrune({ olderThanMs: 5, statuses: ["sent", "sent"] }).statuses, ["sent"]);
  });
  it("rest after a batch in proportion to how long it took", () => {
    assert.equal(pruneRestMs(40, 0.5), 40);
    assert.equal(pruneRestMs(40, 0.2), 160);
    assert.equal(pruneRestMs(40, 1), 0);
    assert.equal(pruneRestMs(-3, 0.5), 0, "a clock that stepped back rests not at all");
  });
});
