/**
 * The worker: claim due routes, send them through their channels, record the
 * outcomes, all inside the routes' own transaction, so a crashed worker's
 * routes are free again the moment its connection drops.
 *
 * @example
 * ```ts
 * import { Worker } from "./worker.ts";
 * import { PostgresStore } from "./store.ts";
 * import { logChannel } from "./channels/log.ts";
 *
 * export async function serve(url: string, stop: AbortSignal): Promise<void> {
 *   const store = new PostgresStore({ url, max: 4 }); // one connection per loop
 *   await store.migrate();
 *   const worker = new Worker({ store, channels: { log: logChannel() }, concurrency: 4 });
 *   await worker.run(stop); // resolves once every route it held is released
 *   await store.close();
 * }
 * ```
 *
 * @module
 */
import { HeraldError } from "./core/errors.ts";
import { type RouteEventDetail, type WorkerEventName, WorkerEvents } from "./core/events.ts";
import type { Lifecycle, ShutdownOptions } from "./core/lifecycle.ts";
import { describeError } from "./core/_redact.ts";
import { Deadline } from "./core/_async.ts";
import { TokenClock } from "./worker/_destinations.ts";
import { checkMs, POLL_JITTER, resolveWorkerOptions } from "./worker/config.ts";
import type { WorkerConfig, WorkerOptions } from "./worker/config.ts";
import { Holds } from "./worker/_holds.ts";
import { listenUntil } from "./worker/_listener.ts";
import { Salvager } from "./worker/_salvage.ts";
import { tick, type TickDeps } from "./worker/_tick.ts";

export { checkWorkerOptions, WORKER_DEFAULTS } from "./worker/config.ts";
export type { SleepPurpose, WorkerOptions } from "./worker/config.ts";
export type * from "./core/events.ts";
export type { Lifecycle, ShutdownOptions } from "./core/lifecycle.ts";

/** What ended a loop's sleep: its timer (or shutdown), a wake-up, or a failed tick's wake-up handed on. */
type Woken = "timer" | "wake" | "handed on";

/**
 * Drains due routes. `run(signal)` ticks at once, then whenever the store
 * signals new routes (Postgres `LISTEN`) and at least once per `interval`;
 * `tick()` is public so tests drive it without timers. Dispatches `claimed`,
 * `sent`, `retry`, `failed` and `poisoned` events ({@link RouteEventDetail}).
 *
 * @example
 * ```ts
 * import { Worker } from "./worker.ts";
 * import type { Store } from "./store.ts";
 * import { webhookChannel } from "./channels/webhook.ts";
 *
 * export async function drainOnce(store: Store): Promise<number> {
 *   const worker = new Worker({ store, channels: { webhook: webhookChannel() } });
 *   worker.addEventListener("failed", (e) => console.warn((e as CustomEvent).detail));
 *   return await worker.tick(); // handle what is due now, then return
 * }
 * ```
 */
export class Worker extends WorkerEvents implements Lifecycle {
  readonly #config: WorkerConfig;
  /** Aborted first on shutdown: no new claims. */
  readonly #stop = new AbortController();
  /** Aborted at the shutdown deadline: in-flight sends are cut. */
  readonly #hard = new AbortController();
  readonly #busy = new Set<Promise<unknown>>();
  /** Sleeping loops, longest asleep first, each woken with why (see {@link #wake}). */
  readonly #sleepers = new Set<(why: Woken) => void>();
  /** Bumped by every wake-up, so a loop busy at the time ticks again when done. */
  #wakes = 0;
  /** Routes sent but recorded nowhere, and the pause while outcomes cannot be recorded. */
  readonly #holds: Holds;
  readonly #salvager: Salvager;
  readonly #tokens = new TokenClock();
  readonly #deps: TickDeps;
  #running = false;
  #stopping: Promise<void> | undefined;

