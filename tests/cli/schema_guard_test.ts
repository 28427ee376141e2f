/**
 * Only `migrate` and `run` change the schema. Every other command, pointed at
 * a schema without Herald's tables (a typo in `--schema`) or at an older
 * one, exits 1 saying so, and creates nothing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, testSql, uniqueSchema } from "../_helpers/pg.ts";
import { runProgram, RUNTIME } from "../_helpers/spawn.ts";
import { migrate } from "../../postgres/_migrations.ts";
import { SCHEMA_VERSION } from "../../store.ts";

const ID = "01900000-0000-7000-8000-000000000000";

/** Each command that reads or changes routes, with the arguments it needs. */
const COMMANDS: readonly (readonly string[])[] = [
  ["stats"],
  ["routes"],
  ["show", ID],
  ["retry", ID],
  ["cancel", ID],
  ["prune", "--older-than", "7d"],
  ["enqueue", "--channel", "log", "--to", "ops"],
  ["destinations"],
];

describe(`commands on a schema that is not Herald's current one (${RUNTIME})`, () => {
  const sql = testSql(1);
  const older = uniqueSchema();
  before(async () => {
    await migrate(sql, older, SCHEMA_VERSION - 1);
  });
  after(async () => {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${older}" CASCADE`);
    await sql.end();
  });

  it("a schema with no Herald tables: exit 1, 'run herald migrate', nothing created", async () => {
    const typo = uniqueSchema("herlad");
    for (const args of COMMANDS) {
      const { code, stderr } = await runProgram([...args, "--schema", typo], { DATABASE_URL });
      assert.equal(code, 1, `${args[0]}: ${stderr}`);
      assert.match(stderr, new RegExp(`no Herald tables in schema ${typo}; run herald migrate`));
    }
    const [row] = await sql`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${typo}`;
    assert.equal(row?.["n"], 0, "the mistyped schema was not created");
  });

  it("an older schema: exit 1 naming both versions; migrate then brings it up", async () => {
    const stats = await runProgram(["stats", "--schema", older], { DATABASE_URL });
    assert.equal(stats.code, 1);
    assert.match(
      stats.stderr,
      new RegExp(
        `schema ${older} is at version ${SCHEMA_VERSION - 1}, this Herald needs ` +
          `${SCHEMA_VERSION}; run herald migrate`,
      ),
    );
    assert.equal((await runProgram(["migrate", "--schema", older], { DATABASE_URL })).code, 0);
    const again = await runProgram(["stats", "--schema", older], { DATABASE_URL });
    assert.equal(again.code, 0, again.stderr);
  });
});
