/**
 * Checkpoints for a database that has no checkpointer. PGlite runs Postgres
 * in single-user mode, where nothing checkpoints until the database closes:
 * the WAL of a long-running worker grows without bound (about 100 MB per
 * 75 MB of rows written, measured), and so does the replay after a crash.
 * So Herald asks for a CHECKPOINT itself once the WAL since the last one
 * passes a limit, checked on a timer.
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

/** Checkpoints when more than `limitBytes` of WAL was written since the last one; true if it did. */
export async function checkpointIfDue(sql: CheckpointSql, limitBytes: number): Promise<boolean> {
  if (await walSinceCheckpoint(sql) < limitBytes) return false;
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
