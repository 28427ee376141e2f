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
import type { Finalisation, Route } from "./core/route.ts";
import type { RouteTransaction, SalvageResult, Subscription, Unrecorded } from "./store.ts";
import { attempt } from "./worker/_attempt.ts";
import type { AttemptResult } from "./worker/_attempt.ts";
import { Holds } from "./worker/_holds.ts";
import type { Pending } from "./worker/_holds.ts";
import { checkMs, resolveWorkerOptions, sleep } from "./worker/config.ts";
import type { WorkerConfig, WorkerOptions } from "./worker/config.ts";
import { describeError } from "./core/_redact.ts";

export { WORKER_DEFAULTS } from "./worker/config.ts";
export type { WorkerOptions } from "./worker/config.ts";

/**
 * How much longer than a send may a route transaction live before Postgres
 * ends it; covers the claim and finalise queries around the send.
 */
const LOCK_MARGIN_MS = 5_000;
/** How often the listener probes itself (at most; the interval when shorter). */
const PROBE_EVERY_MS = 2_000;
/** How long the listener may take to hear its own probe before it counts as lost. */
const PROBE_TIMEOUT_MS = 2_000;
/** The longest any single step of the listener (subscribe, unsubscribe) may take. */
const LISTEN_STEP_TIMEOUT_MS = 5_000;
/** A lost listener subscribes again after 100 ms, doubling up to 2 s: never a poll interval. */
const RELISTEN_FIRST_MS = 100;
const RELISTEN_MAX_MS = 2_000;
/** The poll interval is shortened by up to this fraction, so workers drift apart. */
const POLL_JITTER = 0.1;

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
  /** The route's id. */
  readonly routeId: string;
  /** The route's channel. */
  readonly channel: string;
  /** The attempt's number, starting at 1. */
  readonly attempt: number;
  /** Secret-free reason, for `retry` and `failed`. */
  readonly error?: string;
  /** For `retry`: how long until the route is due again. */
  readonly delayMs?: number;
  /** The provider's HTTP status, when the channel reported one. */
  readonly httpStatus?: number;
  /** How long the send took, in milliseconds (not on `claimed`). */
  readonly durationMs?: number;
}

/**
 * Names of the events a {@link Worker} dispatches, each a
 * `CustomEvent<RouteEventDetail>`. `poisoned`: the database refused the
 * route's outcome, and the route is held for an operator instead of being
 * sent again.
 */
export type WorkerEventName = "claimed" | "sent" | "retry" | "failed" | "poisoned";

