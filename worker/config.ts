/**
 * The worker's options: their defaults and their checks. Every bad value is
 * refused at construction with an {@link InvalidArgumentError} naming it.
 *
 * @module
 */
import type { Channel } from "../channels/channel.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { jsonLogger } from "../observe/logger.ts";
import type { Logger } from "../observe/logger.ts";
import { checkRetryPolicy } from "../core/retry.ts";
import { type FieldNames, refuseUnknownOptions } from "../core/_fields.ts";
import type { RetryPolicy } from "../core/retry.ts";
import type { Store } from "../store.ts";
import { CHANNEL_NAME } from "../core/_validate.ts";
import { sleep } from "../core/_async.ts";
import type { Tracer } from "@opentelemetry/api";
import type { TracerLike } from "../core/telemetry.ts";
import { heraldTracer } from "../observe/tracing.ts";
import { DESTINATION_DEFAULTS } from "../core/destination.ts";
import type { DestinationPolicy } from "../core/destination.ts";
import type { ChannelRate } from "../core/transaction.ts";
import { ratesOf } from "./_rates.ts";

/**
 * How much longer than a send may a route transaction live before Postgres
 * ends it; covers the claim and finalise queries around the send.
 */
export const LOCK_MARGIN_MS = 5_000;
/** The poll interval is shortened by up to this fraction, so workers drift apart. */
export const POLL_JITTER = 0.1;

/** Defaults of {@link WorkerOptions}. */
export const WORKER_DEFAULTS = {
  interval: 5_000,
  routesPerTick: 100,
  routesPerTransaction: 1,
  concurrency: 1,
  maxAttempts: 10,
  sendTimeoutMs: 30_000,
  shutdownTimeoutMs: 10_000,
} as const;

/** Every option of {@link WorkerOptions}, to refuse a misspelt one. */
const WORKER_OPTIONS: FieldNames<WorkerOptions> = {
  ...{ store: true, channels: true, interval: true, routesPerTick: true, concurrency: true },
  ...{ routesPerTransaction: true, listen: true, maxAttempts: true, retry: true },
  ...{ sendTimeoutMs: true, destinations: true, shutdownTimeoutMs: true, tracer: true },
  ...{ logger: true, random: true, now: true, sleep: true },
};

/** Why the worker waits; see {@link WorkerOptions.sleep}. */
export type SleepPurpose = "poll" | "probe" | "relisten";

/** Options of `Worker`. */
export interface WorkerOptions {
  /** Where routes are claimed and finalised. */
  readonly store: Store;
  /** Channels by name; a route's `channel` picks one. */
  readonly channels: Readonly<Record<string, Channel>>;
  /** Milliseconds between polls; unset or <= 0 means 5 s. Up to 10% is shaved off at random. */
  readonly interval?: number;
  /** Most routes one tick handles; default 100. A full tick is followed by another at once. */
  readonly routesPerTick?: number;
  /**
   * Routes claimed, sent (concurrently) and finalised per transaction; default 1,
   * the one-route-per-transaction design. Larger values trade a longer-held
   * batch of locks for far fewer round trips. In batch mode a loop claims its
   * next batch while the current one sends (two transactions, so give the
   * store's pool two connections per loop).
   */
  readonly routesPerTransaction?: number;
  /** Claim loops, each with its own connection while it holds a route; default 1. */
  readonly concurrency?: number;
  /**
   * Wake on the store's notifications (Postgres `LISTEN`) instead of waiting
   * for the next poll; default true. Behind PgBouncer in transaction pooling
   * mode, give `PostgresStore` a direct `listenUrl`, or set false to poll only.
   */
  readonly listen?: boolean;
  /** Attempts before a route fails for good, unless the route sets its own; default 10. */
  readonly maxAttempts?: number;
  /** Backoff between attempts; default 1 s doubling to 1 h, with jitter. */
  readonly retry?: Partial<RetryPolicy>;
  /** A send taking longer is aborted and retried; default 30 s. */
  readonly sendTimeoutMs?: number;
  /**
   * Each destination's health (see `docs/destinations.md`): the circuit
   * breaker's settings (a destination may override `failureThreshold` and
   * `cooldownMs`), and `maxInFlight`, the cap on sends in flight at once to
   * one destination named by origin, across the fleet, unless the
   * destination sets its own; default half of `concurrency`, at least 1.
   */
  readonly destinations?: Partial<DestinationPolicy & { readonly maxInFlight: number }>;
  /** How long `shutdown()` (or aborting `run`'s signal) lets sends finish; default 10 s. */
  readonly shutdownTimeoutMs?: number;
  /**
   * Traces each attempt as a consumer span `process <channel>` (OpenTelemetry
   * API; a no-op until the application registers an SDK). Default: the
   * global provider's `herald` tracer; `false` turns Herald's spans off (the
   * stored trace context is still handed on to receivers).
   */
  readonly tracer?: TracerLike | false;
  /** Default: JSON lines on standard error at `info`. */
  readonly logger?: Logger;
  /** Randomness for backoff and poll jitter; default `Math.random`. */
  readonly random?: () => number;
  /** The wall clock stamped on attempts; default `Date.now`. */
  readonly now?: () => number;
  /**
   * Every wait the worker makes: between ticks (`poll`), between the
   * listener's probes (`probe`) and before it subscribes again (`relisten`).
   * Must resolve early when `signal` aborts. Injected by tests to drive `run`
   * without timers.
   */
  readonly sleep?: (ms: number, signal: AbortSignal, purpose: SleepPurpose) => Promise<void>;
}

