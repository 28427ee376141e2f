/**
 * The leak check every test file runs when it ends, graphile-worker style:
 * whatever a test opened through these helpers (a FakeStore, a Worker, a
 * store, a driver handle, a server, a database) must be closed or settled
 * by then, or the file fails naming what was left open.
 *
 * Only public behaviour is looked at, so the check is the same on Deno, Bun
 * and Node: a FakeStore's open transactions and listeners, whether a
 * Worker's `run()` and `tick()` calls have settled, whether `close()` (or a
 * driver's `end()`) was called and has resolved.
 *
 * @example
 * ```ts
 * import { checkLeaks, fakeStore } from "../_helpers/leaks.ts";
 *
 * checkLeaks(); // at the top of the test file
 * const store = fakeStore(); // checked when the file ends
 * ```
 *
 * @module
 */
import { after, before } from "node:test";
import type { Worker } from "../../worker.ts";
import { FakeStore, type FakeStoreOptions } from "./fake_store.ts";
import { RUNTIME } from "./spawn.ts";

/** Something a test opened: what it is, and why it still counts as open (or `undefined`). */
interface Tracked {
  readonly what: string;
  leftOpen(): string | undefined;
}

// One list per process. Node and Deno run each file on its own; Bun runs the
// files of one process one after the other, and each file's check empties it.
const tracked: Tracked[] = [];

/** Adds `what` to the check at the end of the file; `leftOpen` says why it is still open. */
export function track(what: string, leftOpen: () => string | undefined): void {
  tracked.push({ what, leftOpen });
}

/** What was left open, one line each; empties the list. */
export function leftOpen(): string[] {
  return tracked.splice(0).flatMap((t) => {
    const why = t.leftOpen();
    return why === undefined ? [] : [`${t.what}: ${why}`];
  });
}

/**
 * Registers the check: call it at the top level of a test file. When the
 * file's tests are over, it fails if anything tracked is still open.
 */
export function checkLeaks(): void {
  // Bun runs every file in one process: what an earlier file left open is
  // named as its, not blamed on this file's tests.
  before(() => {
    const stale = leftOpen();
    if (stale.length > 0) {
      throw new Error(`left open by an earlier test file:\n  ${stale.join("\n  ")}`);
    }
  });
  after(() => {
    const open = leftOpen();
    if (open.length === 0) return;
    const err = new Error(`left open when the test file ended:\n  ${open.join("\n  ")}`);
    // Deno's node:test runs a file-level after() hook but drops what it
    // throws; an uncaught error is what fails the file there.
    if (RUNTIME !== "deno") throw err;
    setTimeout(() => {
      throw err;
    }, 0);
  });
}

/** A FakeStore the check looks at: no transaction and no subscription may be left open. */
export function fakeStore(options: FakeStoreOptions = {}): FakeStore {
  const store = new FakeStore(options);
  track("a FakeStore", () => {
    const open = [
      store.openTransactions > 0 ? `${store.openTransactions} open transaction(s)` : "",
      store.listenerCount > 0 ? `${store.listenerCount} open subscription(s)` : "",
    ].filter((s) => s !== "");
    return open.length === 0 ? undefined : open.join(", ");
  });
  return store;
}

/** Tracks `worker`: every `run()` and `tick()` call must have settled by the end of the file. */
export function trackWorker<W extends Worker>(worker: W): W {
  const busy = new Set<Promise<unknown>>();
  const watch = <T>(work: Promise<T>): Promise<T> => {
    busy.add(work);
    const forget = (): void => void busy.delete(work);
    work.then(forget, forget);
    return work;
  };
  const run = worker.run.bind(worker);
  const tick = worker.tick.bind(worker);
  worker.run = (signal) => watch(run(signal));
  worker.tick = (signal) => watch(tick(signal));
  track("a Worker", () => busy.size === 0 ? undefined : `${busy.size} run()/tick() still running`);
  return worker;
}

/** Tracks `handle` (a store, server or database): its `close()` must have resolved. */
export function trackClose<T extends { close(): Promise<void> }>(what: string, handle: T): T {
  let closed = false;
  const close = handle.close.bind(handle);
  handle.close = () => {
    const closing = close();
    closing.then(() => void (closed = true), () => {});
    return closing;
  };
  track(what, () => closed ? undefined : "never closed");
  return handle;
}

/** Tracks a driver handle (`postgres.Sql`): its `end()` must have resolved. */
export function trackEnd<T extends { end(options?: { timeout?: number }): Promise<void> }>(
  what: string,
  sql: T,
): T {
  let ended = false;
  const end = sql.end.bind(sql);
  sql.end = (options) => {
    const ending = end(options);
    ending.then(() => void (ended = true), () => {});
    return ending;
  };
  track(what, () => ended ? undefined : "never ended");
  return sql;
}
