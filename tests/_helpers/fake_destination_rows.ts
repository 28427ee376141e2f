/**
 * The fake destination row, and what a destination does to the route rows
 * behind it: the due time it gives at enqueue, parking them while it may not
 * send, and letting them go.
 *
 * @module
 */
import { HELD_UNTIL } from "../../core/destination.ts";
import type { DestinationHealth } from "../../core/destination.ts";

/** One fake destination row. */
export interface FakeDestination extends DestinationHealth {
  readonly maxInFlight: number | null;
  readonly ratePerSecond: number | null;
  readonly burst: number | null;
  /** The rate limiter's theoretical arrival time (GCRA). */
  readonly tat: number | null;
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

/** Holds back `id`'s queued routes (those no other transaction holds) until it may send again. */
export function park(
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

/** Lets `id`'s held routes go at their own due times; true when one was held. */
export function release(
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

/** A destination's id in the fake tables. */
export function idOf(channel: string, key: string): string {
  return `${channel}\n${key}`;
}

/** A destination id's channel and key. */
export function splitId(id: string): [string, string] {
  const at = id.indexOf("\n");
  return [id.slice(0, at), id.slice(at + 1)];
}
