/**
 * SIGINT and SIGTERM at the program's edge: a long command hears them, and
 * decides what the first and what a second one mean.
 *
 * @module
 */
import process from "node:process";

/** `SIGINT` or `SIGTERM`. */
export type StopSignal = "SIGINT" | "SIGTERM";

/**
 * A signal this soon after the one before counts as that one: a program run
 * by `npm run` or `npx` gets one Ctrl-C twice, from the terminal (to its
 * whole process group) and again forwarded by npm, and that must not read
 * as the second press that means "now".
 */
const SAME_SIGNAL_MS = 200;

/**
 * Calls `handler` on each SIGINT or SIGTERM with the signal's name and how
 * many have come so far (1 for the first), one call per press (see
 * {@link SAME_SIGNAL_MS}). Returns the function that stops listening; until
 * it is called, the signals no longer end the process.
 */
export function onStopSignals(handler: (name: StopSignal, count: number) => void): () => void {
  const press = pressCounter();
  const on = (name: StopSignal) => (): void => {
    const count = press(performance.now());
    if (count !== undefined) handler(name, count);
  };
  const onInt = on("SIGINT");
  const onTerm = on("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  };
}

/**
 * Numbers signals by press: given each signal's arrival time (ms), the
 * press count it makes (1, 2, …), or `undefined` when it came within
 * `windowMs` of the last press and is that press again.
 */
export function pressCounter(windowMs = SAME_SIGNAL_MS): (at: number) => number | undefined {
  let count = 0;
  let last = -Infinity;
  return (at) => {
    if (at - last < windowMs) return undefined;
    last = at;
    return ++count;
  };
}
