/**
 * The worker's memory of routes it sent but could not record anywhere (the
 * route's transaction failed and so did the salvage): how many such sends
 * each has had, and when it may be claimed again. And the pause on claiming
 * while the database refuses to record outcomes, so a worker that cannot
 * write down what it sent stops sending.
 *
 * @module
 */
import { backoff } from "../core/retry.ts";
import type { RetryPolicy } from "../core/retry.ts";
import type { Route } from "../core/route.ts";
import type { Unrecorded } from "../core/transaction.ts";

/** An outcome to record once the database can be reached again. */
export interface Pending {
  readonly route: Route;
  readonly unrecorded: Unrecorded;
}

interface Held {
  /** Sends of this route no store has a record of. */
  unrecorded: number;
  /** Claimable again from this time (the worker's clock); `Infinity`: never. */
  until: number;
}

/** At most this many routes are remembered; the oldest are forgotten first. */
const CAPACITY = 10_000;

/** Held routes and the claim pause; all times on the injected clock. */
export class Holds {
  readonly #now: () => number;
  readonly #held = new Map<string, Held>();
  readonly #pending = new Map<string, Pending>();
  /** Routes whose outcome is being recorded now (a count each: salvages may overlap). */
  readonly #settling = new Map<string, number>();
  #pausedUntil = 0;
  #refusals = 0;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Sends of `routeId` that no store recorded (0 for most routes). */
  unrecorded(routeId: string): number {
    return this.#held.get(routeId)?.unrecorded ?? 0;
  }

  /** Remembers one more unrecorded send; the route is not claimed again for `ms` (or ever). */
  hold(routeId: string, ms: number): void {
    const held = this.#held.get(routeId) ?? { unrecorded: 0, until: 0 };
    this.#held.delete(routeId); // re-inserted last: the map's order is the eviction order
    held.unrecorded++;
    held.until = this.#now() + ms;
    this.#held.set(routeId, held);
    for (const id of this.#held.keys()) {
      if (this.#held.size <= CAPACITY) break;
      this.#held.delete(id);
    }
  }

  /** The route's outcome was recorded after all: forget it. */
  release(routeId: string): void {
    this.#held.delete(routeId);
  }

  /**
   * Keeps an outcome the database was out of reach for, to record before the
   * next claim; until then the route is not claimed (sending it again would
   * repeat a send whose outcome is known).
   */
  pend(entry: Pending): void {
    if (this.#pending.size >= CAPACITY) return; // then it is sent again: at least once
    this.#pending.set(entry.route.id, entry);
  }

  /** The kept outcomes, handed over (and forgotten here). */
  takePending(): Pending[] {
    const entries = [...this.#pending.values()];
    this.#pending.clear();
    return entries;
  }

  /**
   * Marks `routeIds` as being settled (their transaction failed, and their
   * sends are finishing or their outcomes being salvaged): none is claimed
   * until the returned function is called, for their locks are gone and a
   * claim would send a route whose outcome is about to be recorded.
   */
  settling(routeIds: readonly string[]): () => void {
    for (const id of routeIds) this.#settling.set(id, (this.#settling.get(id) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const id of routeIds) {
        const left = (this.#settling.get(id) ?? 1) - 1;
        if (left > 0) this.#settling.set(id, left);
        else this.#settling.delete(id);
      }
    };
  }

  /** Ids the worker must not claim now. */
  excluded(): string[] {
    if (this.#held.size === 0 && this.#pending.size === 0 && this.#settling.size === 0) {
      return [];
    }
    const now = this.#now();
    const ids: string[] = [...this.#pending.keys(), ...this.#settling.keys()];
    for (const [id, held] of this.#held) if (held.until > now) ids.push(id);
    return ids;
  }

  /**
   * The database refused to record an outcome: stop claiming for a backoff
   * that grows with each refusal in a row. Returns the pause in ms.
   */
  pause(policy: RetryPolicy, random: () => number): number {
    this.#refusals++;
    const ms = backoff(this.#refusals, policy, random);
    this.#pausedUntil = this.#now() + ms;
    return ms;
  }

  /** An outcome was recorded: the database writes again. */
  resume(): void {
    this.#refusals = 0;
    this.#pausedUntil = 0;
  }

  /** Milliseconds left of the pause; 0 when claiming may go on. */
  pausedFor(): number {
    return Math.max(0, this.#pausedUntil - this.#now());
  }
}
