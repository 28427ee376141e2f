/**
 * OpenTelemetry tracing for Herald, through `@opentelemetry/api` alone (a
 * no-op until the application registers an SDK): a producer span `publish
 * herald` at enqueue, a consumer span `process <channel>` per attempt
 * parented on the context stored with the notification, and that context
 * handed on to receivers as `traceparent` even when no SDK is registered.
 * Attributes follow the OpenTelemetry messaging semantic conventions.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { Worker } from "../worker.ts";
 * import type { Store } from "../store.ts";
 * import { logChannel } from "../channels/log.ts";
 *
 * // With an SDK registered by the application, spans go to its exporter;
 * // `tracer: false` turns Herald's spans off entirely.
 * export function tracedWorker(store: Store): Worker {
 *   return new Worker({ store, channels: { log: logChannel() }, tracer: trace.getTracer("my-app") });
 * }
 * ```
 *
 * @module
 */
import {
  type Context,
  context,
  createTraceState,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Tracer,
} from "@opentelemetry/api";
import type { Route, TraceHeaders } from "../core/route.ts";
import { formatTraceparent, isTracestate, parseTraceparent } from "../core/_trace_context.ts";
import { VERSION } from "../core/version.ts";

export type { TraceHeaders } from "../core/route.ts";

/**
 * Runs a tracing call; a tracer that throws (an application's broken SDK)
 * costs the trace, never the send or its outcome.
 */
export function tryTrace<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** Herald's tracer from the global provider (a no-op one without an SDK). */
export function heraldTracer(): Tracer {
  return trace.getTracer("herald", VERSION);
}

/** The span context a stored `traceparent` names, as an OpenTelemetry context (remote parent). */
export function contextOf(headers: TraceHeaders | null | undefined): Context | undefined {
  const parts = parseTraceparent(headers?.traceparent);
  if (!parts) return undefined;
  const state = headers?.tracestate;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parts.traceId,
    spanId: parts.spanId,
    traceFlags: parts.flags & TraceFlags.SAMPLED,
    isRemote: true,
    ...(isTracestate(state) && state !== "" ? { traceState: createTraceState(state) } : {}),
  });
}

/** The headers of `span`'s context (or of the context it continues), or `null`. */
export function headersOf(span: Span | undefined): TraceHeaders | null {
  const sc = span?.spanContext();
  if (!sc || !trace.isSpanContextValid(sc)) return null;
  const state = sc.traceState?.serialize() ?? "";
  return {
    traceparent: formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags),
    tracestate: state === "" ? null : state,
  };
}

/**
 * Runs the enqueue inside a producer span `publish herald`, parented on
 * `explicit` (a `traceparent` given with the notification) or the active
 * context; `fn` gets the headers to store. With no SDK the span records
 * nothing, and the stored context is the parent's: the enqueuer's trace.
 * Without a parent there is no trace to carry: no span, nothing stored.
 */
export async function publishSpan<T>(
  tracer: Tracer,
  explicit: TraceHeaders | null,
  fn: (stored: TraceHeaders | null) => Promise<T>,
): Promise<T> {
  const parent = contextOf(explicit) ?? context.active();
  const sc = trace.getSpanContext(parent);
  if (!sc || !trace.isSpanContextValid(sc)) return await fn(null);
  const span = tracer.startSpan("publish herald", {
    kind: SpanKind.PRODUCER,
    attributes: { "messaging.system": "herald", "messaging.operation.type": "send" },
  }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(headersOf(span) ?? explicit));
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name ?? "error" });
    throw err;
  } finally {
    span.end();
  }
}

/** Starts the consumer span `process <channel>` of one attempt at `route`. */
export function attemptSpan(
  tracer: Tracer,
  route: Route,
  attempt: number,
  links: readonly Link[] = [],
): { span: Span; ctx: Context } {
  const parent = contextOf(route.trace) ?? ROOT_CONTEXT;
  const span = tracer.startSpan(`process ${route.channel}`, {
    kind: SpanKind.CONSUMER,
    attributes: {
      "messaging.system": "herald",
      "messaging.operation.type": "process",
      "messaging.operation.name": "process",
      "messaging.message.id": route.id,
      "messaging.destination.name": route.channel,
      "messaging.message.conversation_id": route.notificationId,
      "herald.attempt": attempt,
      "herald.kind": route.kind,
    },
    links: [...links],
  }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Records an attempt's outcome on its span and ends it. */
export function endAttemptSpan(
  span: Span,
  outcome: { status: string; error?: string; httpStatus?: number },
): void {
  span.setAttribute("herald.outcome", outcome.status);
  if (outcome.httpStatus !== undefined) {
    span.setAttribute("http.response.status_code", outcome.httpStatus);
  }
  if (outcome.status !== "sent") {
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error ?? outcome.status });
  }
  span.end();
}

/**
 * The span of a batch (batch mode): `process herald`, linked to every
 * route's stored context, as the messaging conventions advise for a
 * consumer that takes many messages at once. `undefined` for one route.
 */
export function batchSpan(tracer: Tracer | false, routes: readonly Route[]): Span | undefined {
  if (tracer === false || routes.length < 2) return undefined;
  return tracer.startSpan("process herald", {
    kind: SpanKind.CONSUMER,
    attributes: {
      "messaging.system": "herald",
      "messaging.operation.type": "process",
      "messaging.batch.message_count": routes.length,
    },
    links: linksOf(routes),
  }, ROOT_CONTEXT);
}

/** Links to each route's stored context, for the span of a batch. */
export function linksOf(routes: readonly Route[]): Link[] {
  return routes.flatMap((r) => {
    const sc = trace.getSpanContext(contextOf(r.trace) ?? ROOT_CONTEXT);
    return sc ? [{ context: sc }] : [];
  });
}

/** The headers of the active context's span, or `null` without one. */
export function activeHeaders(): TraceHeaders | null {
  return headersOf(trace.getActiveSpan());
}

/** The trace and span ids of the active span, for log lines; empty without one. */
export function activeTraceIds(): { trace_id?: string; span_id?: string } {
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}
