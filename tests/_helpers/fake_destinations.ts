/**
 * The fake `destinations` table, as PostgresStore's: the claim's filter
 * (state, half-open probe, in-flight slots that end with the transaction),
 * reports applied on commit with their parking, and the operator's views.
 * The rules are `nextDestination`'s, shared with PostgresStore.
 *
 * @module
 */
import { CHANNEL_WIDE } from "../../core/destination_key.ts";
import { checkSettings } from "../../core/_validate.ts";
import { changeOf, freshDestination, nextDestination, stateAfter } from "../../core/destination.ts";
import type {
  DestinationAction,
  DestinationChange,
  DestinationInfo,
  DestinationPolicy,
  DestinationReport,
  DestinationSettings,
  DestinationState,
  RateLimit,
} from "../../core/destination.ts";
import type { ChannelRate } from "../../core/transaction.ts";
import type { AttemptRecord } from "../../store.ts";
import {
  type DestinationRow,
  type FakeDestination,
  idOf,
  park,
  release,
  splitId,
} from "./fake_destination_rows.ts";

function fresh(): FakeDestination {
  return { ...freshDestination(), maxInFlight: null, ratePerSecond: null, burst: null, tat: null };
}

/** A report waiting for its transaction's commit. */
export interface PendingReport {
  readonly id: string;
  readonly after: FakeDestination;
}

/** The fake table, its slots, and the operations on them. */
export class FakeDestinations {
  readonly rows = new Map<string, FakeDestination>();
  /** destination -> transactions holding one of its in-flight slots */
  readonly slots = new Map<string, Set<number>>();
  /** destination -> the transaction holding its limiter row's lock */
  readonly limiters = new Map<string, number>();
  /** Tokens taken, per transaction, written on commit. */
  readonly #tokens = new Map<number, Map<string, number>>();

  /** Creates the destination's row if it has none (as enqueue does). */
  ensure(channel: string, key: string): void {
    const id = idOf(channel, key);
    if (!this.rows.has(id)) this.rows.set(id, fresh());
  }

  /** The rate limit applying to `r`'s destination, if any. */
  rateOf(r: DestinationRow, rates: readonly ChannelRate[]): RateLimit | undefined {
    if (r.destinationKey === null) return undefined;
    const d = this.get(r.channel, r.destinationKey);
    const fallback = rates.find((x) => x.channel === r.channel);
    const perSecond = d?.ratePerSecond ?? fallback?.perSecond;
    if (perSecond === undefined) return undefined;
    return { perSecond, burst: d?.burst ?? fallback?.burst ?? 1 };
  }

  /**
   * Takes one token of `r`'s rate-limited destination for transaction `tx`:
   * the limiter row must be free (or tx's) and its next send due within the
   * burst. Returns the wait until its next token, or `undefined` for none.
   */
  token(r: DestinationRow, limit: RateLimit, tx: number, now: number): number | undefined {
    const id = idOf(r.channel, r.destinationKey!);
    const d = this.rows.get(id);
    const holder = this.limiters.get(id);
    if (!d || (holder !== undefined && holder !== tx)) return undefined;
    const interval = 1_000 / limit.perSecond;
    const mine = this.#tokens.get(tx) ?? new Map<string, number>();
    if (mine.has(id)) return undefined; // one token per transaction and destination
    const tat = d.tat ?? -Infinity;
    if (tat > now + (limit.burst - 1) * interval) return undefined;
    this.limiters.set(id, tx);
    // As PostgresStore: up to a quarter interval late keeps the schedule, later restarts it.
    const next = (tat >= now - interval / 4 ? tat : now) + interval;
    mine.set(id, next);
    this.#tokens.set(tx, mine);
    return Math.max(0, next - now - (limit.burst - 1) * interval);
  }

  /** Writes transaction `tx`'s tokens (its commit). */
  commitTokens(tx: number): void {
    for (const [id, tat] of this.#tokens.get(tx) ?? []) {
      const d = this.rows.get(id);
      if (d) this.rows.set(id, { ...d, tat });
    }
  }

  get(channel: string, key: string): FakeDestination | undefined {
    return this.rows.get(idOf(channel, key));
  }

