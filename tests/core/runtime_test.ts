/** How each runtime is asked to run a TypeScript file, V8 flags where it takes them. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { scriptArgv } from "../../core/_runtime.ts";

describe("scriptArgv", () => {
  it("runs the script with its arguments on each runtime", () => {
    assert.deepEqual(scriptArgv("deno", "m.ts", ["run"]), ["run", "-A", "m.ts", "run"]);
    assert.deepEqual(scriptArgv("bun", "m.ts", ["run"]), ["run", "m.ts", "run"]);
    assert.deepEqual(scriptArgv("node", "m.ts", ["run"]), ["m.ts", "run"]);
  });

  it("puts V8 flags where Deno and Node read them; Bun has none to take", () => {
    const flags = ["--max-semi-space-size=2", "--optimize-for-size"];
    assert.deepEqual(scriptArgv("deno", "m.ts", ["x"], flags), [
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=2,--optimize-for-size",
      "m.ts",
      "x",
    ]);
    assert.deepEqual(scriptArgv("node", "m.ts", ["x"], flags), [...flags, "m.ts", "x"]);
    assert.throws(() => scriptArgv("bun", "m.ts", ["x"], flags), /Bun has no V8/);
  });
});
