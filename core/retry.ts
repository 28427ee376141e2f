/**
 * The retry policy: a pure function of the attempt number, the policy and a
 * random source, so tests can pin it exactly.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { refuseUnknownOptions } from "./_fields.ts";

/** Exponential backoff with jitter, capped. */
export interface RetryPolicy {
  /** Delay before the first retry, before jitter; default 1 s. */
  readonly baseMs: number;
  /** No delay exceeds this, `Retry-After` included; default 1 h. */
  readonly maxMs: number;
  /**
   * No retry comes sooner than this, `Retry-After: 0` included; default
   * 500 ms. A busy worker ticks back to back, and each tick may claim a route
   * again, so a zero delay could spend every attempt in a burst.
   */
  readonly minMs: number;
}

/**
 * The longest delay Herald schedules: 30 days. A longer one is no retry
 * policy, and a delay Postgres's interval arithmetic refuses would fail every
 * finalise of the route it belongs to.
 */
export const MAX_DELAY_MS = 30 * 86_400_000;

/** The default policy: 1 s doubling up to 1 h, never sooner than 500 ms. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 1_000, maxMs: 3_600_000, minMs: 500 };

/**
 * The delay before retrying after `attempts` failed attempts (1 = the first
 * failure). The exponential delay is capped at `maxMs`, then jittered into its
 * upper half, so a burst of failures does not come back as a burst while the
 * wait still grows with every attempt.
 *
 * @example
 * ```ts
 * import { backoff } from "./retry.ts";
 * backoff(3, { baseMs: 1000, maxMs: 60_000 }, () => 1); // 4000
 * backoff(3, { baseMs: 1000, maxMs: 60_000 }, () => 0); // 2000
 * ```
 */
export function backoff(
  attempts: number,
  policy: Pick<RetryPolicy, "baseMs" | "maxMs"> & { readonly minMs?: number },
  random: () => number,
): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 52);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.max(Math.round(ceiling / 2 + (ceiling / 2) * r), policy.minMs ?? 0);
}

/** Checks a policy given by the user, naming the field at fault. */
export function checkRetryPolicy(policy: Partial<RetryPolicy> | undefined): RetryPolicy {
  refuseUnknownOptions<RetryPolicy>(
    policy,
    { baseMs: true, maxMs: true, minMs: true },
    "retry",
    "retry.",
  );
  const merged = { ...DEFAULT_RETRY_POLICY, ...policy };
  // The default floor yields to a smaller cap the user chose (`maxMs: 0` means no waiting).
  if (policy?.minMs === undefined && typeof merged.maxMs === "number") {
    merged.minMs = Math.min(DEFAULT_RETRY_POLICY.minMs, merged.maxMs);
  }
  for (const key of ["baseMs", "maxMs", "minMs"] as const) {
    const v = merged[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > MAX_DELAY_MS) {
      throw new InvalidArgumentError(
        `retry.${key}`,
        `must be a number of milliseconds from 0 to ${MAX_DELAY_MS} (30 days)`,
        v,
      );
    }
  }
  if (merged.minMs > merged.maxMs) {
    throw new InvalidArgumentError(
      "retry.minMs",
      `must be <= retry.maxMs (${merged.maxMs})`,
      merged.minMs,
    );
  }
  if (merged.maxMs < merged.baseMs) {
    throw new InvalidArgumentError(
      "retry.maxMs",
      `must be >= retry.baseMs (${merged.baseMs})`,
      merged.maxMs,
    );
  }
  return merged;
}
