/**
 * Herald's error classes. Every error carries a stable `code` (listed in the
 * README) so callers branch on the code, never on the message. Messages say
 * what failed and why; they never contain secrets.
 *
 * @module
 */

/** The stable codes of {@link HeraldError}s. */
export type HeraldErrorCode =
  | "HERALD_INVALID_ARGUMENT"
  | "HERALD_PERMANENT"
  | "HERALD_RETRY_LATER"
  | "HERALD_SEND_TIMEOUT"
  | "HERALD_NETWORK"
  | "HERALD_SHUTDOWN"
  | "HERALD_LOCKED"
  | "HERALD_STORE"
  | "HERALD_UNAVAILABLE"
  | "HERALD_NO_SPACE"
  | "HERALD_PERMISSION_DENIED"
  | "HERALD_INCOMPATIBLE";

/** Base class of every error Herald throws on purpose. */
export class HeraldError extends Error {
  /** A stable machine-readable code; see the README's table of error codes. */
  readonly code: HeraldErrorCode;

  /** Creates an error with a stable `code`. */
  constructor(code: HeraldErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HeraldError";
    this.code = code;
  }
}

/**
 * Bad input: configuration, enqueue arguments, CLI flags. `field` names the
 * offending option so the message and the code agree on what to fix.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "./errors.ts";
 * const err = new InvalidArgumentError("interval", "must be a finite number", "soon");
 * console.log(err.message); // Invalid 'interval': must be a finite number, got "soon"
 * ```
 */
export class InvalidArgumentError extends HeraldError {
  /** The option, argument or column that was rejected. */
  readonly field: string;
  /** What is wrong with it, without the field or the value (`must be a finite number`). */
  readonly problem: string;

  /**
   * `got` is rendered into the message; pass nothing for values that may be
   * secret (a destination URL, an API key).
   */
  constructor(field: string, problem: string, ...got: [] | [unknown]) {
    const shown = got.length === 0 ? "" : `, got ${describe(got[0])}`;
    super("HERALD_INVALID_ARGUMENT", `Invalid '${field}': ${problem}${shown}`);
    this.name = "InvalidArgumentError";
    this.field = field;
    this.problem = problem;
  }
}

/** Facts a channel may attach to an outcome, kept in the attempt log. */
export interface DeliveryDetails {
  /** The HTTP status the provider answered with, when there was one. */
  readonly httpStatus?: number;
}

/**
 * Thrown by a channel when retrying cannot help: a malformed destination, a
 * 4xx answer, 410 Gone, a provider's "invalid recipient". The route is marked
 * `failed` at once.
 */
export class PermanentError extends HeraldError {
  /** The HTTP status behind the failure, when there was one. */
  readonly httpStatus: number | undefined;

  /** Creates a permanent failure; `message` must be free of secrets. */
  constructor(message: string, options?: ErrorOptions & DeliveryDetails) {
    super("HERALD_PERMANENT", message, options);
    this.name = "PermanentError";
    this.httpStatus = options?.httpStatus;
  }
}

/**
 * Thrown by a channel when the provider asked to come back later (429, 503
 * with `Retry-After`). The worker schedules the retry no sooner than
 * `retryAfterMs` (capped by its backoff policy's maximum).
 */
export class RetryLaterError extends HeraldError {
  /** How long the provider asked us to wait, in milliseconds, if it said. */
  readonly retryAfterMs: number | undefined;
  /** The HTTP status behind the failure, when there was one. */
  readonly httpStatus: number | undefined;

  /** Creates a retry request; `message` must be free of secrets. */
  constructor(
    message: string,
    options?: ErrorOptions & DeliveryDetails & { retryAfterMs?: number },
  ) {
    super("HERALD_RETRY_LATER", message, options);
    this.name = "RetryLaterError";
    this.retryAfterMs = options?.retryAfterMs;
    this.httpStatus = options?.httpStatus;
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") {
    const cut = value.length > 60 ? `${value.slice(0, 60)}…` : value;
    return JSON.stringify(cut);
  }
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}