/** Options after defaults and checks. */
export interface WorkerConfig {
  readonly store: Store;
  readonly channels: ReadonlyMap<string, Channel>;
  readonly interval: number;
  readonly routesPerTick: number;
  readonly routesPerTransaction: number;
  readonly concurrency: number;
  readonly listen: boolean;
  readonly maxAttempts: number;
  readonly retry: RetryPolicy;
  readonly sendTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly destinations: DestinationPolicy;
  /** The default in-flight cap of a destination named by origin. */
  readonly maxInFlight: number;
  /** The channels' own rate limits, per destination. */
  readonly rates: readonly ChannelRate[];
  readonly logger: Logger;
  readonly tracer: Tracer | false;
  readonly random: () => number;
  readonly now: () => number;
  readonly sleep: (ms: number, signal: AbortSignal, purpose: SleepPurpose) => Promise<void>;
}

/** Applies defaults and checks every option; throws naming the first bad one. */
export function resolveWorkerOptions(options: WorkerOptions): WorkerConfig {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("options", "must be an object", options);
  }
  const store = options.store;
  if (typeof store?.transaction !== "function") {
    throw new InvalidArgumentError("store", "must be a Store (e.g. a PostgresStore)");
  }
  if (options.listen !== undefined && typeof options.listen !== "boolean") {
    throw new InvalidArgumentError("listen", "must be true or false", options.listen);
  }
  const logger = options.logger;
  if (logger !== undefined && typeof (logger as Partial<Logger> | null)?.log !== "function") {
    throw new InvalidArgumentError("logger", "must have a log(level, message, fields) method");
  }
  refuseUnknownOptions(options, WORKER_OPTIONS, "Worker");
  const d = WORKER_DEFAULTS;
  const concurrency = positiveInt("concurrency", options.concurrency, d.concurrency, 1_000);
  const channels = checkChannels(options.channels);
  const destinations = checkDestinations(options.destinations);
  return {
    store,
    channels,
    interval: checkInterval(options.interval),
    routesPerTick: positiveInt("routesPerTick", options.routesPerTick, d.routesPerTick, 100_000),
    routesPerTransaction: positiveInt(
      "routesPerTransaction",
      options.routesPerTransaction,
      d.routesPerTransaction,
      10_000,
    ),
    concurrency,
    destinations: destinations.policy,
    maxInFlight: destinations.maxInFlight ?? Math.max(1, Math.floor(concurrency / 2)),
    rates: ratesOf(channels),
    listen: options.listen ?? true,
    maxAttempts: positiveInt("maxAttempts", options.maxAttempts, d.maxAttempts, 1_000),
    retry: checkRetryPolicy(options.retry),
    // Leaves room for the lock margin added on top (Postgres timeouts are int4 milliseconds).
    sendTimeoutMs: positiveMs(
      "sendTimeoutMs",
      options.sendTimeoutMs,
      d.sendTimeoutMs,
      2_147_000_000,
    ),
    shutdownTimeoutMs: checkMs("shutdownTimeoutMs", options.shutdownTimeoutMs, d.shutdownTimeoutMs),
    logger: logger ?? jsonLogger(),
    tracer: checkTracer(options.tracer),
    random: checkFunction("random", options.random) ?? Math.random,
    now: checkFunction("now", options.now) ?? Date.now,
    sleep: checkFunction("sleep", options.sleep) ?? sleep,
  };
}

