/**
 * Flags as people type them: the common flags on either side of the
 * command, and negative numbers as values.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { runProgram, RUNTIME } from "../_helpers/spawn.ts";

describe(`the herald program's flags on ${RUNTIME}`, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  before(async () => {
    env = await freshStore();
    await env.store.migrate();
  });
  after(async () => {
    await env.cleanup();
  });

  it("common flags may come before the command", async () => {
    const { code, stdout, stderr } = await runProgram(
      ["--database-url", DATABASE_URL, "--schema", env.schema, "stats", "--json"],
      { DATABASE_URL: undefined },
    );
    assert.equal(code, 0, stderr);
    assert.equal(typeof JSON.parse(stdout).byStatus.queued, "number");
  });

  it("--priority -1 is a value, not a flag", async () => {
    const enq = await runProgram(
      ["enqueue", "--channel", "log", "--to", "ops", "--priority", "-1", "--schema", env.schema],
      { DATABASE_URL },
    );
    assert.equal(enq.code, 0, enq.stderr);
    const [id] = enq.stdout.trim().split("\n");
    assert.equal((await env.store.getRoute(id!))?.priority, -1);
  });
});