/**
 * Drains due routes. `run(signal)` ticks at once, then whenever the store
 * signals new routes (Postgres `LISTEN`) and at least once per `interval`;
 * `tick()` is public so tests drive it without timers. Dispatches `claimed`,
 * `sent`, `retry` and `failed` events ({@link RouteEventDetail}).
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
export class Worker extends EventTarget implements Lifecycle {
  readonly #config: WorkerConfig;
  /** Aborted first on shutdown: no new claims. */
  readonly #stop = new AbortController();
  /** Aborted at the shutdown deadline: in-flight sends are cut. */
  readonly #hard = new AbortController();
  readonly #busy = new Set<Promise<unknown>>();
  /** Sleeping loops, woken early by a notification. */
  readonly #sleepers = new Set<() => void>();
  /** Bumped by every wake-up, so a loop busy at the time ticks again instead of sleeping. */
  #wakes = 0;
  /** Routes sent but recorded nowhere, and the pause while outcomes cannot be recorded. */
  readonly #holds: Holds;
  #running = false;
  #stopping: Promise<void> | undefined;

  /** Checks every option; throws `InvalidArgumentError` naming the first bad one. */
  constructor(options: WorkerOptions) {
    super();
    this.#config = resolveWorkerOptions(options);
    this.#holds = new Holds(this.#config.now);
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
    const listening = this.#track(this.#listen());
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

  /** Wakes sleeping loops now; loops busy ticking tick again when done. */
  #wake(): void {
    this.#wakes++;
    for (const wake of this.#sleepers) wake();
  }

  async #loop(): Promise<void> {
    const { interval, random, routesPerTick, logger } = this.#config;
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      const wakes = this.#wakes;
      let handled = 0;
      try {
        handled = await this.tick();
      } catch (err) {
        logger.log("warn", "tick failed; the loop goes on", { error: describeError(err) });
      }
      if (stop.aborted) break;
      const paused = this.#holds.pausedFor();
      if (paused > 0) {
        await this.#sleep(Math.min(paused, interval));
        continue;
      }
      // A full tick means more is due; a wake-up during the tick may mean so.
      if (handled >= routesPerTick || this.#wakes !== wakes) continue;
      await this.#sleep(interval * (1 - POLL_JITTER * random()));
    }
  }

  async #sleep(ms: number): Promise<void> {
    // Its own controller, aborted by a wake-up or by shutdown; plain listeners
    // rather than `AbortSignal.any`, so nothing accumulates on the long-lived
    // stop signal over millions of sleeps.
    const woken = new AbortController();
    const wake = (): void => woken.abort();
    const stop = this.#stop.signal;
    this.#sleepers.add(wake);
    stop.addEventListener("abort", wake, { once: true });
    if (stop.aborted) wake();
    try {
      await this.#config.sleep(ms, woken.signal);
    } finally {
      this.#sleepers.delete(wake);
      stop.removeEventListener("abort", wake);
    }
  }

  /**
   * Subscribes to the store's notifications until shutdown. Every
   * (re)connect wakes the loops for a catch-up tick: routes enqueued while
   * the listener was away were never announced. A lost or refused
   * subscription is replaced after 100 ms, doubling up to 2 s, whatever the
   * poll interval: a worker that relies on wake-ups is never deaf for long.
   */
  async #listen(): Promise<void> {
    const { store, listen, logger, random } = this.#config;
    if (!listen || !store.listen) return;
    const stop = this.#stop.signal;
    let failures = 0;
    while (!stop.aborted) {
      let subscription: Subscription;
      try {
        subscription = await bounded(
          store.listen({ onNotify: () => this.#wake(), onConnect: () => this.#wake() }),
          LISTEN_STEP_TIMEOUT_MS,
          "subscribing",
          (late) => void late.close().catch(() => {}),
        );
        failures = 0;
        logger.log("info", "listening for new routes");
      } catch (err) {
        failures++;
        const ms = Math.min(RELISTEN_MAX_MS, RELISTEN_FIRST_MS * 2 ** (failures - 1)) *
          (1 - POLL_JITTER * random());
        logger.log("warn", "could not listen for new routes; polling until it can", {
          error: describeError(err),
          retry_in_ms: Math.round(ms),
        });
        await sleep(ms, stop);
        continue;
      }
      await this.#watch(subscription);
      try {
        await bounded(subscription.close(), LISTEN_STEP_TIMEOUT_MS, "unsubscribing");
      } catch (err) {
        logger.log("warn", "could not stop listening", { error: describeError(err) });
      }
    }
  }

  /**
   * Resolves at shutdown, or when the subscription stops hearing its own
   * probe: the driver re-listens by itself after a reconnect but drops a
   * re-listen that fails, which would leave the worker deaf (polling only)
   * without a word. Checked every 2 s (or each interval, when shorter): a
   * NOTIFY to a channel of its own, so the cost is one tiny query. Every
   * probe is bounded, so a stalled connection cannot hold up shutdown.
   */
  async #watch(subscription: Subscription): Promise<void> {
    const { interval, logger } = this.#config;
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      await sleep(Math.min(interval, PROBE_EVERY_MS), stop);
      if (stop.aborted || !subscription.alive) continue;
      const alive = await bounded(
        subscription.alive(PROBE_TIMEOUT_MS),
        PROBE_TIMEOUT_MS + 500,
        "probing",
      ).catch(() => false);
      if (!alive) {
        logger.log("warn", "the listener stopped hearing notifications; listening again");
        return;
      }
    }
  }

  /**
   * Handles up to `routesPerTick` due routes, `routesPerTransaction` per
   * transaction, and resolves with how many it sent (whatever the outcome;
   * not those a shutdown cut short). Stops early when a
   * claim finds nothing or `signal` aborts. Routes handled in this tick are
   * not claimed again in it, so a retry that is due at once cannot burn
   * through its attempts. Every claimed route counts against the cap, even
   * one whose transaction failed: a tick never sends more than
   * `routesPerTick` routes, whatever fails.
   */
  tick(signal?: AbortSignal): Promise<number> {
    return this.#track(this.#tick(signal));
  }

  async #tick(signal: AbortSignal | undefined): Promise<number> {
    const { store, routesPerTick, routesPerTransaction, sendTimeoutMs } = this.#config;
    const seen = new Set<string>();
    let claimedInTick = 0;
    let handled = 0;
    await this.#settlePending();
    while (claimedInTick < routesPerTick && !signal?.aborted && !this.#stop.signal.aborted) {
      if (this.#holds.pausedFor() > 0) break;
      const limit = Math.min(routesPerTransaction, routesPerTick - claimedInTick);
      const batch: Batch = { claimed: [], results: [] };
      try {
        await store.transaction(
          (tx) => this.#handleBatch(tx, seen, limit, batch),
          { lockTimeoutMs: sendTimeoutMs + LOCK_MARGIN_MS },
        );
      } catch (err) {
        // Nothing claimed: the store itself is failing; the tick fails and the loop backs off.
        if (batch.claimed.length === 0) throw err;
        claimedInTick += batch.claimed.length;
        handled += batch.results.filter((r) => r.record).length;
        // Excluded for the rest of the tick, so one route whose transaction
        // always fails cannot hold up every route behind it.
        for (const route of batch.claimed) seen.add(route.id);
        await this.#salvage(batch, err);
        continue;
      }
      this.#holds.resume();
      claimedInTick += batch.claimed.length;
      for (const result of batch.results) {
        if (result.record) this.#holds.release(result.route.id);
        this.#report(result);
        // Only a retried route can be claimed again (sent and failed ones leave
        // the queue), so only retries join the exclude list sent with every claim.
        if (result.record?.outcome.status === "retry") seen.add(result.route.id);
      }
      const finalised = batch.results.filter((r) => r.record).length;
      handled += finalised;
      // Fewer than asked for: nothing else is due. Unfinalised: shutdown cut in.
      if (batch.claimed.length < limit || finalised < batch.results.length) break;
    }
    return handled;
  }

  async #handleBatch(
    tx: RouteTransaction,
    seen: ReadonlySet<string>,
    limit: number,
    batch: Batch,
  ): Promise<void> {
    const routes = await tx.claimDue({
      limit,
      exclude: [...seen, ...this.#holds.excluded()],
      channels: [...this.#config.channels.keys()],
    });
    for (const route of routes) {
      batch.claimed.push(route);
      this.#emit("claimed", {
        routeId: route.id,
        channel: route.channel,
        attempt: route.attempts + this.#holds.unrecorded(route.id) + 1,
      });
    }
    batch.results = await Promise.all(
      routes.map((route) =>
        attempt(route, this.#config, this.#hard.signal, this.#holds.unrecorded(route.id))
      ),
    );
    const records = batch.results.flatMap((r) => (r.record ? [r.record] : []));
    if (records.length > 0) await tx.finalise(records);
  }

  /**
   * The route transaction failed after its claim. Outcomes of sends that
   * went out are recorded in a transaction of their own (see
   * `Store.salvage`); a route the database will not take even a hold for is
   * remembered here, counted against its attempts, and claiming pauses, so
   * a worker that cannot write down what it sent stops sending.
   */
  async #salvage(batch: Batch, cause: unknown): Promise<void> {
    const sent = batch.results.filter((r) => r.record);
    this.#config.logger.log(
      "warn",
      "route transaction failed and was rolled back; the tick goes on",
      {
        routes: batch.claimed.length,
        outcomes_to_salvage: sent.length,
        error: describeError(cause),
      },
    );
    if (sent.length === 0) return;
    await this.#settle(
      sent.map(({ route, record }) => ({ route, unrecorded: toUnrecorded(route, record!) })),
    );
  }

  /** Records outcomes kept while the database was out of reach; before any claim. */
  async #settlePending(): Promise<void> {
    const pending = this.#holds.takePending();
    if (pending.length > 0) await this.#settle(pending);
  }

  async #settle(entries: readonly Pending[]): Promise<void> {
    const { store, logger, retry, random } = this.#config;
    let results: SalvageResult[];
    try {
      results = await store.salvage(entries.map((e) => e.unrecorded));
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === "HERALD_UNAVAILABLE") {
        // Out of reach, not refusing: keep the outcomes and record them once
        // it answers again, rather than send these routes a second time.
        for (const entry of entries) this.#holds.pend(entry);
        logger.log("warn", "database out of reach; outcomes kept to record when it is back", {
          routes: entries.length,
          error: describeError(err),
        });
        return;
      }
      logger.log("error", "could not record outcomes of sent routes", {
        routes: entries.length,
        error: describeError(err),
      });
      results = entries.map(() => "refused");
    }
    results.forEach((result, i) => this.#reportSalvage(entries[i]!, result));
    const refused = results.filter((r) => r === "refused").length;
    if (refused > 0) {
      const ms = this.#holds.pause(retry, random);
      logger.log("error", "the database refuses to record outcomes; claiming paused", {
        routes: refused,
        pause_ms: ms,
      });
    }
  }

  #reportSalvage({ route, unrecorded: u }: Pending, result: SalvageResult): void {
    const { logger } = this.#config;
    const { record } = u;
    const fields = { route_id: route.id, channel: route.channel, attempt: record.outcome.attempts };
    const detail: RouteEventDetail = {
      routeId: route.id,
      channel: route.channel,
      attempt: record.outcome.attempts,
      durationMs: record.durationMs,
    };
    switch (result) {
      case "recorded":
      case "recorded_without_log":
        this.#holds.release(route.id);
        if (result === "recorded_without_log") {
          logger.log("warn", "outcome recorded without its attempt-log row", fields);
        }
        return this.#report({ route, record });
      case "held":
        logger.log("warn", "outcome refused; attempt counted and route held back", {
          ...fields,
          delay_ms: u.holdMs,
        });
        this.#emit("retry", {
          ...detail,
          error: "outcome could not be recorded",
          delayMs: u.holdMs,
        });
        return;
      case "poisoned":
        logger.log("error", "outcome refused; route poisoned until an operator retries it", fields);
        this.#emit("poisoned", { ...detail, error: "outcome could not be recorded" });
        return;
      case "skipped":
        logger.log("info", "route changed since its claim; its outcome was not salvaged", fields);
        return;
      case "refused":
        // Never sent again by this worker when that would repeat a delivered
        // message or a permanent failure; otherwise after its backoff.
        this.#holds.hold(route.id, u.poison ? Infinity : u.holdMs);
        logger.log("error", "outcome recorded nowhere; route held back by this worker", {
          ...fields,
          ...(u.poison ? { held: "until restart" } : { delay_ms: u.holdMs }),
        });
        return;
    }
  }

  #report({ route, record }: { route: Route; record: Finalisation | undefined }): void {
    const { logger } = this.#config;
    if (!record) {
      logger.log("info", "send cut short by shutdown; route released", { route_id: route.id });
      return;
    }
    const { outcome } = record;
    const detail: RouteEventDetail = {
      routeId: route.id,
      channel: route.channel,
      attempt: outcome.attempts,
      durationMs: record.durationMs,
      ...(record.httpStatus === undefined ? {} : { httpStatus: record.httpStatus }),
    };
    const fields = { route_id: route.id, channel: route.channel, attempt: outcome.attempts };
    switch (outcome.status) {
      case "sent":
        logger.log("debug", "route sent", fields);
        this.#emit("sent", detail);
        return;
      case "retry":
        logger.log("info", "route will be retried", {
          ...fields,
          delay_ms: outcome.delayMs,
          error: outcome.error,
        });
        this.#emit("retry", { ...detail, error: outcome.error, delayMs: outcome.delayMs });
        return;
      case "failed":
        logger.log("warn", "route failed for good", { ...fields, error: outcome.error });
        this.#emit("failed", { ...detail, error: outcome.error });
        return;
    }
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
      if (options.timeoutMs !== undefined) this.#graceEnds(timeoutMs);
      return this.#stopping;
    }
    this.#stopping = this.#drain(timeoutMs);
    return this.#stopping;
  }

  /** Ends the shutdown grace `ms` from now, if that is sooner than planned. */
  #graceEnds: (ms: number) => void = () => {};

  async #drain(timeoutMs: number): Promise<void> {
    this.#stop.abort();
    const settled = Promise.allSettled([...this.#busy]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"deadline">((resolve) => {
      const endsAt = performance.now() + timeoutMs;
      const arm = (ms: number): void => {
        clearTimeout(timer);
        timer = setTimeout(() => resolve("deadline"), ms);
      };
      this.#graceEnds = (ms) => {
        if (performance.now() + ms < endsAt) arm(ms);
      };
      arm(timeoutMs);
    });
    const first = await Promise.race([settled, deadline]);
    clearTimeout(timer);
    if (first === "deadline") {
      this.#config.logger.log("warn", "shutdown deadline passed; aborting in-flight sends", {
        timeout_ms: timeoutMs,
      });
      this.#hard.abort(
        new HeraldError("HERALD_SHUTDOWN", "the worker shut down before the send finished"),
      );
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

