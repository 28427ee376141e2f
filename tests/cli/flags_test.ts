/**
 * Flags as people type them: the common flags on either side of the
 * command, negative numbers as values, and --dry-run before a bulk change.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { runProgram, RUNTIME } from "../_helpers/spawn.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

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

  it("a misread database URL is refused by the name it came by, its password unshown", async () => {
    const url = "postgres:/postgres:SECRETpw@127.0.0.1:5432/test"; // one slash
    const byFlag = await runProgram(["stats", "--database-url", url], { DATABASE_URL: undefined });
    assert.equal(byFlag.code, 2, byFlag.stderr);
    assert.match(byFlag.stderr, /Invalid '--database-url': must start with postgres:\/\//);
    const byEnv = await runProgram(["stats"], { DATABASE_URL: url });
    assert.equal(byEnv.code, 2, byEnv.stderr);
    assert.match(byEnv.stderr, /Invalid 'DATABASE_URL'/);
    for (const out of [byFlag, byEnv]) {
      assert.doesNotMatch(out.stdout + out.stderr, /SECRETpw/);
    }
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

  it("prune --dry-run and retry --failed --dry-run count what they would change, and change nothing", async () => {
    const { routeIds } = await env.store.enqueue({ kind: "k" }, [
      { channel: "log", destination: "a" },
      { channel: "log", destination: "b" },
    ]);
    const s = env.sql(env.schema);
    await env.sql`
      UPDATE ${s}.notification_routes SET status = 'failed', updated_at = now() - interval '2 days'
      WHERE route_id = ANY(${routeIds}::uuid[])`;
    const pg = { DATABASE_URL, HERALD_SCHEMA: env.schema };
    const prune = await runProgram(["prune", "--older-than", "1d", "--dry-run"], pg);
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stdout, /^would prune 2 route\(s\)$/m);
    const retry = await runProgram(["retry", "--failed", "--dry-run"], pg);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /^would retry 2 route\(s\)$/m);
    const rows = await env.sql`
      SELECT status FROM ${s}.notification_routes WHERE route_id = ANY(${routeIds}::uuid[])`;
    assert.deepEqual(rows.map((r) => r["status"]), ["failed", "failed"], "nothing changed");
    const ids = await runProgram(["retry", routeIds[0]!, "--dry-run"], pg);
    assert.equal(ids.code, 2, "--dry-run goes with --failed");
  });

  it("--json gives every command a machine-readable answer", async () => {
    const pg = { DATABASE_URL, HERALD_SCHEMA: env.schema };
    const json = async (args: string[]) => {
      const { code, stdout, stderr } = await runProgram([...args, "--json"], pg);
      assert.equal(code, 0, `${args[0]}: ${stderr}`);
      // The answer is the last line (run --once: the log channel prints each send before it).
      return JSON.parse(stdout.trim().split("\n").at(-1)!);
    };
    assert.equal((await json(["migrate"])).schema, env.schema);
    const enq = await json(["enqueue", "--channel", "log", "--to", "ops", "--kind", "k.json"]);
    assert.equal(enq.routeIds.length, 1);
    assert.equal(enq.duplicate, false);
    const routes = await runProgram(["routes", "--json", "--limit", "1"], pg);
    const listed = JSON.parse(routes.stdout.trim().split("\n")[0]!);
    assert.deepEqual([listed.id, listed.kind, listed.destinationKey], [
      enq.routeIds[0],
      "k.json",
      "*",
    ]);
    assert.equal((await json(["run", "--once"])).routes >= 1, true);
    assert.equal((await json(["retry", enq.routeIds[0], "--force"])).changed, 1);
    assert.equal((await json(["cancel", enq.routeIds[0]])).changed, 1);
    assert.equal((await json(["prune", "--older-than", "0s", "--dry-run"])).dryRun, true);
    assert.equal((await json(["destinations", "pause", "log", "*"])).state, "paused");
    assert.equal((await json(["destinations", "resume", "log", "*"])).state, "closed");
  });
});
