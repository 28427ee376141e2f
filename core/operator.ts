/**
 * The operator's vocabulary: what `stats` reports, and what `listRoutes`,
 * `retry`, `cancel` and `prune` take and answer.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import type { RouteStatus } from "./route.ts";

/** Counts for `herald stats`. */
export interface QueueStats {
  /** Routes by status (every status present, 0 when none). */
  readonly byStatus: Readonly<Record<RouteStatus, number>>;
  /** Routes by channel and status. */
  readonly byChannel: readonly { channel: string; status: RouteStatus; count: number }[];
  /** How long the oldest due route has been waiting, or `null` when none is due. */
  readonly oldestDueAgeMs: number | null;
  /**
   * Per channel with a due route: how long its oldest due route has waited.
   * A channel no running worker has shows here as an age that only grows.
   */
  readonly oldestDueByChannel: readonly { channel: string; ageMs: number }[];
  /** Routes that failed for good in the last hour. */
  readonly failedLastHour: number;
  /**
   * Statuses whose counts are estimates: on a table of more than 100,000
   * routes, Postgres gives `sent`, `failed` and `cancelled` from the
   * planner's statistics (as fresh as the last ANALYZE) and leaves them out
   * of `byChannel`; it counts each channel's queued routes exactly up to
   * 10,000 and, when a channel has more, estimates the queue too (the
   * planner's count less the channels counted exactly, shared evenly among
   * the channels past 10,000, none below it). Poisoned counts, the
   * oldest due age and the last hour's failures are always exact. Absent or
   * empty: all exact.
   */
  readonly estimated?: readonly RouteStatus[];
  /** Destinations by state, and each one in trouble; absent from a store that keeps none. */
  readonly destinations?: DestinationStats;
}

/**
 * A channel's count of `status` as a table cell: `~N` when estimated, `-`
 * for an estimated status without per-channel figures (the history's).
 */
export function channelCount(stats: QueueStats, channel: string, status: RouteStatus): string {
  const n = stats.byChannel.find((c) => c.channel === channel && c.status === status)?.count;
  if (!stats.estimated?.includes(status)) return String(n ?? 0);
  return n === undefined ? "-" : `~${n}`;
}

/** The destinations part of {@link QueueStats}. */
export interface DestinationStats {
  /** How many destinations are in each state (`half_open`: open, its cool-down over). */
  readonly byState: Readonly<
    Record<"closed" | "open" | "half_open" | "paused" | "disabled", number>
  >;
  /**
   * Every destination not closed, closed but failing, or holding routes back
   * by its rate limit, with its queued routes.
   */
  readonly troubled: readonly {
    readonly channel: string;
    readonly key: string;
    readonly state: "closed" | "open" | "half_open" | "paused" | "disabled";
    readonly trips: number;
    readonly consecutiveFailures: number;
    /** Its queued routes, held ones included (Postgres: up to 1,001, see `capped`). */
    readonly queued: number;
    /** Due routes held back by its rate limit now (Postgres: up to 1,001, see `capped`). */
    readonly deferred: number;
    /**
     * Set when `queued` or `deferred` stopped counting past
     * {@link TROUBLED_COUNT_CAP} (at one more), so a scrape costs the same
     * however long a dead destination's backlog grows; show them with
     * {@link troubledCount}.
     */
    readonly capped?: true;
  }[];
  /** Due routes held back by a destination's rate limit now, over every destination. */
  readonly deferredByLimit: number;
}

/** How far `stats` counts a troubled destination's queued and deferred routes. */
export const TROUBLED_COUNT_CAP = 1_000;

/** A troubled destination's count as a person reads it: `>1000` past the cap. */
export function troubledCount(n: number): string {
  return n > TROUBLED_COUNT_CAP ? `>${TROUBLED_COUNT_CAP}` : String(n);
}

/** Filters of `listRoutes`; every one given must match. */
export interface RouteFilter {
  /** Only routes in this status. */
  readonly status?: RouteStatus;
  /** Only routes of this channel. */
  readonly channel?: string;
  /** Only routes counted against this destination key (see `RouteRecord.destinationKey`). */
  readonly destination?: string;
  /** Only routes of notifications of this kind. */
  readonly kind?: string;
  /** Only routes last changed at or after this time. */
  readonly since?: Date;
  /** Only routes last changed before this time. */
  readonly until?: Date;
  /**
   * The next page: only routes after this one in the listing's order (pass
   * the last route of the page before). Keyset, so a page costs the same on
   * the millionth route as on the first.
   */
  readonly after?: { readonly updatedAt: Date; readonly id: string };
  /** At most this many, last changed first; default 50, at most 10,000. */
  readonly limit?: number;
}

/** Routes finished in one minute, for the dashboard's chart. */
export interface ActivityPoint {
  /** The minute's start. */
  readonly at: Date;
  /** Routes delivered in that minute. */
  readonly sent: number;
  /** Routes failed for good in that minute. */
  readonly failed: number;
}

/** A notification as written, for a route's detail. */
export interface NotificationRecord {
  /** The notification's id. */
  readonly id: string;
  /** Its kind, e.g. `order.shipped`. */
  readonly kind: string;
  /** The payload as the application wrote it (JSON). */
  readonly payload: unknown;
  /** When it was enqueued. */
  readonly createdAt: Date;
}

