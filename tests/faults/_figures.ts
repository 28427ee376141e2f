/**
 * Sizes and figures of the fault scenarios. Each scenario prints one line
 * `HERALD_FIGURES {json}` on standard error (and appends it to
 * `$HERALD_FIGURES_FILE` when set, which is how `report.ts` collects them).
 *
 * Sizes: CI runs every scenario at a reduced but meaningful size under each
 * of the three test runners; `HERALD_FAULTS_FULL=1` runs the full sizes the
 * README's figures come from (`report.ts` sets it).
 *
 * @module
 */
import { appendFileSync } from "node:fs";
import process from "node:process";
import { CURRENT } from "./_procs.ts";

/** True when the full-size scenarios were asked for. */
export const FULL: boolean = process.env["HERALD_FAULTS_FULL"] === "1";

/** `full` under `HERALD_FAULTS_FULL=1`, else `ci`. */
export function size(ci: number, full: number): number {
  return FULL ? full : ci;
}

/** Milliseconds, rounded to 0.1. */
export function ms(value: number): number {
  return Math.round(value * 10) / 10;
}

/** p50, p95 and max of `values` (milliseconds), rounded. */
export function summary(
  values: readonly number[],
): { n: number; p50: number; p95: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number =>
    sorted.length === 0
      ? 0
      : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
  return { n: sorted.length, p50: ms(at(0.5)), p95: ms(at(0.95)), max: ms(at(1)) };
}

/** Prints a scenario's figures as one `HERALD_FIGURES` JSON line. */
export function printFigures(scenario: string, figures: Record<string, unknown>): void {
  const line = `HERALD_FIGURES ${
    JSON.stringify({ scenario, runner: CURRENT, full: FULL, ...figures })
  }`;
  console.error(line);
  const file = process.env["HERALD_FIGURES_FILE"];
  if (file) appendFileSync(file, `${line}\n`);
}

/** A small seeded generator (mulberry32), so a random kill schedule can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
