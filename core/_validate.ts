/**
 * Input checks shared by every store, so `FakeStore` and `PostgresStore`
 * refuse exactly the same things, before anything reaches SQL.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { type FieldNames, shownKey, unknownField } from "./_fields.ts";
import type { JsonValue, NotificationInput, RouteInput, TraceHeaders } from "./route.ts";
import type { DestinationAction, DestinationSettings } from "./destination.ts";
import { checkTrace } from "./_trace_context.ts";
import { httpUrl, MAX_HOST_LENGTH } from "./destination_key.ts";
import { isPlainObject, MAX_PAYLOAD_DEPTH, read, snapshotJson, textProblem } from "./_snapshot.ts";

/** Limits on what one `enqueue` call may carry. */
export const LIMITS = {
  /** Routes per notification. */
  maxRoutes: 1_000,
  /** Serialised payload size in bytes (UTF-8). */
  maxPayloadBytes: 1_048_576,
  /** Nesting depth of the payload. */
  maxPayloadDepth: MAX_PAYLOAD_DEPTH,
  /** Destination length in characters. */
  maxDestinationLength: 4_096,
  /** Length of `kind` and of the idempotency key. */
  maxKeyLength: 255,
} as const;

/** A channel name: lower-case letters, digits, `_` and `-`, starting with a letter. */
export const CHANNEL_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
/** A schema name Herald accepts (it is still quoted wherever it is used). */
// 56, not Postgres' 63: the wake-up channel `herald:<schema>` must fit in 63 bytes too.
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,55}$/;

const INT4_MAX = 2_147_483_647;
/**
 * The times `deliverAt` may name: Postgres stores far more, but the driver
 * writes a Date as ISO 8601, whose six-digit years (`+275760-…`) it misreads.
 */
export const DELIVER_AT_RANGE = [
  Date.parse("0001-01-01T00:00:00Z"),
  Date.parse("9999-12-31T23:59:59.999Z"),
] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Reads a yes/no setting (`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`,
 * any case); `undefined` when it is not set.
 */
export function parseBoolean(field: string, raw: string | undefined): boolean | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new InvalidArgumentError(field, "must be true or false", raw);
}

/**
 * Checks route ids (each a UUID, naming `field` when one is not); returns
 * them lower-cased, each once. Whether an empty list is allowed is the
 * caller's to say.
 */
export function checkRouteIds(field: string, ids: readonly unknown[]): string[] {
  if (!Array.isArray(ids)) throw new InvalidArgumentError(field, "must be a list of route ids");
  for (const id of ids) {
    if (!isUuid(id)) throw new InvalidArgumentError(field, "must be a route id (a UUID)", id);
  }
  return [...new Set((ids as string[]).map((id) => id.toLowerCase()))];
}

/** True for a canonical UUID string (a route or notification id). */
export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}

/** A notification that passed the checks, with its payload serialised. */
export interface CheckedNotification {
  readonly kind: string;
  readonly payload: JsonValue;
  readonly payloadJson: string;
  readonly idempotencyKey: string | null;
  readonly trace: TraceHeaders | null;
}

/** A route that passed the checks, with defaults filled in. */
export interface CheckedRoute {
  readonly channel: string;
  readonly destination: string;
  readonly deliverAt: Date | null;
  readonly priority: number;
  readonly maxAttempts: number | null;
}

/** Checks an `enqueue` call's arguments; throws {@link InvalidArgumentError}. */
export function checkEnqueue(
  notification: unknown,
  routes: unknown,
): { notification: CheckedNotification; routes: CheckedRoute[] } {
  return { notification: checkNotification(notification), routes: checkRoutes(routes) };
}

