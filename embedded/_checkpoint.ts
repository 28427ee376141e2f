/**
 * Maintenance for a database that has no background processes. PGlite runs
 * Postgres in single-user mode: nothing vacuums, so every route sent leaves
 * dead row versions that the next process's claims wade through (delivery
 * fell from about 850 to 280 routes/s after 1,000 routes, measured, and a
 * VACUUM brought it back), and whose space is never reused; and nothing
 * checkpoints until the database closes, so the WAL of a long-running worker
 * grows without bound (about 100 MB per 75 MB of rows written) and so does
 * the replay after a crash.
 *
 * So Herald does both itself, measured by the WAL written (about 2 kB per
 * route enqueued and sent): a VACUUM once 1 MB was written since the last
 * one (about 500 routes), checked every 30 s and when the database closes;
 * a VACUUM (ANALYZE) and a CHECKPOINT once 16 MB were written since the
 * last checkpoint.
 *
 * @module
 */
import { clearInterval, setInterval } from "node:timers";

/** The part of the driver this needs. */
export interface MaintenanceSql {
  unsafe(query: string): PromiseLike<readonly Record<string, unknown>[]>;
}

/** When to vacuum and checkpoint, in bytes of WAL written. */
export interface MaintenanceLimits {
  readonly vacuumBytes: number;
  readonly checkpointBytes: number;
}

const LIMITS: MaintenanceLimits = { vacuumBytes: 1 << 20, checkpointBytes: 16 << 20 };

/** Where the WAL is, and how much was written since the last checkpoint's redo point, in bytes. */
export async function walPosition(
  sql: MaintenanceSql,
): Promise<{ lsn: number; sinceCheckpoint: number }> {
  const [row] = await sql.unsafe(
    "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::float8 AS lsn, " +
      "(pg_current_wal_insert_lsn() - redo_lsn)::float8 AS since " +
      "FROM pg_control_checkpoint()",
  );
  return { lsn: Number(row?.["lsn"] ?? 0), sinceCheckpoint: Number(row?.["since"] ?? 0) };
}

/** The maintenance of one open database. */
export interface Maintenance {
  /** One check: what it did. */
  run(): Promise<"nothing" | "vacuum" | "checkpoint">;
  /** Stops the timer, waits for a check in progress, and runs a last one (the database is closing). */
  stop(): Promise<void>;
}

/** Starts counting from here; checks every `everyMs` (unref'd: it keeps no process alive). */
export async function startMaintenance(
  sql: MaintenanceSql,
  { everyMs = 30_000, limits = LIMITS }: { everyMs?: number; limits?: MaintenanceLimits } = {},
): Promise<Maintenance> {
  const m = new Maintainer(sql, limits, (await walPosition(sql)).lsn);
  if (everyMs > 0) m.every(everyMs);
  return m;
}

class Maintainer implements Maintenance {
  readonly #sql: MaintenanceSql;
  readonly #limits: MaintenanceLimits;
  #vacuumedAt: number;
  #running: Promise<unknown> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(sql: MaintenanceSql, limits: MaintenanceLimits, lsn: number) {
    this.#sql = sql;
    this.#limits = limits;
    this.#vacuumedAt = lsn;
  }

  every(ms: number): void {
    this.#timer = setInterval(() => void this.#check(), ms);
    this.#timer.unref();
  }

  async run(): Promise<"nothing" | "vacuum" | "checkpoint"> {
    const { lsn, sinceCheckpoint } = await walPosition(this.#sql);
    if (sinceCheckpoint >= this.#limits.checkpointBytes) {
      // The vacuum first, so the checkpoint writes its pages too.
      await this.#sql.unsafe("VACUUM (ANALYZE)");
      await this.#sql.unsafe("CHECKPOINT");
      this.#vacuumedAt = lsn;
      return "checkpoint";
    }
    if (lsn - this.#vacuumedAt < this.#limits.vacuumBytes) return "nothing";
    await this.#sql.unsafe("VACUUM");
    this.#vacuumedAt = lsn;
    return "vacuum";
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
    await this.#check();
  }

  #check(): Promise<unknown> {
    this.#running ??= this.run()
      .catch(() => {
        // Closing, or broken: the queries that matter will say so.
      })
      .finally(() => (this.#running = undefined));
    return this.#running;
  }
}
