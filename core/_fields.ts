/**
 * Fields an object may have, and the refusal of one it may not: a misspelt
 * option (`secrets` for `secret`) would otherwise be dropped without a word,
 * and with it, say, every webhook's signature. TypeScript catches a misspelt
 * key only in an object literal, and only where the code is type-checked.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";

/**
 * Every field of `T`, once: written as `{ a: true, b: true }`, it fails to
 * compile when `T` gains a field the list lacks.
 */
export type FieldNames<T> = { readonly [K in keyof Required<T>]: true };

/** The first own key of `input` not in `known`; one set to `undefined` is no field. Reads no getter. */
export function unknownField(input: object, known: readonly string[]): string | undefined {
  return Object.keys(input).find((key) => {
    if (known.includes(key)) return false;
    const field = Object.getOwnPropertyDescriptor(input, key);
    return field?.get !== undefined || field?.value !== undefined;
  });
}

/** A key as an error shows it: cut at 64 characters. */
export function shownKey(key: string): string {
  return key.length <= 64 ? key : `${key.slice(0, 64)}…`;
}

/**
 * Throws an {@link InvalidArgumentError} for an option of `what` (a channel,
 * `Worker`, `PostgresStore`) that it does not take, naming the option (under
 * `at`, for a nested object) and the one it was likely meant to be. Anything
 * but an object is left to the caller's own checks.
 */
export function refuseUnknownOptions<T>(
  input: unknown,
  names: FieldNames<T>,
  what: string,
  at = "",
): void {
  if (typeof input !== "object" || input === null) return;
  const known = Object.keys(names);
  const extra = unknownField(input, known);
  if (extra === undefined) return;
  const near = nearest(extra, known);
  throw new InvalidArgumentError(
    `${at}${shownKey(extra)}`,
    `is not an option of ${what}` + (near === undefined ? "" : `; did you mean '${at}${near}'?`) +
      ` (its options: ${known.join(", ")})`,
  );
}

/** The known name `key` is likely a slip of: the same but for case, or two edits away at most. */
function nearest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = name.toLowerCase() === lower ? 0 : edits(lower, name.toLowerCase());
    if (distance <= 2 && (best === undefined || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

/** Levenshtein distance (one row at a time); keys are short. */
function edits(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length]!;
}
