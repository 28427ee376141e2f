/**
 * The real program on the embedded database in a temporary directory, no
 * Postgres configured: the demo, and a worker holding the data directory.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runProgram, RUNTIME, startProgram, waitForLine } from "../_helpers/spawn.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

const NO_DB = { DATABASE_URL: undefined };

checkLeaks();

describe(`the herald program on the embedded database (${RUNTIME})`, () => {
  const dir = mkdtempSync(join(tmpdir(), "herald-embedded-cli-"));
  const dataDir = join(dir, "data");
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("demo delivers, retries and fails webhooks with no Postgres configured", async () => {
    const { code, stdout, stderr } = await runProgram(["demo", "--data-dir", dataDir], NO_DB);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /creating the embedded database/);
    assert.match(stdout, /user\.signed_up -> webhook \/flaky\s+sent\s+2/);
    assert.match(
      stdout,
      /invoice\.paid -> webhook \/gone\s+failed\s+1\s+PermanentError: webhook: HTTP 410/,
    );
    assert.match(stdout, /the receiver verified 4 signed request/);
  });

  it("while a worker holds the data directory: operator commands go through it, a second worker is refused", async () => {
    const holder = startProgram(["run", "--data-dir", dataDir, "--interval", "60000"], NO_DB);
    try {
      await waitForLine(holder.stderr!, /worker started/);
      const stats = await runProgram(
        ["stats", "--data-dir", dataDir, "--schema", "herald_demo", "--json"],
        NO_DB,
      );
      assert.equal(stats.code, 0, stats.stderr);
      assert.match(stats.stderr, new RegExp(`open in process ${holder.pid}; going through it`));
      assert.equal(JSON.parse(stats.stdout).byStatus.sent, 3);
      const second = await runProgram(["run", "--once", "--data-dir", dataDir], NO_DB);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`in use by process ${holder.pid}`));
      assert.match(second.stderr, /operator commands \(herald stats, .*\) reach the database/);
      assert.match(second.stderr, /HERALD_LOCKED/);
      const tooMany = await runProgram(["run", "--data-dir", dataDir, "--concurrency", "2"], NO_DB);
      assert.equal(tooMany.code, 2);
      assert.match(tooMany.stderr, /must be 1 on the embedded database/);
    } finally {
      const exited = new Promise((resolve) => holder.on("close", resolve));
      holder.kill("SIGTERM");
      await exited;
    }
    const after = await runProgram([
      "stats",
      "--data-dir",
      dataDir,
      "--schema",
      "herald_demo",
      "--json",
    ], NO_DB);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(JSON.parse(after.stdout).byStatus.sent, 3, "the demo's routes are still there");
  });
});