/** A batch's claimed routes and, once sent, their results; kept when its transaction fails. */
interface Batch {
  readonly claimed: Route[];
  results: AttemptResult[];
}

/**
 * What to salvage of a sent route: its outcome, or, if even that is
 * refused, a hold for the retry's delay. A route that was delivered or
 * failed for good is poisoned instead: sending it again would only repeat it.
 */
function toUnrecorded(route: Route, record: Finalisation): Unrecorded {
  const { outcome } = record;
  return outcome.status === "retry"
    ? { record, claimedAttempts: route.attempts, holdMs: outcome.delayMs, poison: false }
    : { record, claimedAttempts: route.attempts, holdMs: 0, poison: true };
}

/**
 * Settles with `work`, or rejects after `ms` naming `what`; a result that
 * arrives late is handed to `onLate` (to close what it opened).
 */
function bounded<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  onLate?: (value: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new HeraldError("HERALD_STORE", `${what} took longer than ${ms} ms`));
    }, ms);
  });
  work.then((value) => late && onLate?.(value), () => {});
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

// The types the options mention, so this entry point documents them all.
export type { Channel, SendContext } from "./channels/channel.ts";
export type { LogFields, Logger, LogLevel } from "./observe/logger.ts";
export type { RetryPolicy } from "./core/retry.ts";
export type {
  AttemptRecord,
  ClaimParams,
  Enqueued,
  NotificationInput,
  RouteInput,
  RouteRecord,
  RouteTransaction,
  SalvageResult,
  Store,
  Subscription,
  TransactionOptions,
  Unrecorded,
  WakeHandlers,
} from "./store.ts";
export type { Finalisation, JsonValue, Outcome, Route, RouteStatus } from "./core/route.ts";
export type { DeliveryDetails } from "./core/errors.ts";