/**
 * Checks worker options without building a worker (and without a store), so
 * a program can refuse bad settings before it opens a database. Throws
 * `InvalidArgumentError` naming the first bad option.
 */
export function checkWorkerOptions(options: Omit<WorkerOptions, "store">): void {
  resolveWorkerOptions({ ...options, store: CHECK_ONLY });
}

/** A stand-in store for {@link checkWorkerOptions}: never called. */
const CHECK_ONLY = {
  transaction: () => Promise.reject(new Error("checkWorkerOptions: not a store")),
} as unknown as Store;

/** A millisecond count from 0 to 2^31-1 (what timers accept), or the fallback. */
export function checkMs(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 2_147_483_647) {
    throw new InvalidArgumentError(
      field,
      "must be a number of milliseconds from 0 to 2^31-1",
      value,
    );
  }
  return value;
}

function checkChannels(channels: unknown): ReadonlyMap<string, Channel> {
  if (typeof channels !== "object" || channels === null || Array.isArray(channels)) {
    throw new InvalidArgumentError(
      "channels",
      "must be an object mapping channel names to channels",
      channels,
    );
  }
  const map = new Map<string, Channel>();
  for (const [name, channel] of Object.entries(channels)) {
    if (!CHANNEL_NAME.test(name)) {
      throw new InvalidArgumentError(
        "channels",
        "names must be 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter",
        name,
      );
    }
    if (typeof (channel as Channel | null)?.send !== "function") {
      throw new InvalidArgumentError(`channels.${name}`, "must have a send(route, ctx) method");
    }
    map.set(name, channel as Channel);
  }
  return map;
}

function checkInterval(value: unknown): number {
  if (value === undefined) return WORKER_DEFAULTS.interval;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InvalidArgumentError("interval", "must be a finite number of milliseconds", value);
  }
  if (value > 2_147_483_647) {
    throw new InvalidArgumentError("interval", "must be at most 2^31-1 milliseconds", value);
  }
  return value <= 0 ? WORKER_DEFAULTS.interval : value;
}

function positiveInt(field: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(field, `must be an integer from 1 to ${max}`, value);
  }
  return value;
}

function positiveMs(field: string, value: unknown, fallback: number, max = 2_147_483_647): number {
  const ms = checkMs(field, value, fallback);
  if (ms === 0 || ms > max) {
    throw new InvalidArgumentError(
      field,
      `must be more than 0 and at most ${max} milliseconds`,
      value,
    );
  }
  return ms;
}

function checkDestinations(
  value: unknown,
): { policy: DestinationPolicy; maxInFlight: number | undefined } {
  if (value === undefined) return { policy: DESTINATION_DEFAULTS, maxInFlight: undefined };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError("destinations", "must be an object", value);
  }
  const o = value as Record<string, unknown>;
  refuseUnknownOptions<NonNullable<WorkerOptions["destinations"]>>(
    o,
    {
      failureThreshold: true,
      cooldownMs: true,
      maxCooldownMs: true,
      disableAfterMs: true,
      maxInFlight: true,
    },
    "the destination settings",
    "destinations.",
  );
  const d = DESTINATION_DEFAULTS;
  const f = (name: string): string => `destinations.${name}`;
  return {
    policy: {
      failureThreshold: positiveInt(
        f("failureThreshold"),
        o["failureThreshold"],
        d.failureThreshold,
        1_000_000,
      ),
      cooldownMs: positiveMs(f("cooldownMs"), o["cooldownMs"], d.cooldownMs),
      maxCooldownMs: positiveMs(f("maxCooldownMs"), o["maxCooldownMs"], d.maxCooldownMs),
      disableAfterMs: positiveNumber(f("disableAfterMs"), o["disableAfterMs"], d.disableAfterMs),
    },
    maxInFlight: o["maxInFlight"] === undefined
      ? undefined
      : positiveInt(f("maxInFlight"), o["maxInFlight"], 1, 1_000_000),
  };
}

/** Milliseconds beyond a timer's range allowed (a window, not a wait). */
function positiveNumber(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(field, "must be a positive number of milliseconds", value);
  }
  return value;
}

function checkTracer(value: unknown): Tracer | false {
  if (value === undefined) return heraldTracer();
  if (value === false || typeof (value as Partial<TracerLike> | null)?.startSpan === "function") {
    return value as unknown as Tracer | false;
  }
  throw new InvalidArgumentError("tracer", "must be an OpenTelemetry Tracer or false");
}

function checkFunction<T>(field: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== "function") {
    throw new InvalidArgumentError(field, "must be a function", value);
  }
  return value;
}