  /**
   * The claim's filter for one due route, in claim order: its destination's
   * state lets it go now, it has a token (where a rate applies), and (where a
   * cap applies) transaction `tx` holds or takes one of its slots; a half-open
   * destination's probe is its first route among `candidates` (the routes the
   * claim may take: not excluded, not locked by another). `false`, or what the
   * claim tells of the route.
   */
  claimable(
    r: DestinationRow,
    tx: number,
    now: number,
    params: { readonly maxInFlight?: number; readonly rates?: readonly ChannelRate[] },
    candidates: readonly DestinationRow[],
  ): false | { readonly nextTokenMs?: number } {
    if (r.destinationKey === null) return {};
    const d = this.get(r.channel, r.destinationKey);
    const halfOpen = d?.state === "open" && d.openUntil !== null && d.openUntil <= now;
    if (d && d.state !== "closed" && !halfOpen) return false;
    if (halfOpen) {
      const first = candidates
        .filter((x) => x.channel === r.channel && x.destinationKey === r.destinationKey)
        .sort((a, b) =>
          a.priority - b.priority || a.nextAttemptAt - b.nextAttemptAt || a.seq - b.seq
        )[0];
      if (first?.id !== r.id) return false;
    }
    const id = idOf(r.channel, r.destinationKey);
    const cap = halfOpen
      ? 1
      : d?.maxInFlight ?? (r.destinationKey !== CHANNEL_WIDE ? params.maxInFlight : undefined);
    const holders = this.slots.get(id) ?? new Set<number>();
    if (cap !== undefined && !holders.has(tx) && holders.size >= cap) return false;
    const limit = this.rateOf(r, params.rates ?? []);
    const nextTokenMs = limit === undefined ? undefined : this.token(r, limit, tx, now);
    if (limit !== undefined && nextTokenMs === undefined) return false;
    if (cap !== undefined) {
      holders.add(tx);
      this.slots.set(id, holders);
    }
    return nextTokenMs === undefined ? {} : { nextTokenMs };
  }

  /** Ends transaction `tx`'s hold on every slot and limiter row; its tokens not committed go. */
  release(tx: number): void {
    for (const holders of this.slots.values()) holders.delete(tx);
    for (const [id, holder] of this.limiters) if (holder === tx) this.limiters.delete(id);
    this.#tokens.delete(tx);
  }

  /** A report's effect, computed now (as the locked row is read) and applied on commit. */
  report(
    report: DestinationReport,
    policy: DestinationPolicy,
    now: number,
  ): { pending: PendingReport; change: DestinationChange | undefined } {
    const id = idOf(report.channel, report.key);
    const before = this.rows.get(id) ?? fresh();
    const after = {
      ...before,
      ...nextDestination(before, report, policy, now),
    };
    return { pending: { id, after }, change: changeOf(report.channel, report.key, before, after) };
  }

  /** Writes a committed report and parks the destination's routes if it is left blocked. */
  commit(
    p: PendingReport,
    routes: Iterable<DestinationRow>,
    lockedByOthers: (id: string) => boolean,
  ): void {
    const current = this.rows.get(p.id) ?? fresh();
    const before = current.state;
    // The report's health, the row's settings and limiter as they are now.
    this.rows.set(p.id, {
      ...p.after,
      tat: current.tat,
      ratePerSecond: current.ratePerSecond,
      burst: current.burst,
      maxInFlight: current.maxInFlight,
    });
    if (p.after.state !== "closed") park(p.id, p.after, routes, lockedByOthers);
    else if (before !== "closed") release(p.id, routes, lockedByOthers);
  }

  /** As `PostgresStore.setDestinationState`; returns whether held routes were released. */
  setState(
    channel: string,
    key: string,
    action: DestinationAction,
    reason: string | undefined,
    routes: Iterable<DestinationRow>,
    lockedByOthers: (id: string) => boolean,
  ): { state: DestinationState; released: boolean } {
    const id = idOf(channel, key);
    const before = this.rows.get(id) ?? fresh();
    const state = stateAfter(action);
    const closing = state === "closed";
    const after: FakeDestination = {
      ...before,
      state,
      reason: reason ?? null,
      openUntil: null,
      consecutiveFailures: closing ? 0 : before.consecutiveFailures,
      trips: closing ? 0 : before.trips,
      failingSince: closing ? null : before.failingSince,
    };
    this.rows.set(id, after);
    if (!closing) {
      park(id, after, routes, lockedByOthers);
      return { state, released: false };
    }
    return { state, released: release(id, routes, lockedByOthers) };
  }

