/**
 * Small promise helpers shared by the worker, the channels and the bench:
 * waits that end early on a signal, races against an abort or a deadline.
 *
 * @module
 */
import { HeraldError } from "./errors.ts";

/** The longest single timer: `setTimeout` fires at once for anything above 2^31-1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Waits `ms` (any length: longer waits run as several timers), or less if
 * `signal` aborts; never rejects.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    let left = Math.max(0, ms);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const arm = (): void => {
      const step = Math.min(left, MAX_TIMER_MS);
      left -= step;
      timer = setTimeout(left > 0 ? arm : done, step);
    };
    arm();
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Settles with `work`, or rejects with `signal.reason` as soon as `signal`
 * aborts (for work that takes no signal of its own, or ignores it).
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // Abandoned, but still handled: its own rejection (the same abort, seen
    // later) must not surface as an unhandled one.
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Settles with `work`, or rejects after `ms` naming `what`; a result that
 * arrives late is handed to `onLate` (to close what it opened).
 */
export function bounded<T>(
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

/** A deadline that can be brought forward, never pushed back. */
export class Deadline {
  /** Resolves when the deadline is reached (never, once cleared). */
  readonly reached: Promise<"deadline">;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #endsAt: number;
  #resolve!: (value: "deadline") => void;

  constructor(ms: number) {
    this.#endsAt = performance.now() + ms;
    this.reached = new Promise((resolve) => (this.#resolve = resolve));
    this.#arm(ms);
  }

  /** Ends the wait `ms` from now, if that is sooner than planned; true when it was. */
  shorten(ms: number): boolean {
    if (performance.now() + ms >= this.#endsAt) return false;
    this.#endsAt = performance.now() + ms;
    this.#arm(ms);
    return true;
  }

  /** Stops the timer. */
  clear(): void {
    clearTimeout(this.#timer);
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#resolve("deadline"), ms);
  }
}
