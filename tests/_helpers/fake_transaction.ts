/**
 * {@link FakeStore}'s route transaction on its tables (fake_tables.ts): a claim
 * locks rows until the transaction ends, `SKIP LOCKED` skips rows another
 * open transaction holds, writes become visible on commit and vanish on
 * rollback. A claim sees the clock as it was when the transaction began
 * (Postgres's `now()`), a finalise writes times as the clock reads at the
 * outcome (`clock_timestamp()`).
 *
 * @module
 */
import { HeraldError } from "../../core/errors.ts";
import type {
  DestinationChange,
  DestinationPolicy,
  DestinationReport,
} from "../../core/destination.ts";
import type { FakeDestinations, PendingReport } from "./fake_destinations.ts";
import { applyOutcome, type FakeRefusal, type FakeTables, type Row } from "./fake_tables.ts";
import type { Finalisation, Route } from "../../core/route.ts";
import type { RouteTransaction } from "../../store.ts";
import type {
  ClaimParams,
  SalvageResult,
  TransactionOptions,
  Unrecorded,
} from "../../core/transaction.ts";

/** One open transaction: its locks live in the tables, its writes here until commit. */
class FakeTransaction implements RouteTransaction {
  readonly #t: FakeTables;
  readonly #id: number;
  /** Postgres's now(): the time the transaction began, whatever happens after. */
  readonly #began: number;
  readonly #pending = new Map<string, Partial<Row>>();
  readonly #logged: { record: Finalisation; at: number }[] = [];
  readonly #reports: PendingReport[] = [];
  #open = true;

  constructor(tables: FakeTables) {
    this.#t = tables;
    this.#id = tables.nextTx++;
    this.#began = tables.now();
    tables.open++;
  }