function checkNotification(input: unknown): CheckedNotification {
  if (!isPlainObject(input)) {
    throw new InvalidArgumentError("notification", "must be an object with a 'kind'", input);
  }
  refuseUnknown(input, NOTIFICATION_FIELDS, "notification");
  const kind = checkText(input["kind"], "notification.kind", LIMITS.maxKeyLength);
  const given = read(input, "payload", "notification.payload");
  const payload = snapshotJson(given === undefined ? {} : given, "notification.payload", 0, []);
  const payloadJson = JSON.stringify(payload);
  const bytes = new TextEncoder().encode(payloadJson).length;
  if (bytes > LIMITS.maxPayloadBytes) {
    throw new InvalidArgumentError(
      "notification.payload",
      `is ${bytes} bytes as JSON; the limit is ${LIMITS.maxPayloadBytes}`,
    );
  }
  const key = input["idempotencyKey"];
  const idempotencyKey = key === undefined || key === null
    ? null
    : checkText(key, "notification.idempotencyKey", LIMITS.maxKeyLength);
  return { kind, payload, payloadJson, idempotencyKey, trace: checkTrace(input) };
}

function checkRoutes(input: unknown): CheckedRoute[] {
  if (!Array.isArray(input)) throw new InvalidArgumentError("routes", "must be an array", input);
  if (input.length === 0) throw new InvalidArgumentError("routes", "must hold at least one route");
  if (input.length > LIMITS.maxRoutes) {
    throw new InvalidArgumentError(
      "routes",
      `holds ${input.length} routes; the limit per notification is ${LIMITS.maxRoutes}`,
    );
  }
  return input.map((route: unknown, i) => checkRoute(route, `routes[${i}]`));
}

function checkRoute(input: unknown, at: string): CheckedRoute {
  if (!isPlainObject(input)) {
    throw new InvalidArgumentError(at, "must be an object with 'channel' and 'destination'", input);
  }
  refuseUnknown(input, ROUTE_FIELDS, at);
  const channel = input["channel"];
  if (typeof channel !== "string" || !CHANNEL_NAME.test(channel)) {
    throw new InvalidArgumentError(
      `${at}.channel`,
      "must be 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter",
      channel,
    );
  }
  // The destination may be a secret (a Slack webhook URL): never echo it.
  const destination = input["destination"];
  if (typeof destination !== "string" || destination.trim() === "") {
    throw new InvalidArgumentError(`${at}.destination`, "must be a non-empty string");
  }
  if (destination.length > LIMITS.maxDestinationLength) {
    throw new InvalidArgumentError(
      `${at}.destination`,
      `is ${destination.length} characters; the limit is ${LIMITS.maxDestinationLength}`,
    );
  }
  if (destination !== destination.trim()) {
    throw new InvalidArgumentError(`${at}.destination`, "must not start or end with whitespace");
  }
  const bad = textProblem(destination);
  if (bad) throw new InvalidArgumentError(`${at}.destination`, bad);
  // Its origin becomes its destination's key, indexed: no DNS name is longer.
  const host = httpUrl(destination)?.hostname ?? "";
  if (host.length > MAX_HOST_LENGTH) {
    throw new InvalidArgumentError(
      `${at}.destination`,
      `its host name is ${host.length} characters; a host name has at most ${MAX_HOST_LENGTH}`,
    );
  }

  const deliverAt = input["deliverAt"];
  if (deliverAt !== undefined && deliverAt !== null) {
    const t = deliverAt instanceof Date ? deliverAt.getTime() : Number.NaN;
    if (!(t >= DELIVER_AT_RANGE[0] && t <= DELIVER_AT_RANGE[1])) {
      throw new InvalidArgumentError(
        `${at}.deliverAt`,
        "must be a valid Date in the years 1 to 9999",
        deliverAt,
      );
    }
  }
  const priority = input["priority"] ?? 0;
  if (!Number.isInteger(priority) || Math.abs(priority as number) > INT4_MAX) {
    throw new InvalidArgumentError(
      `${at}.priority`,
      `must be an integer from -${INT4_MAX} to ${INT4_MAX} (lower runs first)`,
      priority,
    );
  }
  const maxAttempts = input["maxAttempts"] ?? null;
  if (
    maxAttempts !== null &&
    (!Number.isInteger(maxAttempts) || (maxAttempts as number) < 1 ||
      (maxAttempts as number) > 1000)
  ) {
    throw new InvalidArgumentError(
      `${at}.maxAttempts`,
      "must be an integer from 1 to 1000",
      maxAttempts,
    );
  }
  return {
    channel,
    destination,
    deliverAt: (deliverAt as Date | undefined) ?? null,
    priority: priority as number,
    maxAttempts: maxAttempts as number | null,
  };
}

