/**
 * `herald prune` stopped by a signal: it finishes the batch running, says
 * how far it got and exits 128 + the signal's number, and what it reports is
 * exactly what left the table. The test holds the schema's prune lock (the
 * advisory lock a batch takes before deleting emptied notifications), so the
 * first batch is still running when the signal lands: ordered by the
 * database's lock, not by the clock.
 */
import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import type postgres from "postgres";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { collect, RUNTIME, startProgram, waitForLine } from "../_helpers/spawn.ts";
import { until } from "../faults/_db.ts";

const ROUTES = 5;

describe(`herald prune stopped by a signal, on ${RUNTIME}`, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let blocker: postgres.ReservedSql;
  beforeEach(async () => {
    env = await freshStore();
    await env.store.migrate();
    for (let i = 0; i < ROUTES; i++) {
      await env.store.enqueue({ kind: "k" }, [{ channel: "log", destination: `d${i}` }]);
    }
    await env.sql`
      UPDATE ${env.sql(env.schema)}.notification_routes
      SET status = 'sent', attempts = 1, sent_at = now() - interval '2 days',
          updated_at = now() - interval '2 days'`;
    blocker = await env.sql.reserve();
    await blocker`SELECT pg_advisory_lock(hashtextextended(${pruneLock(env.schema)}, 0))`;
  });
  afterEach(async () => {
    blocker.release();
    await env.cleanup();
  });

  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it(`${signal}: the batch running commits, the rest stays, exit ${code}`, async () => {
      const child = startProgram(
        ["prune", "--older-than", "1d", "--batch-size", "1", "--duty-cycle", "1"],
        { DATABASE_URL, HERALD_SCHEMA: env.schema },
      );
      const done = collect(child);
      try {
        await until(
          "the prune's first batch waits on the prune lock",
          () => waiting(env.sql, env.schema),
        );
        const stopping = waitForLine(child.stderr!, /stopping after the batch running now/);
        // Not child.kill(): Deno's node:child_process then reports the child
        // as killed by that signal whatever exit code it chose.
        process.kill(child.pid!, signal);
        await stopping;
      } finally {
        await blocker`SELECT pg_advisory_unlock(hashtextextended(${pruneLock(env.schema)}, 0))`;
      }
      const out = await done;
      assert.equal(out.code, code, out.stderr);
      assert.match(
        out.stdout,
        new RegExp(`pruned 1 of ${ROUTES} route\\(s\\), stopped by ${signal}`),
      );
      const s = env.sql(env.schema);
      const [left] = await env.sql`
        SELECT (SELECT count(*) FROM ${s}.notification_routes)::int AS routes,
               (SELECT count(*) FROM ${s}.notifications)::int AS notifications`;
      assert.deepEqual(left, { routes: ROUTES - 1, notifications: ROUTES - 1 });

      const rest = await collect(
        startProgram(["prune", "--older-than", "1d", "--duty-cycle", "1"], {
          DATABASE_URL,
          HERALD_SCHEMA: env.schema,
        }),
      );
      assert.equal(rest.code, 0, rest.stderr);
      assert.match(rest.stdout, new RegExp(`pruned ${ROUTES - 1} route\\(s\\)`));
    });
  }
});

/** The name behind the schema's prune lock (postgres/_admin.ts). */
function pruneLock(schema: string): string {
  return `herald.prune:${schema}`;
}

/** `true` once a session waits for `schema`'s prune lock; else `undefined` (keep polling). */
async function waiting(sql: postgres.Sql, schema: string): Promise<true | undefined> {
  // A bigint advisory key shows in pg_locks as its high and low 32 bits.
  const [row] = await sql`
    WITH lock AS (SELECT hashtextextended(${pruneLock(schema)}, 0) AS key)
    SELECT count(*)::int AS n FROM pg_locks l, lock
    WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid::int8 = (lock.key >> 32) & 4294967295
      AND l.objid::int8 = lock.key & 4294967295`;
  return row?.["n"] > 0 ? true : undefined;
}
