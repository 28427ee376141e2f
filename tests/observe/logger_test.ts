import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { jsonLogger, prettyLogger } from "../../observe/logger.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("loggers", () => {
  const now = () => Date.UTC(2026, 0, 2, 3, 4, 5, 678);

  it("json: one object per line, levels honoured, strings redacted", () => {
    const lines: string[] = [];
    const logger = jsonLogger({ level: "info", write: (l) => lines.push(l), now });
    logger.log("debug", "dropped");
    logger.log("warn", "tick failed", {
      error: "POST https://hooks.slack.com/services/T0/B0/SECRETTOKEN failed",
      attempt: 2,
      skipped: undefined,
    });
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(line), ["time", "level", "msg", "error", "attempt"]);
    assert.equal(line.time, "2026-01-02T03:04:05.678Z");
    assert.equal(line.level, "warn");
    assert.equal(line.attempt, 2);
    assert.equal(lines[0]!.includes("SECRETTOKEN"), false);
  });

  it("pretty: a readable line", () => {
    const lines: string[] = [];
    prettyLogger({ write: (l) => lines.push(l), now }).log("error", "boom", { route_id: "r1" });
    assert.deepEqual(lines, ['03:04:05.678 ERROR boom route_id="r1"']);
  });
});
