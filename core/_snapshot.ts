/**
 * A payload as Herald stores it: checked value by value and copied, so what
 * passed the checks is what is serialised (a getter is read once), and
 * nothing Postgres `jsonb` would refuse or mangle gets through.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import type { JsonValue } from "./route.ts";

/** Nesting depth of a payload. */
export const MAX_PAYLOAD_DEPTH = 64;

/** Why Postgres `text`/`jsonb` would refuse (or mangle) this string, if it would. */
export function textProblem(s: string): string | undefined {
  if (s.includes("\u0000")) {
    return "must not contain NUL characters (Postgres text cannot store them)";
  }
  if (!s.isWellFormed()) return "must not contain lone UTF-16 surrogates";
  return undefined;
}

/**
 * Checks a payload and returns a plain copy of it: every value is read once,
 * so a getter cannot pass the checks and then serialise differently.
 */
export function snapshotJson(
  value: unknown,
  path: string,
  depth: number,
  stack: object[],
): JsonValue {
  if (depth > MAX_PAYLOAD_DEPTH) {
    throw new InvalidArgumentError(path, `nests deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  }
  switch (typeof value) {
    case "string": {
      const bad = textProblem(value);
      if (bad) throw new InvalidArgumentError(path, bad);
      return value;
    }
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) {
        throw new InvalidArgumentError(
          path,
          "must be a finite number (JSON has no NaN or Infinity)",
          value,
        );
      }
      return value;
    case "object": {
      if (value === null) return null;
      if (stack.includes(value)) throw new InvalidArgumentError(path, "is a cyclic reference");
      stack.push(value);
      let copy: JsonValue;
      if (Array.isArray(value)) {
        copy = Array.from(
          { length: value.length },
          (_, i) =>
            snapshotJson(read(value, i, `${path}[${i}]`), `${path}[${i}]`, depth + 1, stack),
        );
      } else if (isPlainObject(value)) {
        const out: Record<string, JsonValue> = {};
        for (const key of Object.keys(value)) {
          const bad = textProblem(key);
          if (bad) throw new InvalidArgumentError(`${path} key`, bad);
          const at = `${path}.${key.slice(0, 40)}`;
          const item = snapshotJson(read(value, key, at), at, depth + 1, stack);
          // An own `__proto__` key (JSON.parse makes one): assigned, it would set the prototype.
          if (key === "__proto__") {
            Object.defineProperty(out, key, { value: item, enumerable: true, writable: true });
          } else out[key] = item;
        }
        copy = out;
      } else {
        const type = (value as object).constructor?.name ?? "object";
        throw new InvalidArgumentError(
          path,
          `must be plain JSON; a ${type} does not survive a JSON round trip (convert it first)`,
        );
      }
      stack.pop();
      return copy;
    }
    default:
      throw new InvalidArgumentError(path, `must be JSON; a ${typeof value} is not serialisable`);
  }
}

/** Reads one member, turning a throwing getter into a typed error. */
export function read(container: object, key: string | number, at: string): unknown {
  try {
    return (container as Record<string | number, unknown>)[key];
  } catch {
    throw new InvalidArgumentError(at, "could not be read (a getter threw); pass plain data");
  }
}

/** An object whose prototype is `Object.prototype` or none: plain data. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
