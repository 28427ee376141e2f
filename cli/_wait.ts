/**
 * `herald run --wait-for-database`: migrate once the database can be reached,
 * waiting up to a deadline.
 *
 * @module
 */
import { sleep as sleepFor } from "../core/_async.ts";
import { describeError } from "../core/_redact.ts";
import type { Logger } from "../observe/logger.ts";

/** The clock and the sleep a wait uses; injected by tests. */
export interface WaitClock {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

const REAL: WaitClock = { now: () => performance.now(), sleep: (ms) => sleepFor(ms) };

/**
 * Migrates, waiting up to `waitMs` while the database cannot be reached (a
 * fleet started with or before its database, a failover window): retried
 * after 100 ms, doubling up to 5 s, one log line per attempt, and a last
 * attempt at the deadline itself (a backoff never ends the wait early).
 */
export async function migrateWhenReachable(
  store: { migrate(): Promise<unknown> },
  waitMs: number,
  logger: Logger,
  clock: WaitClock = REAL,
): Promise<void> {
  const deadline = clock.now() + waitMs;
  for (let attempt = 1;; attempt++) {
    try {
      await store.migrate();
      if (attempt > 1) logger.log("info", "database reachable", { attempts: attempt });
      return;
    } catch (err) {
      const unreachable = (err as { code?: unknown } | null)?.code === "HERALD_UNAVAILABLE";
      const left = deadline - clock.now();
      if (!unreachable || left <= 0) throw err;
      const ms = Math.min(100 * 2 ** (attempt - 1), 5_000, left);
      logger.log("warn", "database not reachable yet; waiting", {
        attempt,
        retry_in_ms: Math.round(ms),
        error: describeError((err as { cause?: unknown }).cause ?? err),
      });
      await clock.sleep(ms);
    }
  }
}
