/**
 * Small deterministic tools for tests: a recording logger, a hand-driven
 * sleep, events, and a bounded wait on an observed condition.
 */
import type { Logger, LogLevel } from "../../observe/logger.ts";
import type { Channel } from "../../channels/channel.ts";
import type { Route } from "../../core/route.ts";

/** A logger that keeps every line, for assertions. */
export function recordingLogger(): {
  logger: Logger;
  lines: { level: LogLevel; msg: string; fields: object }[];
} {
  const lines: { level: LogLevel; msg: string; fields: object }[] = [];
  return {
    logger: { log: (level, msg, fields = {}) => void lines.push({ level, msg, fields }) },
    lines,
  };
}

/**
 * Stands in for every wait the worker makes. Waits between ticks (`poll`)
 * are recorded in `calls` and end when the test calls `wake()`; the
 * listener's waits (`probe`, `relisten`) are recorded in `listenerCalls`
 * and end when the test calls `wakeListener()`. Every wait ends when its
 * signal aborts.
 */
export class ManualSleep {
  readonly calls: number[] = [];
  readonly listenerCalls: number[] = [];
  #wake: (() => void) | undefined;
  #listener: (() => void)[] = [];
  #sleeping: (() => void)[] = [];
  #listening: (() => void)[] = [];

  readonly sleep = (ms: number, signal: AbortSignal, purpose = "poll"): Promise<void> => {
    if (purpose !== "poll") {
      this.listenerCalls.push(ms);
      for (const notify of this.#listening.splice(0)) notify();
      return new Promise((resolve) => {
        this.#listener.push(resolve);
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    this.calls.push(ms);
    for (const notify of this.#sleeping.splice(0)) notify();
    return new Promise((resolve) => {
      this.#wake = resolve;
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  };

  /** Resolves when the worker next goes to sleep (its tick is over). */
  nextSleep(): Promise<void> {
    return new Promise((resolve) => this.#sleeping.push(resolve));
  }

  /** Resolves when the listener next waits (before a probe, or before subscribing again). */
  nextListenerSleep(): Promise<void> {
    return new Promise((resolve) => this.#listening.push(resolve));
  }

  /** Ends the current sleep: the worker ticks again. */
  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Ends the listener's current waits: it probes (or subscribes) now. */
  wakeListener(): void {
    for (const wake of this.#listener.splice(0)) wake();
  }
}

/** A channel whose behaviour a test scripts per call. */
export function scriptedChannel(
  behave: (route: Route, signal: AbortSignal, call: number) => unknown,
): Channel & { calls: Route[] } {
  const calls: Route[] = [];
  return {
    calls,
    send(route, ctx) {
      calls.push(route);
      return behave(route, ctx.signal, calls.length) as Promise<void>;
    },
  };
}

/** Resolves with the next `name` event's detail. */
export function nextEvent<T>(target: EventTarget, name: string): Promise<T> {
  return new Promise((resolve) =>
    target.addEventListener(name, (e) => resolve((e as CustomEvent<T>).detail), { once: true })
  );
}

/**
 * The same channels without their providers' rate limits, for tests that take
 * one tick per case: a limited channel (Slack, Telegram, Twilio) would defer
 * the next case's route.
 */
export function withoutRateLimits(channels: Record<string, Channel>): Record<string, Channel> {
  return Object.fromEntries(
    Object.entries(channels).map(([name, c]) => [name, { send: c.send.bind(c) }]),
  );
}

/**
 * Polls `check` until it returns a value other than `undefined`, or fails
 * after `timeoutMs` naming `what`. The pause between polls only paces the
 * queries; the wait ends on the observed state, never on the clock.
 */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
