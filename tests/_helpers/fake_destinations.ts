/**
 * The fake `destinations` table, as PostgresStore's: the claim's filter
 * (state, half-open probe, in-flight slots that end with the transaction),
 * reports applied on commit with their parking, and the operator's views.
 * The rules are `nextDestination`'s, shared with PostgresStore.
 *
 * @module
 */
import {
  CHANNEL_WIDE,
  freshDestination,
  HELD_UNTIL,
  nextDestination,
  stateAfter,
} from "../../core/destination.ts";
import type {
  DestinationAction,
  DestinationChange,
  DestinationHealth,
  DestinationInfo,
  DestinationPolicy,
  DestinationReport,
  DestinationSettings,
  DestinationState,
} from "../../core/destination.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { AttemptRecord } from "../../store.ts";

/** One fake destination row. */
export interface FakeDestination extends DestinationHealth {
  readonly maxInFlight: number | null;
}

/** What the fake destinations need of a route row. */
export interface DestinationRow {
  id: string;
  channel: string;
  destinationKey: string | null;
  status: string;
  priority: number;
  nextAttemptAt: number;
  heldFrom: number | null;
  seq: number;
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

  get(channel: string, key: string): FakeDestination | undefined {
    return this.rows.get(idOf(channel, key));
  }

  /**
   * The claim's filter for one due route, in claim order: its destination's
   * state lets it go now, and (where a cap applies) transaction `tx` holds or
   * takes one of the destination's slots.
   */
  claimable(
    r: DestinationRow,
    tx: number,
    now: number,
    maxInFlight: number | undefined,
    due: readonly DestinationRow[],
  ): boolean {
    if (r.destinationKey === null) return true;
    const d = this.get(r.channel, r.destinationKey);
    const halfOpen = d?.state === "open" && d.openUntil !== null && d.openUntil <= now;
    if (d && d.state !== "closed" && !halfOpen) return false;
    if (halfOpen) {
      const first = due
        .filter((x) => x.channel === r.channel && x.destinationKey === r.destinationKey)
        .sort((a, b) =>
          a.priority - b.priority || a.nextAttemptAt - b.nextAttemptAt || a.seq - b.seq
        )[0];
      if (first?.id !== r.id) return false;
    }
    const cap = halfOpen
      ? 1
      : d?.maxInFlight ?? (r.destinationKey !== CHANNEL_WIDE ? maxInFlight : undefined);
    if (cap === undefined) return true;
    const id = idOf(r.channel, r.destinationKey);
    const holders = this.slots.get(id) ?? new Set<number>();
    if (!holders.has(tx) && holders.size >= cap) return false;
    holders.add(tx);
    this.slots.set(id, holders);
    return true;
  }

  /** Ends transaction `tx`'s hold on every slot. */
  release(tx: number): void {
    for (const holders of this.slots.values()) holders.delete(tx);
  }

  /** A report's effect, computed now (as the locked row is read) and applied on commit. */
  report(
    report: DestinationReport,
    policy: DestinationPolicy,
    now: number,
  ): { pending: PendingReport; change: DestinationChange | undefined } {
    const id = idOf(report.channel, report.key);
    const before = this.rows.get(id) ?? { ...freshDestination(), maxInFlight: null };
    const after = {
      ...nextDestination(before, report, policy, now),
      maxInFlight: before.maxInFlight,
    };
    const changed = after.state !== before.state || after.openUntil !== before.openUntil;
    return {
      pending: { id, after },
      change: changed
        ? {
          channel: report.channel,
          key: report.key,
          from: before.state,
          to: after.state,
          openUntil: after.openUntil === null ? null : new Date(after.openUntil),
          trips: after.trips,
          reason: after.reason,
        }
        : undefined,
    };
  }

