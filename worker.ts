/**
 * The worker: claim a due route, send it through its channel, record the
 * outcome, all in one transaction per route, so a slow channel holds one row
 * lock at a time and a crashed worker's routes are free again the moment its
 * connection drops.
 *
 * @example
 * ```ts ignore
 * import { Worker } from "./worker.ts";
 * import { PostgresStore } from "./store.ts";
 * import { logChannel } from "./channels/log.ts";
 *
 * const store = new PostgresStore({ url: "postgres://postgres@127.0.0.1:5432/test" });
 * await store.migrate();
 * const worker = new Worker({ store, channels: { log: logChannel() } });
 * const stop = new AbortController();
 * setTimeout(() => stop.abort(), 1000);
 * await worker.run(stop.signal);
 * await store.close();
 * ```
 *
 * @module
 */
import type { Channel } from "./channels/channel.ts";
import { HeraldError, InvalidArgumentError } from "./errors.ts";
import type { DeliveryDetails } from "./errors.ts";
import { jsonLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";
import { backoff, checkRetryPolicy } from "./retry.ts";
import type { RetryPolicy } from "./retry.ts";
import type { Outcome, Route } from "./route.ts";
import type { Store } from "./store.ts";
import { describeError } from "./_redact.ts";
import { CHANNEL_NAME } from "./_validate.ts";

/** Defaults of {@link WorkerOptions}. */
export const WORKER_DEFAULTS = {
  interval: 5_000,
  routesPerTick: 100,
  maxAttempts: 10,
  sendTimeoutMs: 30_000,
  shutdownTimeoutMs: 10_000,
} as const;

/**
 * How much longer than a send may a route transaction live before Postgres
 * ends it; covers the claim and finalise queries around the send.
 */
const LOCK_MARGIN_MS = 5_000;

/** Options of {@link Worker}. */
export interface WorkerOptions {
  /** Where routes are claimed and finalised. */
  readonly store: Store;
  /** Channels by name; a route's `channel` picks one. */
  readonly channels: Readonly<Record<string, Channel>>;
  /** Milliseconds between ticks; unset or <= 0 means 5 s. */
  readonly interval?: number;
  /** Most routes one tick handles (each in its own transaction); default 100. */
  readonly routesPerTick?: number;
  /** Attempts before a route fails for good, unless the route sets its own; default 10. */
  readonly maxAttempts?: number;
  /** Backoff between attempts; default 1 s doubling to 1 h, with jitter. */
  readonly retry?: Partial<RetryPolicy>;
  /** A send taking longer is aborted and retried; default 30 s. */
  readonly sendTimeoutMs?: number;
  /** How long `shutdown()` (or aborting `run`'s signal) lets sends finish; default 10 s. */
  readonly shutdownTimeoutMs?: number;
  /** Default: JSON lines on standard error at `info`. */
  readonly logger?: Logger;
  /** Randomness for backoff jitter; default `Math.random`. */
  readonly random?: () => number;
  /**
   * Waits between ticks; resolves early when `signal` aborts. Injected by
   * tests to drive `run` without timers.
   */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Options of {@link Worker.shutdown}. */
export interface ShutdownOptions {
  /** How long in-flight sends may take before they are aborted; default the worker's `shutdownTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** The lifecycle every long-running Herald part offers. */
export interface Lifecycle {
  /** Runs until `signal` aborts or `shutdown()` is called; never rejects for a failed tick. */
  run(signal?: AbortSignal): Promise<void>;
  /** Stops claiming, lets in-flight work finish up to a deadline, then aborts it. */
  shutdown(options?: ShutdownOptions): Promise<void>;
}

/** The `detail` of the worker's events. */
export interface RouteEventDetail {
  readonly routeId: string;
  readonly channel: string;
  /** The attempt's number, starting at 1. */
  readonly attempt: number;
  /** Secret-free reason, for `retry` and `failed`. */
  readonly error?: string;
  /** For `retry`: how long until the route is due again. */
  readonly delayMs?: number;
  /** The provider's HTTP status, when the channel reported one. */
  readonly httpStatus?: number;
}

/** Names of the events a {@link Worker} dispatches, each a `CustomEvent<RouteEventDetail>`. */
export type WorkerEventName = "claimed" | "sent" | "retry" | "failed";

/** Raised inside a route's transaction to roll it back when shutdown cut a send short. */
class SendAborted extends HeraldError {
  constructor() {
    super(
      "HERALD_SEND_TIMEOUT",
      "the worker shut down before the send finished; the route was released",
    );
  }
}

/**
 * Drains due routes. `run(signal)` ticks at once, then once per `interval`;
 * `tick()` is public so tests drive it without timers. Dispatches
 * `claimed`, `sent`, `retry` and `failed` events ({@link RouteEventDetail}).
 *
 * @example
 * ```ts ignore
 * const worker = new Worker({ store, channels: { webhook: webhookChannel() } });
 * worker.addEventListener("failed", (e) => alert((e as CustomEvent).detail));
 * await worker.tick(); // handle what is due now, then return
 * ```
 */
export class Worker extends EventTarget implements Lifecycle {
  readonly #store: Store;
  readonly #channels: ReadonlyMap<string, Channel>;
  readonly #interval: number;
  readonly #routesPerTick: number;
  readonly #maxAttempts: number;
  readonly #retry: RetryPolicy;
  readonly #sendTimeoutMs: number;
  readonly #shutdownTimeoutMs: number;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Aborted first on shutdown: no new claims. */
  readonly #stop = new AbortController();
  /** Aborted at the shutdown deadline: in-flight sends are cut. */
  readonly #hard = new AbortController();
  readonly #busy = new Set<Promise<unknown>>();
  #running = false;
  #stopping: Promise<void> | undefined;

  /** Checks every option; throws {@link InvalidArgumentError} naming the first bad one. */
  constructor(options: WorkerOptions) {
    super();
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError("options", "must be an object", options);
    }
    const store = options.store;
    if (typeof store?.transaction !== "function") {
      throw new InvalidArgumentError("store", "must be a Store (e.g. a PostgresStore)");
    }
    this.#store = store;
    this.#channels = checkChannels(options.channels);
    this.#interval = checkInterval(options.interval);
    this.#routesPerTick = positiveInt(
      "routesPerTick",
      options.routesPerTick,
      WORKER_DEFAULTS.routesPerTick,
      100_000,
    );
    this.#maxAttempts = positiveInt(
      "maxAttempts",
      options.maxAttempts,
      WORKER_DEFAULTS.maxAttempts,
      1_000,
    );
    this.#retry = checkRetryPolicy(options.retry);
    this.#sendTimeoutMs = positiveMs(
      "sendTimeoutMs",
      options.sendTimeoutMs,
      WORKER_DEFAULTS.sendTimeoutMs,
    );
    this.#shutdownTimeoutMs = nonNegativeMs(
      "shutdownTimeoutMs",
      options.shutdownTimeoutMs,
      WORKER_DEFAULTS.shutdownTimeoutMs,
    );
    this.#logger = checkFunctionHolder("logger", options.logger, "log") ?? jsonLogger();
    this.#random = checkFunction("random", options.random) ?? Math.random;
    this.#sleep = checkFunction("sleep", options.sleep) ?? sleep;
  }

  /**
   * Ticks at once (routes queued before a restart go out immediately), then
   * once per interval until `signal` aborts or `shutdown()` is called. A
   * failed tick is logged as a warning and the loop goes on. Aborting
   * `signal` shuts down gracefully; `run` resolves once every route it held
   * is released.
   */
  async run(signal?: AbortSignal): Promise<void> {
    if (this.#running) {
      throw new HeraldError(
        "HERALD_INVALID_ARGUMENT",
        "Cannot run: this worker is already running",
      );
    }
    this.#running = true;
    const onAbort = (): void => void this.shutdown();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    const loop = this.#loop();
    this.#track(loop);
    try {
      await loop;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#running = false;
    }
    await this.#stopping;
  }

  async #loop(): Promise<void> {
    const stop = this.#stop.signal;
    this.#logger.log("info", "worker started", {
      interval_ms: this.#interval,
      routes_per_tick: this.#routesPerTick,
      channels: [...this.#channels.keys()].join(","),
    });
    while (!stop.aborted) {
      try {
        await this.tick();
      } catch (err) {
        this.#logger.log("warn", "tick failed; the loop goes on", { error: describeError(err) });
      }
      if (stop.aborted) break;
      await this.#sleep(this.#interval, stop);
    }
    this.#logger.log("info", "worker stopped");
  }

  /**
   * Handles up to `routesPerTick` due routes, one transaction each, and
   * resolves with how many it handled. Stops early when a claim finds nothing
   * or `signal` aborts. Routes handled in this tick are not claimed again in
   * it, so a retry that is due at once cannot burn through its attempts.
   */
  tick(signal?: AbortSignal): Promise<number> {
    return this.#track(this.#tick(signal));
  }

  async #tick(signal: AbortSignal | undefined): Promise<number> {
    const seen = new Set<string>();
    let handled = 0;
    while (handled < this.#routesPerTick && !signal?.aborted && !this.#stop.signal.aborted) {
      let done: { route: Route; outcome: Outcome; details: DeliveryDetails } | undefined;
      try {
        done = await this.#store.transaction(
          (tx) => this.#handleOne(tx, seen),
          { lockTimeoutMs: this.#sendTimeoutMs + LOCK_MARGIN_MS },
        );
      } catch (err) {
        if (err instanceof SendAborted) {
          this.#logger.log("info", err.message);
          break;
        }
        throw err;
      }
      if (!done) break;
      handled++;
      this.#report(done.route, done.outcome, done.details);
    }
    return handled;
  }

  async #handleOne(
    tx: Parameters<Parameters<Store["transaction"]>[0]>[0],
    seen: Set<string>,
  ): Promise<{ route: Route; outcome: Outcome; details: DeliveryDetails } | undefined> {
    const [route] = await tx.claimDue({ limit: 1, exclude: [...seen] });
    if (!route) return undefined;
    seen.add(route.id);
    const { outcome, details } = await this.#attempt(route);
    await tx.finalise(route.id, outcome);
    return { route, outcome, details };
  }

  async #attempt(route: Route): Promise<{ outcome: Outcome; details: DeliveryDetails }> {
    const attempt = route.attempts + 1;
    const channel = this.#channels.get(route.channel);
    if (!channel) {
      const error = `channel '${route.channel}' is not configured on this worker`;
      return { outcome: { status: "failed", attempts: attempt, error }, details: {} };
    }
    this.#emit("claimed", { routeId: route.id, channel: route.channel, attempt });
    try {
      const details = await this.#send(channel, route, attempt);
      return { outcome: { status: "sent", attempts: attempt }, details };
    } catch (err) {
      // Shutdown cut the send short: roll back so the attempt is not spent.
      if (this.#hard.signal.aborted) throw new SendAborted();
      return { outcome: this.#classify(err, route, attempt), details: httpStatusOf(err) };
    }
  }

  /** Runs the channel with a timeout; a channel that ignores its signal is cut off anyway. */
  async #send(channel: Channel, route: Route, attempt: number): Promise<DeliveryDetails> {
    const abort = new AbortController();
    const timer = setTimeout(
      () =>
        abort.abort(
          new HeraldError("HERALD_SEND_TIMEOUT", `send timed out after ${this.#sendTimeoutMs} ms`),
        ),
      this.#sendTimeoutMs,
    );
    const onHard = (): void => abort.abort(this.#hard.signal.reason);
    this.#hard.signal.addEventListener("abort", onHard, { once: true });
    if (this.#hard.signal.aborted) onHard();
    try {
      const sending = new Promise<DeliveryDetails | void>((resolve) =>
        resolve(channel.send(route, { signal: abort.signal, attempt }))
      );
      const result = await raceAbort(sending, abort.signal);
      return typeof result === "object" && result !== null ? result : {};
    } finally {
      clearTimeout(timer);
      this.#hard.signal.removeEventListener("abort", onHard);
    }
  }

  #classify(err: unknown, route: Route, attempts: number): Outcome {
    const error = describeError(err);
    const code = (err as { code?: unknown } | null)?.code;
    if (code === "HERALD_PERMANENT") return { status: "failed", attempts, error };
    const max = route.maxAttempts ?? this.#maxAttempts;
    if (attempts >= max) {
      return { status: "failed", attempts, error: `gave up after ${attempts} attempts: ${error}` };
    }
    const retryAfter = code === "HERALD_RETRY_LATER"
      ? (err as { retryAfterMs?: unknown }).retryAfterMs
      : undefined;
    const delayMs = typeof retryAfter === "number" && Number.isFinite(retryAfter)
      ? Math.min(Math.max(retryAfter, 0), this.#retry.maxMs)
      : backoff(attempts, this.#retry, this.#random);
    return { status: "retry", attempts, delayMs, error };
  }

  #report(route: Route, outcome: Outcome, details: DeliveryDetails): void {
    const base = {
      routeId: route.id,
      channel: route.channel,
      attempt: outcome.attempts,
      ...details,
    };
    const fields = { route_id: route.id, channel: route.channel, attempt: outcome.attempts };
    switch (outcome.status) {
      case "sent":
        this.#logger.log("debug", "route sent", fields);
        this.#emit("sent", base);
        return;
      case "retry":
        this.#logger.log("info", "route will be retried", {
          ...fields,
          delay_ms: outcome.delayMs,
          error: outcome.error,
        });
        this.#emit("retry", { ...base, error: outcome.error, delayMs: outcome.delayMs });
        return;
      case "failed":
        this.#logger.log("warn", "route failed for good", { ...fields, error: outcome.error });
        this.#emit("failed", { ...base, error: outcome.error });
        return;
    }
  }

  #emit(name: WorkerEventName, detail: RouteEventDetail): void {
    this.dispatchEvent(new CustomEvent<RouteEventDetail>(name, { detail }));
  }

  /**
   * Stops claiming at once, lets in-flight sends finish for up to
   * `timeoutMs`, then aborts them: their transactions roll back, so their
   * routes are claimable again with no attempt spent. Safe to call twice;
   * resolves when everything the worker held is released.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    this.#stopping ??= this.#drain(
      nonNegativeMs("timeoutMs", options.timeoutMs, this.#shutdownTimeoutMs),
    );
    return this.#stopping;
  }

  async #drain(timeoutMs: number): Promise<void> {
    this.#stop.abort();
    const settled = Promise.allSettled([...this.#busy]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"deadline">((resolve) => {
      timer = setTimeout(() => resolve("deadline"), timeoutMs);
    });
    const first = await Promise.race([settled, deadline]);
    clearTimeout(timer);
    if (first === "deadline") {
      this.#logger.log("warn", "shutdown deadline passed; aborting in-flight sends", {
        timeout_ms: timeoutMs,
      });
      this.#hard.abort(new HeraldError("HERALD_SEND_TIMEOUT", "worker shut down"));
      await settled;
    }
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#busy.add(work);
    const forget = (): void => void this.#busy.delete(work);
    work.then(forget, forget);
    return work;
  }
}

function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Waits `ms`, or less if `signal` aborts; never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function httpStatusOf(err: unknown): DeliveryDetails {
  const status = (err as { httpStatus?: unknown } | null)?.httpStatus;
  return typeof status === "number" ? { httpStatus: status } : {};
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
  return value <= 0 ? WORKER_DEFAULTS.interval : value;
}

function positiveInt(field: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(field, `must be an integer from 1 to ${max}`, value);
  }
  return value;
}

function positiveMs(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 2_147_483_647) {
    throw new InvalidArgumentError(
      field,
      "must be a positive number of milliseconds (at most 2^31-1)",
      value,
    );
  }
  return value;
}

function nonNegativeMs(field: string, value: unknown, fallback: number): number {
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

function checkFunction<T>(field: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== "function") {
    throw new InvalidArgumentError(field, "must be a function", value);
  }
  return value;
}

function checkFunctionHolder<T>(
  field: string,
  value: T | undefined,
  method: string,
): T | undefined {
  if (
    value !== undefined && typeof (value as Record<string, unknown> | null)?.[method] !== "function"
  ) {
    throw new InvalidArgumentError(field, `must have a ${method}() method`);
  }
  return value;
}