// Every field of the public types: `satisfies` fails when one is added there and not here.
const NOTIFICATION_FIELDS = Object.keys(
  {
    kind: true,
    payload: true,
    idempotencyKey: true,
    traceparent: true,
    tracestate: true,
  } satisfies FieldNames<NotificationInput>,
);
const ROUTE_FIELDS = Object.keys(
  {
    channel: true,
    destination: true,
    deliverAt: true,
    priority: true,
    maxAttempts: true,
  } satisfies FieldNames<RouteInput>,
);

/**
 * Refuses a field `enqueue` does not take (a misspelt `deliverAt` would be dropped without a
 * word); one set to `undefined` is no field. Reads no getter.
 */
function refuseUnknown(input: object, known: readonly string[], at: string): void {
  const extra = unknownField(input, known);
  if (extra === undefined) return;
  throw new InvalidArgumentError(
    `${at}.${shownKey(extra)}`,
    `is not a field of ${at.startsWith("routes") ? "a route" : "a notification"}; ` +
      `the fields are ${known.join(", ")}`,
  );
}

function checkText(value: unknown, field: string, max: number): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(field, "must be a non-empty string", value);
  }
  if (value.length > max) {
    throw new InvalidArgumentError(field, `is ${value.length} characters; the limit is ${max}`);
  }
  const bad = textProblem(value);
  if (bad) throw new InvalidArgumentError(field, bad);
  return value;
}

/** The longest destination key a store takes (a computed one is under 300 characters). */
export const MAX_KEY_LENGTH = 512;
const ACTIONS: readonly DestinationAction[] = ["pause", "resume", "disable", "enable"];

/**
 * Checks a destination named by an operator (channel and key) and, for a
 * change of state, the action and its reason, before any store sees them.
 * Throws `InvalidArgumentError` naming the parameter.
 */
export function checkDestinationCall(
  channel: unknown,
  key: unknown,
  change?: { action: unknown; reason: unknown },
): void {
  if (typeof channel !== "string" || !CHANNEL_NAME.test(channel)) {
    throw new InvalidArgumentError(
      "channel",
      "must be 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter",
      channel,
    );
  }
  checkText(key, "key", MAX_KEY_LENGTH);
  if (change === undefined) return;
  if (!ACTIONS.includes(change.action as DestinationAction)) {
    throw new InvalidArgumentError("action", `must be one of ${ACTIONS.join(", ")}`, change.action);
  }
  if (change.reason !== undefined) checkText(change.reason, "reason", 500);
}

/**
 * Checks settings before any store sees them: counts are positive integers,
 * the rate a positive number of sends a second (at most 1,000,000); `null`
 * clears one. Throws `InvalidArgumentError` naming the field.
 */
export function checkSettings(settings: DestinationSettings): void {
  if (typeof settings !== "object" || settings === null) {
    throw new InvalidArgumentError("settings", "must be an object", settings);
  }
  const known = ["maxInFlight", "failureThreshold", "cooldownMs", "ratePerSecond", "burst"];
  for (const [field, value] of Object.entries(settings)) {
    if (!known.includes(field)) {
      throw new InvalidArgumentError(field, "is not a destination setting");
    }
    if (value === null || value === undefined) continue;
    const ok = field === "ratePerSecond"
      ? typeof value === "number" && Number.isFinite(value) && value > 0 && value <= 1_000_000
      : Number.isInteger(value) && value > 0 && value <= 2_147_483_647;
    if (!ok) {
      const what = field === "ratePerSecond"
        ? "a positive number up to 1000000"
        : "a positive integer";
      throw new InvalidArgumentError(field, `must be ${what} or null`, value);
    }
  }
}
