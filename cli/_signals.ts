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
 * Calls `handler` on each SIGINT or SIGTERM with the signal's name and how
 * many have come so far (1 for the first). Returns the function that stops
 * listening; until it is called, the signals no longer end the process.
 */
export function onStopSignals(handler: (name: StopSignal, count: number) => void): () => void {
  let count = 0;
  const on = (name: StopSignal) => (): void => handler(name, ++count);
  const onInt = on("SIGINT");
  const onTerm = on("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  };
}