  claimDue(params: ClaimParams): Promise<Route[]> {
    this.#guard();
    this.#t.fault("claim");
    const excluded = new Set(params.exclude);
    const channels = params.channels && new Set(params.channels);
    const all = [...this.#t.routes.values()]
      .filter((r) => r.status === "queued" && r.nextAttemptAt <= this.#began);
    const candidates = all
      .filter((r) =>
        !excluded.has(r.id) && (channels === undefined || channels.has(r.channel)) &&
        (this.#t.locks.get(r.id) ?? this.#id) === this.#id
      )
      .sort((a, b) =>
        a.priority - b.priority || a.nextAttemptAt - b.nextAttemptAt || a.seq - b.seq
      );
    // In claim order, lazily, as the index scan under LIMIT: a slot is taken
    // only for a route that is then claimed.
    const due: Row[] = [];
    const tokens = new Map<string, number>();
    for (const r of candidates) {
      if (due.length >= params.limit) break;
      const ok = this.#destinations.claimable(r, this.#id, this.#began, params, candidates);
      if (!ok) continue;
      due.push(r);
      if (ok.nextTokenMs !== undefined) tokens.set(r.id, ok.nextTokenMs);
    }
    for (const r of due) this.#t.locks.set(r.id, this.#id);
    return Promise.resolve(due.map((r) => {
      const route = this.#t.toRoute(r);
      if (r.destinationKey === null) return route;
      const d = this.#destinations.get(r.channel, r.destinationKey);
      return {
        ...route,
        destinationKey: r.destinationKey,
        probe: d?.state === "open",
        destinationDirty: d !== undefined && (d.state !== "closed" || d.consecutiveFailures > 0),
        ...(tokens.has(r.id) ? { nextTokenMs: tokens.get(r.id)! } : {}),
      };
    }));
  }

  get #destinations(): FakeDestinations {
    return this.#t.destinations;
  }

  reportDestinations(
    reports: readonly DestinationReport[],
    policy: DestinationPolicy,
  ): Promise<DestinationChange[]> {
    this.#guard();
    try {
      this.#t.fault("destinations");
    } catch (err) {
      // As PostgresStore: undone to a savepoint, the transaction goes on.
      const message = "destination health could not be recorded";
      return Promise.reject(new HeraldError("HERALD_STORE", message, { cause: err }));
    }
    const at = this.#t.now(); // clock_timestamp()
    const changes: DestinationChange[] = [];
    for (const report of reports) {
      const { pending, change } = this.#destinations.report(report, policy, at);
      this.#reports.push(pending);
      if (change) changes.push(change);
    }
    return Promise.resolve(changes);
  }

  finalise(
    records: readonly Finalisation[],
    fallbacks?: readonly Unrecorded[],
  ): Promise<SalvageResult[] | undefined> {
    this.#guard();
    this.#t.fault("finalise");
    const at = this.#t.now(); // clock_timestamp(): the moment of the outcome
    for (const { routeId } of records) {
      if (this.#t.locks.get(routeId) !== this.#id) {
        throw new HeraldError(
          "HERALD_STORE",
          `route ${routeId} is not claimed by this transaction`,
        );
      }
    }
    if (records.some((r) => this.#t.refusals.has(r.routeId))) {
      if (!fallbacks) {
        const refused = records.find((r) => this.#t.refusals.has(r.routeId))!;
        throw new HeraldError("HERALD_STORE", `refused: ${this.#t.refusals.get(refused.routeId)}`);
      }
      // As PostgresStore: back to the savepoint, then route by route, locks held.
      return Promise.resolve(fallbacks.map((u) => {
        const step = fallBack(this.#t.refusals.get(u.record.routeId), u, at);
        if (step.change) this.#pending.set(u.record.routeId, step.change);
        if (step.log) this.#logged.push({ record: u.record, at });
        return step.result;
      }));
    }
    for (const record of records) {
      this.#pending.set(record.routeId, applyOutcome(record.outcome, at));
      this.#logged.push({ record, at });
    }
    this.#t.finalised.push(...records);
    return Promise.resolve(undefined);
  }

  /** Makes the writes visible. */
  commit(): void {
    for (const [routeId, change] of this.#pending) {
      Object.assign(this.#t.routes.get(routeId)!, change);
    }
    for (const { record, at } of this.#logged) this.#t.log(record, at);
    this.#destinations.commitTokens(this.#id);
    const lockedByOthers = (id: string): boolean =>
      (this.#t.locks.get(id) ?? this.#id) !== this.#id;
    for (const p of this.#reports) {
      this.#destinations.commit(p, this.#t.routes.values(), lockedByOthers);
    }
  }

  /** Whether it still takes calls (not ended, its connection not lost). */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Ends the transaction: its locks go, it accepts no more calls. Once. */
  release(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#t.open--;
    this.#destinations.release(this.#id);
    for (const [routeId, holder] of this.#t.locks) {
      if (holder === this.#id) this.#t.locks.delete(routeId);
    }
  }

  #guard(): void {
    if (!this.#open) throw new HeraldError("HERALD_STORE", "transaction is already closed");
  }
}

/**
 * Runs `fn` in a fake transaction: commit if it resolves, roll back if it
 * throws. A lost connection (`tables.connections`) rolls it back and rejects
 * at once while `fn` runs on, as the driver's `begin` does; nothing `fn` does
 * after that is written.
 */
export async function runFakeTransaction<T>(
  tables: FakeTables,
  fn: (tx: RouteTransaction) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  if (options.lockTimeoutMs !== undefined) tables.lockTimeouts.push(options.lockTimeoutMs);
  const tx = new FakeTransaction(tables);
  let cut!: (err: Error) => void;
  const lost = new Promise<never>((_, reject) => {
    cut = (err) => {
      tx.release();
      reject(err);
    };
  });
  tables.connections.add(cut);
  const body = (async () => {
    let result: T;
    try {
      result = await fn(tx);
      tables.fault("commit");
      if (!tx.isOpen) throw new HeraldError("HERALD_STORE", "the connection was lost");
    } catch (err) {
      tx.release();
      throw err;
    }
    tx.commit();
    tx.release();
    return result;
  })();
  body.catch(() => {}); // once the connection is lost, no one awaits it
  try {
    return await Promise.race([body, lost]);
  } finally {
    tables.connections.delete(cut);
  }
}

/**
 * The fallback ladder for one refused route, as PostgresStore's: the
 * outcome with its log row, the outcome alone, a hold or poison, or nothing.
 */
export function fallBack(
  refusal: FakeRefusal | undefined,
  u: Unrecorded,
  at: number,
): { change?: Partial<Row>; log: boolean; result: SalvageResult } {
  const { outcome } = u.record;
  if (refusal === undefined) {
    return { change: applyOutcome(outcome, at), log: true, result: "recorded" };
  }
  if (refusal === "log") {
    return { change: applyOutcome(outcome, at), log: false, result: "recorded_without_log" };
  }
  if (refusal === "outcome") {
    return {
      change: {
        status: u.poison ? "poisoned" : "queued",
        attempts: outcome.attempts,
        nextAttemptAt: at + u.holdMs,
        lastError: "outcome could not be recorded",
        updatedAt: at,
        ...(outcome.status === "sent" ? { sentAt: at } : {}),
      },
      log: false,
      result: u.poison ? "poisoned" : "held",
    };
  }
  return { log: false, result: "refused" };
}