/**
 * Which routes `retry` makes due again; `failed: true` takes poisoned routes
 * too, but never one that was delivered (a poisoned route whose `sent` the
 * database refused carries `sent_at`): that one only by id with `force`.
 */
export type RetrySelection =
  | { readonly ids: readonly string[] }
  | {
    readonly failed: true;
    readonly channel?: string;
    /** Only routes counted against this destination key. */
    readonly destination?: string;
    readonly since?: Date;
  };

/** What `retry` and `cancel` did. */
export interface ChangeResult {
  /** Routes changed. */
  readonly changed: number;
  /** Routes skipped: in flight (a worker holds them) or in a status the change does not apply to. */
  readonly skipped: number;
  /** Ids that matched no route. */
  readonly notFound: readonly string[];
  /** Sent routes left alone because `force` was not given (retry only). */
  readonly refusedSent: number;
}

/** Options of `prune`. */
export interface PruneOptions {
  /** Delete routes finished (last updated) longer ago than this. */
  readonly olderThanMs: number;
  /** Which finished statuses; default all three. `queued` is never pruned. */
  readonly statuses?: readonly PrunableStatus[];
  /** Routes per batch, each batch one short transaction; default 1,000. */
  readonly batchSize?: number;
  /**
   * The share of its time a prune keeps a batch running, from above 0 to 1:
   * after a batch that took `t`, it waits `t × (1 − dutyCycle) / dutyCycle`
   * before the next, so the workers beside it keep most of the database.
   * Default 0.25: a prune beside busy workers takes about four times as long
   * as flat out and leaves them most of the database; 1 runs batch after batch.
   */
  readonly dutyCycle?: number;
  /**
   * Called after each batch that deleted routes, with the running total and
   * how long that batch's transaction took (as long as any row stayed locked
   * by the prune).
   */
  readonly onProgress?: (deleted: number, batchMs: number) => void;
  /** Count what would be deleted, delete nothing. */
  readonly dryRun?: boolean;
  /** Stops the prune between batches; it resolves with the routes deleted by then. */
  readonly signal?: AbortSignal;
}

/** A status `prune` may delete. */
export type PrunableStatus = "sent" | "failed" | "cancelled";

/** The statuses `prune` may delete, its default. */
export const PRUNABLE: readonly PrunableStatus[] = ["sent", "failed", "cancelled"];

/** {@link PruneOptions} checked, with the defaults filled in. */
export interface PrunePlan {
  /** As given. */
  readonly olderThanMs: number;
  /** As given (each once), or all three. */
  readonly statuses: readonly PrunableStatus[];
  /** As given, or 1,000. */
  readonly batchSize: number;
  /** As given, or 0.25. */
  readonly dutyCycle: number;
}

/** The oldest cut a prune takes: 100 years (Postgres's timestamps end long after, JavaScript's dates too). */
const MAX_AGE_MS = 100 * 365.25 * 86_400_000;

/** Checks `options`; throws {@link InvalidArgumentError} naming the field at fault. */
export function checkPrune(options: PruneOptions): PrunePlan {
  const { olderThanMs } = options;
  if (
    typeof olderThanMs !== "number" || !Number.isFinite(olderThanMs) || olderThanMs < 0 ||
    olderThanMs > MAX_AGE_MS
  ) {
    throw new InvalidArgumentError(
      "olderThanMs",
      "must be a number of milliseconds from 0 to 100 years",
      olderThanMs,
    );
  }
  const statuses = options.statuses ?? PRUNABLE;
  if (
    !Array.isArray(statuses) || statuses.length === 0 ||
    statuses.some((st) => !PRUNABLE.includes(st))
  ) {
    throw new InvalidArgumentError(
      "statuses",
      `must list only ${PRUNABLE.join(", ")}`,
      Array.isArray(statuses) ? statuses.join(",") : statuses,
    );
  }
  const batchSize = options.batchSize ?? 1_000;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
    throw new InvalidArgumentError("batchSize", "must be an integer from 1 to 100000", batchSize);
  }
  const dutyCycle = options.dutyCycle ?? 0.25;
  if (typeof dutyCycle !== "number" || !(dutyCycle > 0 && dutyCycle <= 1)) {
    throw new InvalidArgumentError("dutyCycle", "must be a number above 0, at most 1", dutyCycle);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") {
    throw new InvalidArgumentError("onProgress", "must be a function", typeof options.onProgress);
  }
  if (options.dryRun !== undefined && typeof options.dryRun !== "boolean") {
    throw new InvalidArgumentError("dryRun", "must be true or false", options.dryRun);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError("signal", "must be an AbortSignal");
  }
  return { olderThanMs, statuses: [...new Set(statuses)], batchSize, dutyCycle };
}

/** How long to rest after a batch that took `tookMs`, for `dutyCycle`. */
export function pruneRestMs(tookMs: number, dutyCycle: number): number {
  return Math.max(0, tookMs) * (1 - dutyCycle) / dutyCycle;
}
