/**
 * What the store contract's areas share: how a target opens a store, how a
 * test case is written, and the small fixtures the cases use.
 *
 * @module
 */
import type { TestContext } from "node:test";
import type { DestinationAdmin, Store } from "../../../store.ts";
import type { Finalisation, Outcome, Route } from "../../../core/route.ts";

/** How the suite gets a fresh, empty store (and throws it away). */
export interface ContractTarget {
  readonly name: string;
  /**
   * False for a store with a single session (embedded PGlite): the tests that
   * hold two transactions open at once would wait on each other for ever.
   */
  readonly concurrentTransactions?: boolean;
  open(): Promise<OpenedStore>;
}

/** A fresh store, and what the suite needs to see its clock. */
export interface OpenedStore {
  readonly store: Store;
  cleanup(): Promise<void>;
  /**
   * The store's clock now, in milliseconds (fractions kept). Absent where it
   * cannot be read beside an open transaction (a single-session database):
   * the clock tests are skipped there.
   */
  clock?(): Promise<number>;
  /** Lets at least `ms` pass on the store's clock (waits on the clock, or moves a fake one). */
  elapse?(ms: number): Promise<void>;
}

/** What a case is given: the target, and the store it opened (migrated) for this test. */
export interface ContractRun {
  readonly target: ContractTarget;
  readonly opened: OpenedStore;
  readonly store: Store;
}

/** One test of the contract; an area is a list of them. */
export interface ContractCase {
  readonly name: string;
  /** Why the case cannot run on `target` (it is registered as skipped), or `undefined`. */
  readonly skip?: (target: ContractTarget) => string | undefined;
  run(c: ContractRun, t: TestContext): Promise<void>;
}

/** A named list of cases, registered as one `describe`. */
export interface ContractArea {
  readonly name: string;
  readonly cases: readonly ContractCase[];
}

/** An hour, in milliseconds. */
export const HOUR = 3_600_000;

/** A finalisation record for `routeId`. */
export function rec(routeId: string, outcome: Outcome): Finalisation {
  return { routeId, outcome, durationMs: 1 };
}

/** Claims every due route (but `exclude`) in a transaction of its own. */
export function claimAll(store: Store, exclude: string[] = []): Promise<Route[]> {
  return store.transaction((tx) => tx.claimDue({ limit: 10_000, exclude }));
}

/** Skips a case on a store with one session. */
export function needsTwoSessions(target: ContractTarget): string | undefined {
  return target.concurrentTransactions === false ? "needs two concurrent sessions" : undefined;
}

/** `n` log routes to destinations "1", "2", ... */
export function logRoutes(n: number): { channel: string; destination: string }[] {
  return Array.from({ length: n }, (_, i) => ({ channel: "log", destination: String(i + 1) }));
}

/** `store` with the destination operations (every store in the contract has them). */
export function admin(store: Store): Store & DestinationAdmin {
  return store as Store & DestinationAdmin;
}
