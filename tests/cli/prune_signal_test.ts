/**
 * `herald prune` stopped by a signal. The first one lets the batch running
 * commit, says how far it got and exits 128 + the signal's number, and what
 * it reports is exactly what left the table; a second quits at once and the
 * batch is rolled back. The test holds the schema's prune lock (the advisory
 * lock a batch takes before deleting emptied notifications), so the signals
 * land while the first batch runs: ordered by the database's lock, not by
 * the clock.
 */
import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import type postgres from "postgres";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { collect, RUNTIME, startProgram, waitForLine } from "../_helpers/spawn.ts";
import { until } from "../_helpers/kit.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

const ROUTES = 5;

checkLeaks();

describe(`herald prune stopped by a signal, on ${RUNTIME}`, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let blocker: postgres.ReservedSql;
  let child: ChildProcess | undefined;
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
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    blocker.release();
    await env.cleanup();
  });

  /**
   * Starts the prune, one route per batch, and resolves once its first batch
   * waits on the lock, with `done` (wrapped: a promise returned bare would be
   * awaited along with this one, until the program ends).
   */
  async function pruneHeldInItsFirstBatch(
    json: boolean,
  ): Promise<{ done: ReturnType<typeof collect> }> {
    child = startProgram(
      [
        "prune",
        "--older-than",
        "1d",
        "--batch-size",
        "1",
        "--duty-cycle",
        "1",
        ...(json ? ["--json"] : []),
      ],
      { DATABASE_URL, HERALD_SCHEMA: env.schema },
    );
    const done = collect(child);
    await until("the prune's first batch waits on the prune lock", () => waiting(env));
    return { done };
  }

  /**
   * Sends `signal` and resolves once the program says it is stopping. Not
   * child.kill(): Deno's node:child_process then reports the child as
   * killed by that signal, whatever exit code it chose.
   */
  async function signalAndHear(signal: "SIGINT" | "SIGTERM"): Promise<void> {
    const stopping = waitForLine(child!.stderr!, /stopping after the batch running now/);
    stopping.catch(() => {}); // awaited below, unless the kill throws first
    process.kill(child!.pid!, signal);
    await stopping;
  }

  async function left(): Promise<postgres.Row | undefined> {
    const s = env.sql(env.schema);
    const [row] = await env.sql`
      SELECT (SELECT count(*) FROM ${s}.notification_routes)::int AS routes,
             (SELECT count(*) FROM ${s}.notifications)::int AS notifications`;
    return row;
  }

  function release(): Promise<unknown> {
    return blocker`SELECT pg_advisory_unlock(hashtextextended(${pruneLock(env.schema)}, 0))`;
  }

  // SIGTERM's run asks for --json: the same facts, as an object.
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it(`${signal}: the batch running commits, the rest stays, exit ${code}`, async () => {
      const json = signal === "SIGTERM";
      const { done } = await pruneHeldInItsFirstBatch(json);
      try {
        await signalAndHear(signal);
      } finally {
        await release();
      }
      const out = await done;
      assert.equal(out.code, code, out.stderr);
      if (json) {
        assert.deepEqual(JSON.parse(out.stdout), {
          pruned: 1,
          dryRun: false,
          of: ROUTES,
          stopped: signal,
        });
      } else {
        assert.match(
          out.stdout,
          new RegExp(`pruned 1 of ${ROUTES} route\\(s\\), stopped by ${signal}`),
        );
      }
      assert.deepEqual(await left(), { routes: ROUTES - 1, notifications: ROUTES - 1 });

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

  it("a second SIGINT quits at once: the batch running is rolled back", async () => {
    const { done } = await pruneHeldInItsFirstBatch(false);
    try {
      await signalAndHear("SIGINT");
      // Later than the window in which a signal counts as the first one again
      // (npm's forwarded copy): the program heard the first before this wait.
      await new Promise((resolve) => setTimeout(resolve, 300));
      process.kill(child!.pid!, "SIGINT");
      const out = await done;
      assert.equal(out.code, 130, out.stderr);
      assert.doesNotMatch(out.stdout, /pruned/);
    } finally {
      await release();
    }
    assert.deepEqual(await left(), { routes: ROUTES, notifications: ROUTES });
  });
});

/** The name behind the schema's prune lock (postgres/_admin.ts). */
function pruneLock(schema: string): string {
  return `herald.prune:${schema}`;
}

/** `true` once a session waits for the schema's prune lock; else `undefined` (keep polling). */
async function waiting(
  { sql, schema }: { sql: postgres.Sql; schema: string },
): Promise<true | undefined> {
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
