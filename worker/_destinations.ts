/**
 * What a transaction's sends tell the store about their destinations, and
 * how the worker tells of a destination changing state.
 *
 * @module
 */
import { isSingleUrlKey } from "../core/destination_key.ts";
import type {
  DestinationChange,
  DestinationPolicy,
  DestinationReport,
} from "../core/destination.ts";
import type { DestinationEventDetail, DestinationEventName } from "../core/events.ts";
import type { Logger } from "../observe/logger.ts";
import type { AttemptResult } from "./_attempt.ts";
import type { RouteTransaction } from "../store.ts";
import { describeError } from "../core/_redact.ts";

/**
 * One report per destination that has something to say: any failure, a
 * 410, a probe, or a success where the destination has failures or a state
 * to clear. A healthy destination's successes make none: the healthy path
 * writes nothing more than before.
 */
export function reportsOf(results: readonly AttemptResult[]): DestinationReport[] {
  const byKey = new Map<
    string,
    { -readonly [K in keyof DestinationReport]: DestinationReport[K] }
  >();
  for (const { route, record, verdict } of results) {
    const key = route.destinationKey;
    if (key === undefined || verdict === undefined || record === undefined) continue;
    if (verdict === "ok" && !route.destinationDirty && !route.probe) continue;
    const id = `${route.channel}\n${key}`;
    let report = byKey.get(id);
    if (!report) {
      report = {
        channel: route.channel,
        key,
        ok: 0,
        fail: 0,
        gone: false,
        probe: false,
        error: null,
      };
      byKey.set(id, report);
    }
    if (verdict === "fail") report.fail++;
    else if (verdict === "gone" && isSingleUrlKey(key)) report.gone = true;
    else report.ok++; // an answer: a 410 from one path of an origin too
    if (route.probe) report.probe = true;
    if (verdict !== "ok" && record.outcome.status !== "sent") report.error = record.outcome.error;
  }
  return [...byKey.values()];
}

/** Reports to the store what the sends said of their destinations; a refusal only warns. */
export async function reportDestinations(
  tx: RouteTransaction,
  results: readonly AttemptResult[],
  { destinations, logger }: { readonly destinations: DestinationPolicy; readonly logger: Logger },
): Promise<readonly DestinationChange[] | undefined> {
  const reports = reportsOf(results);
  if (reports.length === 0 || !tx.reportDestinations) return undefined;
  try {
    return await tx.reportDestinations(reports, destinations);
  } catch (err) {
    // HERALD_STORE: refused, and undone to a savepoint; the outcomes stand.
    if ((err as { code?: unknown } | null)?.code !== "HERALD_STORE") throw err;
    logger.log("warn", "destination health not recorded", { error: describeError(err) });
    return undefined;
  }
}

/** Logs and emits each change of a destination's state. */
export function announce(
  changes: readonly DestinationChange[] | undefined,
  logger: Logger,
  target: EventTarget,
): void {
  const emit = (name: DestinationEventName, detail: DestinationEventDetail): void =>
    void target.dispatchEvent(new CustomEvent(name, { detail }));
  for (const c of changes ?? []) {
    const detail: DestinationEventDetail = {
      channel: c.channel,
      destination: c.key,
      from: c.from,
      to: c.to,
      trips: c.trips,
      ...(c.openUntil === null ? {} : { openUntil: c.openUntil }),
      ...(c.reason === null ? {} : { reason: c.reason }),
    };
    const fields = {
      channel: c.channel,
      destination: c.key,
      from: c.from,
      to: c.to,
      trips: c.trips,
      ...(c.openUntil === null ? {} : { open_until: c.openUntil.toISOString() }),
      ...(c.reason === null ? {} : { reason: c.reason }),
    };
    if (c.to === "open") {
      logger.log("warn", "destination opened: its routes wait out the cool-down", fields);
      emit("destination.opened", detail);
    } else if (c.to === "closed") {
      logger.log("info", "destination closed: sending again", fields);
      emit("destination.closed", detail);
    } else if (c.to === "disabled") {
      logger.log("warn", "destination disabled: its routes are held until it is enabled", fields);
      emit("destination.disabled", detail);
    }
  }
}

/**
 * When to look again for a rate-limited destination's next token. A loop with
 * nothing to claim sleeps until the next token this worker knows of, or,
 * for 30 s after it last took one, one token interval: another worker of the
 * fleet may have taken the token it waited for, and the destination's
 * backlog must flow at its rate, not at the poll interval.
 */
export class TokenClock {
  #at = -Infinity;
  #pace = Infinity;
  #seenAt = -Infinity;

  /** A claim took a token; the next comes in `ms`. */
  note(ms: number | undefined): void {
    if (ms === undefined) return;
    const now = performance.now();
    // A time already past is spent: the new one replaces it, however late.
    this.#at = this.#at > now ? Math.min(this.#at, now + ms) : now + ms;
    this.#pace = Math.max(10, ms);
    this.#seenAt = now;
  }

  /** How long to sleep at most: `interval`, or less when a token comes sooner. */
  sleepFor(interval: number): number {
    const now = performance.now();
    if (this.#at > now) return Math.min(interval, this.#at - now);
    return now - this.#seenAt < 30_000 ? Math.min(interval, this.#pace) : interval;
  }
}
