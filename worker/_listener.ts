/**
 * The worker's listener: subscribes to the store's wake-ups until shutdown,
 * proves every few seconds that the subscription still hears them, and
 * replaces one that does not, or that could not be made, on a short backoff
 * of its own, whatever the poll interval.
 *
 * @module
 */
import { bounded } from "../core/_async.ts";
import { describeError } from "../core/_redact.ts";
import type { Subscription } from "../core/transaction.ts";
import type { WorkerConfig } from "./config.ts";

/** How often the listener probes itself (at most; the interval when shorter). */
const PROBE_EVERY_MS = 2_000;
/** How long the listener may take to hear its own probe before it counts as lost. */
const PROBE_TIMEOUT_MS = 2_000;
/** The longest any single step of the listener (subscribe, unsubscribe) may take. */
const STEP_TIMEOUT_MS = 5_000;
/** A lost listener subscribes again after 100 ms, doubling up to 2 s: never a poll interval. */
const RELISTEN_FIRST_MS = 100;
const RELISTEN_MAX_MS = 2_000;

/**
 * Listens until `stop` aborts, calling `wake` on every notification and on
 * every (re)connect: routes enqueued while the listener was away were never
 * announced, so a new subscription means a catch-up tick.
 */
export async function listenUntil(
  config: WorkerConfig,
  stop: AbortSignal,
  wake: () => void,
): Promise<void> {
  const { store, logger, random, sleep } = config;
  if (!config.listen || !store.listen) return;
  let failures = 0;
  while (!stop.aborted) {
    let subscription: Subscription;
    try {
      subscription = await bounded(
        store.listen({ onNotify: wake, onConnect: wake }),
        STEP_TIMEOUT_MS,
        "subscribing",
        (late) => void late.close().catch(() => {}),
      );
      failures = 0;
      logger.log("info", "listening for new routes");
    } catch (err) {
      failures++;
      const ms = Math.min(RELISTEN_MAX_MS, RELISTEN_FIRST_MS * 2 ** (failures - 1)) *
        (1 - 0.1 * random());
      logger.log("warn", "could not listen for new routes; polling until it can", {
        error: describeError(err),
        retry_in_ms: Math.round(ms),
      });
      await sleep(ms, stop, "relisten");
      continue;
    }
    await watch(config, stop, subscription);
    try {
      await bounded(subscription.close(), STEP_TIMEOUT_MS, "unsubscribing");
    } catch (err) {
      logger.log("warn", "could not stop listening", { error: describeError(err) });
    }
  }
}

/**
 * Resolves at shutdown, or when the subscription stops hearing its own
 * probe: the driver re-listens by itself after a reconnect but drops a
 * re-listen that fails, which would leave the worker deaf (polling only)
 * without a word. Checked every 2 s (or each interval, when shorter); two
 * probes unheard in a row replace it; every probe is bounded, so a stalled
 * connection cannot hold up shutdown.
 */
async function watch(
  { interval, logger, sleep }: WorkerConfig,
  stop: AbortSignal,
  subscription: Subscription,
): Promise<void> {
  while (!stop.aborted) {
    await sleep(Math.min(interval, PROBE_EVERY_MS), stop, "probe");
    const alive = subscription.alive?.bind(subscription);
    if (stop.aborted || !alive) continue;
    if (await heard(alive)) continue;
    // A second chance before the verdict: a process stalled past the probe's
    // deadline (CPU starved, a long GC pause) can wake with its timer and the
    // probe's answer both ready, and the timer may run first. A deaf
    // subscription fails this probe too; a stalled one is heard.
    logger.log("debug", "the listener's probe went unheard; probing once more");
    if (stop.aborted || await heard(alive)) continue;
    logger.log("warn", "the listener stopped hearing notifications; listening again");
    return;
  }
}

/** One bounded probe; false when unheard, failed or late. */
function heard(alive: (timeoutMs: number) => Promise<boolean>): Promise<boolean> {
  return bounded(alive(PROBE_TIMEOUT_MS), PROBE_TIMEOUT_MS + 500, "probing").catch(() => false);
}