  /** Checks every option; throws `InvalidArgumentError` naming the first bad one. */
  constructor(options: WorkerOptions) {
    super();
    this.#config = resolveWorkerOptions(options);
    this.#holds = new Holds(this.#config.now);
    this.#salvager = new Salvager(this.#config, this.#holds, (n, d) => this.#emit(n, d));
    this.#deps = {
      config: this.#config,
      holds: this.#holds,
      salvager: this.#salvager,
      tokens: this.#tokens,
      emit: (n, d) => this.#emit(n, d),
      relay: () => void this.#wakeOne("wake"),
      events: this,
      stop: this.#stop.signal,
      hard: this.#hard.signal,
    };
    this.onListenerError = (err, event) =>
      this.#config.logger.log("error", "an event listener threw", {
        event,
        error: describeError(err),
      });
  }

  /**
   * Ticks at once (routes queued before a restart go out immediately), then
   * whenever woken and at least once per interval, in `concurrency` loops,
   * until `signal` aborts or `shutdown()` is called. A failed tick is logged
   * as a warning and the loop goes on. Aborting `signal` shuts down
   * gracefully; `run` resolves once every route it held is released.
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
    const { logger, concurrency, interval, routesPerTick, routesPerTransaction } = this.#config;
    logger.log("info", "worker started", {
      concurrency,
      interval_ms: interval,
      routes_per_tick: routesPerTick,
      routes_per_transaction: routesPerTransaction,
      channels: [...this.#config.channels.keys()].join(","),
    });
    const listening = this.#track(listenUntil(this.#config, this.#stop.signal, () => this.#wake()));
    const loops = Array.from({ length: concurrency }, () => this.#track(this.#loop()));
    try {
      await Promise.all([...loops, listening]);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#running = false;
    }
    await this.#stopping;
    logger.log("info", "worker stopped");
  }

  /**
   * A wake-up (a notification, a new subscription's catch-up) wakes one
   * sleeping loop, and every loop busy at the time ticks again when done
   * (its tick may have ended before the route was there, or it held what the
   * woken loop needed: a destination's slot, the pause). More sleeping loops
   * join only as routes turn up: each claim that finds a full batch wakes one
   * more (`relay` in worker/_tick.ts), so a burst fans out loop by loop and a
   * lone route costs one claim that finds nothing, not one per sleeping loop.
   */
  #wake(): void {
    this.#wakes++;
    this.#wakeOne("wake");
  }

  /** Wakes the loop asleep longest; false when none sleeps. */
  #wakeOne(why: Woken): boolean {
    for (const wake of this.#sleepers) {
      // Taken off at once: a second wake-up goes to another loop.
      this.#sleepers.delete(wake);
      wake(why);
      return true;
    }
    return false;
  }

  async #loop(): Promise<void> {
    const { interval, random, routesPerTick, logger } = this.#config;
    const stop = this.#stop.signal;
    let why: Woken = "timer";
    while (!stop.aborted) {
      const wakes = this.#wakes;
      let handled = 0;
      try {
        handled = await this.tick();
      } catch (err) {
        logger.log("warn", "tick failed; the loop goes on", { error: describeError(err) });
        // The wake-up it took may have been the only one: another loop tries
        // (its connection may be sound), once, so a database that is down
        // costs each wake-up two failed ticks, not a round of every loop.
        if (why === "wake") this.#wakeOne("handed on");
      }
      if (stop.aborted) break;
      const paused = this.#holds.pausedFor();
      if (paused > 0) {
        why = await this.#sleep(Math.min(paused, interval));
        continue;
      }
      // A full tick means more is due; a wake-up during the tick may mean so.
      why = "timer";
      if (handled >= routesPerTick || this.#wakes !== wakes) continue;
      why = await this.#sleep(this.#tokens.sleepFor(interval * (1 - POLL_JITTER * random())));
    }
  }

  /** Sleeps up to `ms`; resolves with what ended the sleep. */
  async #sleep(ms: number): Promise<Woken> {
    // Its own controller, aborted by a wake-up or by shutdown; plain listeners
    // rather than `AbortSignal.any`, so nothing accumulates on the long-lived
    // stop signal over millions of sleeps.
    const woken = new AbortController();
    let why: Woken = "timer";
    const wake = (w: Woken): void => {
      why = w;
      woken.abort();
    };
    const stopped = (): void => wake("timer");
    const stop = this.#stop.signal;
    this.#sleepers.add(wake);
    stop.addEventListener("abort", stopped, { once: true });
    if (stop.aborted) stopped();
    try {
      await this.#config.sleep(ms, woken.signal, "poll");
    } finally {
      this.#sleepers.delete(wake);
      stop.removeEventListener("abort", stopped);
    }
    return why;
  }

  /**
   * Handles up to `routesPerTick` due routes, `routesPerTransaction` per
   * transaction; resolves with how many it sent (not those shutdown cut
   * short). Stops when a claim finds nothing or `signal` aborts. Routes
   * handled in this tick are not claimed again in it. Every claimed route
   * counts against the cap: a tick never sends more than `routesPerTick`.
   * In batch mode a loop claims its next batch while the current one sends,
   * and sends it once the current one's sends are over (see worker/_tick.ts).
   */
  tick(signal?: AbortSignal): Promise<number> {
    return this.#track(tick(this.#deps, signal));
  }

  #emit(name: WorkerEventName, detail: RouteEventDetail): void {
    this.dispatchEvent(new CustomEvent<RouteEventDetail>(name, { detail }));
  }

  /**
   * Stops claiming at once, lets in-flight sends finish for up to
   * `timeoutMs`, then aborts them: their routes are left as they were
   * (claimable again, no attempt spent). Safe to call twice; a later call
   * can only shorten the grace (`{ timeoutMs: 0 }` aborts at once, as the
   * CLI's second Ctrl-C does). Resolves when everything the worker held is
   * released.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    const timeoutMs = checkMs("timeoutMs", options.timeoutMs, this.#config.shutdownTimeoutMs);
    if (this.#stopping) {
      if (options.timeoutMs !== undefined && this.#grace?.shorten(timeoutMs)) {
        this.#hurriedTo = timeoutMs;
      }
      return this.#stopping;
    }
    this.#stopping = this.#drain(timeoutMs);
    return this.#stopping;
  }

  /** The shutdown grace, once shutdown has begun. */
  #grace: Deadline | undefined;
  /** The grace a later `shutdown` call cut it to, if one did. */
  #hurriedTo: number | undefined;

  async #drain(timeoutMs: number): Promise<void> {
    this.#stop.abort();
    const settled = Promise.allSettled([...this.#busy]);
    const grace = this.#grace = new Deadline(timeoutMs);
    const first = await Promise.race([settled, grace.reached]);
    grace.clear();
    if (first !== "deadline") return;
    const hurried = this.#hurriedTo;
    this.#config.logger.log(
      "warn",
      hurried === undefined
        ? "shutdown deadline passed; aborting in-flight sends"
        : "shutdown hurried by a second stop; aborting in-flight sends",
      { timeout_ms: hurried ?? timeoutMs },
    );
    this.#hard.abort(
      new HeraldError("HERALD_SHUTDOWN", "the worker shut down before the send finished"),
    );
    await settled;
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#busy.add(work);
    const forget = (): void => void this.#busy.delete(work);
    work.then(forget, forget);
    return work;
  }
}

// The types the options mention, so this entry point documents them all.
export type { Channel, SendContext } from "./channels/channel.ts";
export type { LogFields, Logger, LogLevel } from "./observe/logger.ts";
export type { RetryPolicy } from "./core/retry.ts";
export type { RouteTransaction, Store } from "./store.ts";
export type * from "./core/transaction.ts";
export type * from "./core/route.ts";
export type { DeliveryDetails } from "./core/errors.ts";
export type { TracerLike } from "./core/telemetry.ts";
export type { DestinationPolicy, RateLimit } from "./core/destination.ts";