  /** As `PostgresStore.configureDestination`. */
  configure(channel: string, key: string, settings: DestinationSettings): void {
    checkSettings(settings);
    const id = idOf(channel, key);
    const before = this.rows.get(id) ?? fresh();
    const pick = <T>(value: T | null | undefined, old: T | null): T | null =>
      value === undefined ? old : value;
    this.rows.set(id, {
      ...before,
      tat: settings.ratePerSecond === undefined && settings.burst === undefined ? before.tat : null,
      ratePerSecond: pick(settings.ratePerSecond, before.ratePerSecond),
      burst: pick(settings.burst, before.burst),
      maxInFlight: pick(settings.maxInFlight, before.maxInFlight),
      failureThreshold: pick(settings.failureThreshold, before.failureThreshold),
      cooldownMs: pick(settings.cooldownMs, before.cooldownMs),
    });
  }

  /** As `PostgresStore.destinations`, over the fake tables. */
  list(
    routes: Iterable<DestinationRow>,
    attempts: ReadonlyMap<string, AttemptRecord[]>,
    now: number,
  ): DestinationInfo[] {
    const queued = new Map<
      string,
      { channel: string; key: string; n: number; due: number; oldest: number | null }
    >();
    const hour = new Map<string, { attempts: number; failures: number; lastSent: number | null }>();
    for (const r of routes) {
      if (r.destinationKey === null) continue;
      const id = idOf(r.channel, r.destinationKey);
      const log = attempts.get(r.id) ?? [];
      const h = hour.get(id) ?? { attempts: 0, failures: 0, lastSent: null };
      for (const a of log) {
        if (a.startedAt.getTime() <= now - 3_600_000) continue;
        h.attempts++;
        if (a.outcome !== "sent") h.failures++;
        else h.lastSent = Math.max(h.lastSent ?? 0, a.startedAt.getTime() + a.durationMs);
      }
      hour.set(id, h);
      if (r.status !== "queued") continue;
      const q = queued.get(id) ??
        { channel: r.channel, key: r.destinationKey, n: 0, due: 0, oldest: null };
      q.n++;
      if (r.heldFrom === null && r.nextAttemptAt <= now) q.due++;
      const due = r.heldFrom ?? r.nextAttemptAt;
      if (due <= now && (q.oldest === null || due < q.oldest)) q.oldest = due;
      queued.set(id, q);
    }
    const ids = new Set([...this.rows.keys(), ...queued.keys()]);
    const order = { disabled: 0, open: 1, half_open: 1, paused: 2, closed: 3 };
    return [...ids].map((id): DestinationInfo => {
      const [channel, key] = splitId(id);
      const d = this.rows.get(id) ?? fresh();
      const q = queued.get(id);
      const halfOpen = d.state === "open" && d.openUntil !== null && d.openUntil <= now;
      const date = (t: number | null): Date | null => (t === null ? null : new Date(t));
      return {
        channel,
        key,
        state: halfOpen ? "half_open" : d.state,
        consecutiveFailures: d.consecutiveFailures,
        trips: d.trips,
        openUntil: date(d.openUntil),
        failingSince: date(d.failingSince),
        lastFailureAt: date(d.lastFailureAt),
        // A healthy destination's successes change nothing in its row: the log has them.
        lastSuccessAt: date(latest(d.lastSuccessAt, hour.get(id)?.lastSent ?? null)),
        lastError: d.lastError,
        reason: d.reason,
        settings: {
          maxInFlight: d.maxInFlight,
          failureThreshold: d.failureThreshold,
          cooldownMs: d.cooldownMs,
          ratePerSecond: d.ratePerSecond,
          burst: d.burst,
        },
        queued: q?.n ?? 0,
        oldestDueAt: date(q?.oldest ?? null),
        deferred: d.state === "closed" && d.tat !== null && d.tat > now ? q?.due ?? 0 : 0,
        inFlight: key !== CHANNEL_WIDE || d.maxInFlight !== null
          ? this.slots.get(id)?.size ?? 0
          : null,
        attemptsLastHour: hour.get(id)?.attempts ?? 0,
        failuresLastHour: hour.get(id)?.failures ?? 0,
      };
    }).sort((a, b) =>
      order[a.state] - order[b.state] || b.consecutiveFailures - a.consecutiveFailures ||
      b.queued - a.queued || a.channel.localeCompare(b.channel) || a.key.localeCompare(b.key)
    );
  }
}

/** The later of two times, either maybe unknown. */
function latest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}
