/**
 * W3C Trace Context headers (`traceparent`, `tracestate`), read and written
 * by hand: Herald stores a notification's context and hands it on to
 * receivers whether or not an OpenTelemetry SDK is registered.
 *
 * @module
 */

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
