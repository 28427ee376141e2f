/**
 * What the worker does when a route's transaction fails after its send: the
 * outcomes of the sends that went out are recorded in a transaction of their
 * own (`Store.salvage`); one the database will not take even a hold for is
 * remembered in memory, counted against the route's attempts, and claiming
 * pauses, so a worker that cannot write down what it sent stops sending.
 * Outcomes the database was out of reach for are kept and recorded before
 * the next claim.
 *
 * @module
 */
import type { RouteEventDetail } from "../core/events.ts";
import type { Finalisation, Route } from "../core/route.ts";
import type { SalvageResult, Unrecorded } from "../core/transaction.ts";
import { describeError } from "../core/_redact.ts";
import type { AttemptResult, Batch } from "./_attempt.ts";
import type { WorkerConfig } from "./config.ts";
import type { Holds, Pending } from "./_holds.ts";
import { type Emit, reportOutcome, routeDetail } from "./_report.ts";

/** Salvages failed batches for one worker. */
export class Salvager {
  readonly #config: WorkerConfig;
  readonly #holds: Holds;
  readonly #emit: Emit;

  constructor(config: WorkerConfig, holds: Holds, emit: Emit) {
    this.#config = config;
    this.#holds = holds;
    this.#emit = emit;
  }

  /**
   * The batch's transaction failed with `cause` after its claim. Its routes
   * are not claimed by this worker until their sends are over and what they
   * sent is recorded (their locks went with the transaction).
   */
  async salvage(batch: Batch, cause: unknown): Promise<void> {
    const done = this.#holds.settling(batch.claimed.map((r) => r.id));
    try {
      // A lost connection fails the transaction while the sends still run.
      if (batch.sending) batch.results = await batch.sending;
      await this.#salvageSent(batch, cause);
    } finally {
      done();
    }
  }

  async #salvageSent(batch: Batch, cause: unknown): Promise<void> {
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
    await this.#settle(pendingOf(sent));
  }

  /** Records outcomes kept while the database was out of reach; before any claim. */
  async settlePending(): Promise<void> {
    const pending = this.#holds.takePending();
    if (pending.length > 0) await this.#settle(pending);
  }

  async #settle(entries: readonly Pending[]): Promise<void> {
    // Not claimed meanwhile: taken from the kept outcomes, they are no longer
    // excluded there; what the salvage leaves them (kept, held) excludes them after.
    const done = this.#holds.settling(entries.map((e) => e.route.id));
    try {
      const results = await this.#record(entries);
      if (results) this.settled(entries, results);
    } finally {
      done();
    }
  }

  /** The salvage's results; undefined when the database was out of reach (the outcomes are kept). */
  async #record(entries: readonly Pending[]): Promise<readonly SalvageResult[] | undefined> {
    const { store, logger } = this.#config;
    try {
      return await store.salvage(entries.map((e) => e.unrecorded));
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === "HERALD_UNAVAILABLE") {
        // Out of reach, not refusing: keep the outcomes and record them once
        // it answers again, rather than send these routes a second time.
        for (const entry of entries) this.#holds.pend(entry);
        logger.log(
          "warn",
          "database out of reach or its connection lost; outcomes kept to record before the next claim",
          {
            routes: entries.length,
            error: describeError(err),
          },
        );
        return undefined;
      }
      logger.log("error", "could not record outcomes of sent routes", {
        routes: entries.length,
        error: describeError(err),
      });
      return entries.map(() => "refused");
    }
  }

  /**
   * The route transaction's finalise was refused, and its own fallback,
   * route by route while it held them, recorded `results` (committed).
   */
  fellBack(entries: readonly Pending[], results: readonly SalvageResult[]): void {
    const written = results.filter((r) => r === "recorded" || r === "recorded_without_log");
    this.#config.logger.log(
      "warn",
      "the database refused the outcomes as one write; recorded route by route in the same transaction",
      { routes: entries.length, recorded: written.length },
    );
    this.settled(entries, results);
  }

  /**
   * Reports what was recorded of `entries` (by a salvage, or by the route
   * transaction's own fallback), holding and pausing where nothing was.
   */
  settled(entries: readonly Pending[], results: readonly SalvageResult[]): void {
    const { logger, retry, random } = this.#config;
    results.forEach((result, i) => this.#report(entries[i]!, result));
    const refused = results.filter((r) => r === "refused").length;
    if (refused > 0) {
      const ms = this.#holds.pause(retry, random);
      logger.log("error", "the database refuses to record outcomes; claiming paused", {
        routes: refused,
        pause_ms: ms,
      });
    }
  }

  #report({ route, unrecorded: u }: Pending, result: SalvageResult): void {
    const { logger } = this.#config;
    const { record } = u;
    const fields = { route_id: route.id, channel: route.channel, attempt: record.outcome.attempts };
    const detail: RouteEventDetail = {
      ...routeDetail(route, record.outcome.attempts),
      durationMs: record.durationMs,
    };
    switch (result) {
      case "recorded":
      case "recorded_without_log":
        this.#holds.release(route.id);
        if (result === "recorded_without_log") {
          logger.log("warn", "outcome recorded without its attempt-log row", fields);
        }
        return reportOutcome(logger, this.#emit, { route, record });
      case "held":
        // The hold wrote the attempt count: the memory of unrecorded sends is spent.
        this.#holds.release(route.id);
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
        this.#holds.release(route.id);
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
}

/** The sent routes of `results`, each with what to record should its outcome be refused. */
export function pendingOf(results: readonly AttemptResult[]): Pending[] {
  return results.flatMap(({ route, record }) =>
    record ? [{ route, unrecorded: toUnrecorded(route, record) }] : []
  );
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
