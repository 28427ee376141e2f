/**
 * W3C Trace Context headers (`traceparent`, `tracestate`), read and written
 * by hand: Herald stores a notification's context and hands it on to
 * receivers whether or not an OpenTelemetry SDK is registered.
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";
import type { TraceHeaders } from "./route.ts";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const TRACESTATE = /^[\x20-\x7e]{0,512}$/;

/** The parts of a `traceparent`, or `undefined` when it is not a valid version-00 one. */
export function parseTraceparent(
  value: unknown,
): { traceId: string; spanId: string; flags: number } | undefined {
  if (typeof value !== "string") return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, traceId, spanId, flags] = m;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return { traceId: traceId!, spanId: spanId!, flags: parseInt(flags!, 16) };
}

/** A `traceparent` header from its parts. */
export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, "0")}`;
}

/** True for a `tracestate` Herald will store and forward: printable ASCII, at most 512 bytes. */
export function isTracestate(value: unknown): value is string {
  return typeof value === "string" && TRACESTATE.test(value);
}

/** An explicit trace context given with the notification, checked. */
export function checkTrace(input: Record<string, unknown>): TraceHeaders | null {
  const parent = input["traceparent"];
  const state = input["tracestate"];
  if (parent === undefined || parent === null) {
    if (state !== undefined && state !== null) {
      throw new InvalidArgumentError(
        "notification.tracestate",
        "goes with notification.traceparent",
      );
    }
    return null;
  }
  if (parseTraceparent(parent) === undefined) {
    throw new InvalidArgumentError(
      "notification.traceparent",
      "must be a W3C traceparent: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>, ids not all zero",
      parent,
    );
  }
  if (state !== undefined && state !== null && !isTracestate(state)) {
    throw new InvalidArgumentError(
      "notification.tracestate",
      "must be printable ASCII, at most 512 characters",
    );
  }
  const tracestate = typeof state === "string" && state !== "" ? state : null;
  return { traceparent: (parent as string).trim(), tracestate };
}