  /** Writes a committed report and parks the destination's routes if it is left blocked. */
  commit(
    p: PendingReport,
    routes: Iterable<DestinationRow>,
    lockedByOthers: (id: string) => boolean,
  ): void {
    const before = this.rows.get(p.id)?.state ?? "closed";
    this.rows.set(p.id, p.after);
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
    const before = this.rows.get(id) ?? { ...freshDestination(), maxInFlight: null };
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
    for (const [field, value] of Object.entries(settings)) {
      if (value !== null && value !== undefined && !(Number.isInteger(value) && value > 0)) {
        throw new InvalidArgumentError(field, "must be a positive integer or null", value);
      }
    }
    const id = idOf(channel, key);
    const before = this.rows.get(id) ?? { ...freshDestination(), maxInFlight: null };
    const pick = <T>(value: T | null | undefined, old: T | null): T | null =>
      value === undefined ? old : value;
    this.rows.set(id, {
      ...before,
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
      { channel: string; key: string; n: number; oldest: number | null }
    >();
    const hour = new Map<string, { attempts: number; failures: number }>();
    for (const r of routes) {
      if (r.destinationKey === null) continue;
      const id = idOf(r.channel, r.destinationKey);
      const log = attempts.get(r.id) ?? [];
      const h = hour.get(id) ?? { attempts: 0, failures: 0 };
      for (const a of log) {
        if (a.startedAt.getTime() <= now - 3_600_000) continue;
        h.attempts++;
        if (a.outcome !== "sent") h.failures++;
      }
      hour.set(id, h);
      if (r.status !== "queued") continue;
      const q = queued.get(id) ?? { channel: r.channel, key: r.destinationKey, n: 0, oldest: null };
      q.n++;
      const due = r.heldFrom ?? r.nextAttemptAt;
      if (due <= now && (q.oldest === null || due < q.oldest)) q.oldest = due;
      queued.set(id, q);
    }
    const ids = new Set([...this.rows.keys(), ...queued.keys()]);
    const order = { disabled: 0, open: 1, half_open: 1, paused: 2, closed: 3 };
    return [...ids].map((id): DestinationInfo => {
      const [channel, key] = splitId(id);
      const d = this.rows.get(id) ?? { ...freshDestination(), maxInFlight: null };
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
        lastSuccessAt: date(d.lastSuccessAt),
        lastError: d.lastError,
        reason: d.reason,
        settings: {
          maxInFlight: d.maxInFlight,
          failureThreshold: d.failureThreshold,
          cooldownMs: d.cooldownMs,
        },
        queued: q?.n ?? 0,
        oldestDueAt: date(q?.oldest ?? null),
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

/** The due time a route gets at enqueue, held or delayed by its destination. */
export function dueAtEnqueue(
  d: FakeDestination | undefined,
  due: number,
): { nextAttemptAt: number; heldFrom: number | null } {
  if (d?.state === "paused" || d?.state === "disabled") {
    return { nextAttemptAt: HELD_UNTIL, heldFrom: due };
  }
  if (d?.state === "open" && d.openUntil !== null && due < d.openUntil) {
    return { nextAttemptAt: d.openUntil, heldFrom: due };
  }
  return { nextAttemptAt: due, heldFrom: null };
}

function park(
  id: string,
  d: Pick<DestinationHealth, "state" | "openUntil">,
  routes: Iterable<DestinationRow>,
  lockedByOthers: (id: string) => boolean,
): void {
  const until = d.state === "open" ? d.openUntil ?? HELD_UNTIL : HELD_UNTIL;
  for (const r of routes) {
    if (idOf(r.channel, r.destinationKey ?? "") !== id || r.status !== "queued") continue;
    if (r.nextAttemptAt >= until || lockedByOthers(r.id)) continue;
    r.heldFrom ??= r.nextAttemptAt;
    r.nextAttemptAt = until;
  }
}

function release(
  id: string,
  routes: Iterable<DestinationRow>,
  lockedByOthers: (id: string) => boolean,
): boolean {
  let released = false;
  for (const r of routes) {
    if (idOf(r.channel, r.destinationKey ?? "") !== id || r.status !== "queued") continue;
    if (r.heldFrom === null || lockedByOthers(r.id)) continue;
    r.nextAttemptAt = r.heldFrom;
    r.heldFrom = null;
    released = true;
  }
  return released;
}

function idOf(channel: string, key: string): string {
  return `${channel}\n${key}`;
}

function splitId(id: string): [string, string] {
  const at = id.indexOf("\n");
  return [id.slice(0, at), id.slice(at + 1)];
}
