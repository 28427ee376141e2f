/**
 * Maintenance for a database that has no background processes. PGlite runs
 * Postgres in single-user mode: nothing checkpoints until the database
 * closes, so the WAL of a long-running worker grows without bound (about
 * 100 MB per 75 MB of rows written, measured) and so does the replay after a
 * crash; and nothing vacuums, so the space of routes updated or pruned is
 * never reused and the files only grow. So Herald runs `VACUUM (ANALYZE)`
 * and a `CHECKPOINT` itself once the WAL since the last checkpoint passes a
 * limit, checked on a timer: the limit measures how much was written.
 *
 * @module
 */
import { clearInterval, setInterval } from "node:timers";

/** The part of the driver this needs. */
export interface CheckpointSql {
  unsafe(query: string): PromiseLike<readonly Record<string, unknown>[]>;
}

/** WAL written since the last checkpoint's redo point, in bytes. */
export async function walSinceCheckpoint(sql: CheckpointSql): Promise<number> {
  const [row] = await sql.unsafe(
    "SELECT (pg_current_wal_insert_lsn() - redo_lsn)::float8 AS bytes FROM pg_control_checkpoint()",
  );
  return Number(row?.["bytes"] ?? 0);
}

/**
 * Vacuums, then checkpoints, when more than `limitBytes` of WAL was written
 * since the last checkpoint; true if it did. The vacuum goes first so the
 * checkpoint writes its pages too.
 */
export async function checkpointIfDue(sql: CheckpointSql, limitBytes: number): Promise<boolean> {
  if (await walSinceCheckpoint(sql) < limitBytes) return false;
  await sql.unsafe("VACUUM (ANALYZE)");
  await sql.unsafe("CHECKPOINT");
  return true;
}

/** A running checkpoint timer. */
export interface Checkpointer {
  /** Stops the timer and waits for a check in progress. */
  stop(): Promise<void>;
}

/** Checks every `everyMs` (unref'd: it never keeps a process alive); errors are left to queries. */
export function startCheckpointer(
  sql: CheckpointSql,
  { everyMs = 30_000, limitBytes = 16 * 1024 * 1024 } = {},
): Checkpointer {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = checkpointIfDue(sql, limitBytes)
      .catch(() => {
        // The database is closing or broken; the worker's own queries will say so.
      })
      .finally(() => (running = undefined));
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
