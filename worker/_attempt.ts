/**
 * One attempt at one route: run its channel under a timeout, then turn what
 * happened into an {@link Outcome}. Pure of storage, so the worker's
 * transaction handling stays in one place.
 *
 * @module
 */
import type { Channel } from "../channels/channel.ts";
import { HeraldError } from "../core/errors.ts";
import type { DeliveryDetails } from "../core/errors.ts";
import { backoff } from "../core/retry.ts";
import type { Finalisation, Outcome, Route, TraceHeaders } from "../core/route.ts";
import type { DestinationChange, DestinationVerdict } from "../core/destination.ts";
import type { SalvageResult } from "../core/transaction.ts";
import type { Pending } from "./_holds.ts";
import { context } from "@opentelemetry/api";
import { attemptSpan, endAttemptSpan, headersOf, tryTrace } from "../observe/tracing.ts";
import type { WorkerConfig } from "./config.ts";
import { describeError } from "../core/_redact.ts";
import { raceAbort } from "../core/_async.ts";

/** An attempt's result; `record` is absent when shutdown cut the send short. */
export interface AttemptResult {
  readonly route: Route;
  /** What to finalise; absent: leave the route as it was (no attempt spent). */
  readonly record: Finalisation | undefined;
  /** What the send said about its destination; absent: nothing (no answer was sought). */
  readonly verdict?: DestinationVerdict;
}

/** A batch's claimed routes and, once sent, their results; kept when its transaction fails. */
export interface Batch {
  readonly claimed: Route[];
  results: AttemptResult[];
  /**
   * The sends under way (never rejects). A lost connection fails the
   * transaction while they still run: their outcomes are waited for and
   * salvaged, not dropped.
   */
  sending?: Promise<AttemptResult[]>;
  /** What the route transaction's own fallback recorded, when the database refused outcomes. */
  fallback?: { readonly entries: Pending[]; readonly results: readonly SalvageResult[] };
  /** Destinations whose state the batch changed, announced once it commits. */
  changes?: readonly DestinationChange[] | undefined;
}

/**
 * Sends `route` and classifies the result. Never rejects: every failure
 * becomes an outcome. `hard` aborts the send (shutdown deadline).
 */
export async function attempt(
  route: Route,
  config: WorkerConfig,
  hard: AbortSignal,
  unrecorded = 0,
): Promise<AttemptResult> {
  // Sends this worker made but could not record count too, so a route whose
  // outcome the database keeps refusing still runs out of attempts.
  const attempts = route.attempts + unrecorded + 1;
  const began = performance.now();
  const tracer = config.tracer;
  const traced = tracer === false
    ? undefined
    : tryTrace(() => attemptSpan(tracer, route, attempts));
  const record = (
    outcome: Outcome,
    details: DeliveryDetails = {},
    verdict?: DestinationVerdict,
  ): AttemptResult => {
    const httpStatus = checkedHttpStatus(details.httpStatus);
    if (traced) {
      tryTrace(() =>
        endAttemptSpan(traced.span, {
          status: outcome.status,
          ...(outcome.status === "sent" ? {} : { error: outcome.error }),
          ...(httpStatus === undefined ? {} : { httpStatus }),
        })
      );
    }
    return {
      route,
      record: {
        routeId: route.id,
        outcome,
        durationMs: Math.max(0, Math.round((performance.now() - began) * 1000) / 1000),
        ...(httpStatus === undefined ? {} : { httpStatus }),
      },
      ...(verdict === undefined ? {} : { verdict }),
    };
  };
  const channel = config.channels.get(route.channel);
  if (!channel) {
    const error = `channel '${route.channel}' is not configured on this worker`;
    return record({ status: "failed", attempts, error });
  }
  // The receiver continues the send span's trace; with no SDK, the span is
  // the stored context itself, so the enqueuer's trace still flows on. A
  // route enqueued with no trace context hands none on.
  const trace = route.trace ? (tryTrace(() => headersOf(traced?.span)) ?? route.trace) : null;
  try {
    const sending = () => send(channel, route, { attempt: attempts, trace }, config, hard);
    const details = await (traced ? context.with(traced.ctx, sending) : sending());
    return record({ status: "sent", attempts }, details, "ok");
  } catch (err) {
    // Shutdown cut the send short: record nothing, so the attempt is not spent.
    if (hard.aborted) {
      traced?.span.end();
      return { route, record: undefined };
    }
    const verdict = verdictOf(err);
    if (route.probe && verdict === "fail") {
      // The probe of a half-open destination: its failure is the destination's,
      // logged but not counted; the route waits with the rest of the backlog.
      const error = `destination probe failed: ${describeError(err)}`;
      const uncounted = attempts - 1;
      return record(
        { status: "retry", attempts: uncounted, delayMs: config.retry.minMs, error },
        httpStatusOf(err),
        verdict,
      );
    }
    return record(classify(err, route, attempts, config), httpStatusOf(err), verdict);
  }
}

/**
 * What a failed send says about its destination: a timeout, a network error,
 * a 5xx or 429 (anything not permanent) that it struggles; 410 that it is
 * gone; any other refusal with an HTTP status that it is alive. A permanent
 * error with no status came from Herald's side (a bad payload): nothing.
 */
export function verdictOf(err: unknown): DestinationVerdict | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== "HERALD_PERMANENT") return "fail";
  const status = (err as { httpStatus?: unknown } | null)?.httpStatus;
  if (status === 410) return "gone";
  return typeof status === "number" ? "ok" : undefined;
}

/** Runs the channel with a timeout; a channel that ignores its signal is cut off anyway. */
async function send(
  channel: Channel,
  route: Route,
  { attempt, trace }: { readonly attempt: number; readonly trace: TraceHeaders | null },
  { sendTimeoutMs: timeoutMs }: Pick<WorkerConfig, "sendTimeoutMs">,
  hard: AbortSignal,
): Promise<DeliveryDetails> {
  const abort = new AbortController();
  const timer = setTimeout(
    () =>
      abort.abort(new HeraldError("HERALD_SEND_TIMEOUT", `send timed out after ${timeoutMs} ms`)),
    timeoutMs,
  );
  const onHard = (): void => abort.abort(hard.reason);
  hard.addEventListener("abort", onHard, { once: true });
  if (hard.aborted) onHard();
  try {
    // `new Promise` turns a synchronous throw or a non-promise return into a promise.
    const sending = new Promise<DeliveryDetails | void>((resolve) =>
      resolve(channel.send(route, { signal: abort.signal, attempt, trace }))
    );
    const result = await raceAbort(sending, abort.signal);
    return typeof result === "object" && result !== null ? result : {};
  } finally {
    clearTimeout(timer);
    hard.removeEventListener("abort", onHard);
  }
}

/** The outcome of a failed send. */
export function classify(
  err: unknown,
  route: Route,
  attempts: number,
  config: Pick<WorkerConfig, "maxAttempts" | "retry" | "random">,
): Outcome {
  const error = describeError(err);
  // Codes, not `instanceof`: a channel may come from another copy of Herald.
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "HERALD_PERMANENT") return { status: "failed", attempts, error };
  const max = route.maxAttempts ?? config.maxAttempts;
  if (attempts >= max) {
    return { status: "failed", attempts, error: `gave up after ${attempts} attempts: ${error}` };
  }
  const retryAfter = code === "HERALD_RETRY_LATER"
    ? (err as { retryAfterMs?: unknown }).retryAfterMs
    : undefined;
  const delayMs = typeof retryAfter === "number" && Number.isFinite(retryAfter)
    ? Math.min(Math.max(retryAfter, config.retry.minMs), config.retry.maxMs)
    : backoff(attempts, config.retry, config.random);
  return { status: "retry", attempts, delayMs, error };
}

/**
 * What a channel reports is checked before SQL sees it: a status the column
 * refuses (`1e10`, `NaN`) would fail the finalise and lose the outcome. Only
 * an integer from 100 to 599 is an HTTP status; anything else is dropped.
 */
function checkedHttpStatus(status: unknown): number | undefined {
  return typeof status === "number" && Number.isInteger(status) && status >= 100 &&
      status <= 599
    ? status
    : undefined;
}

function httpStatusOf(err: unknown): DeliveryDetails {
  const status = (err as { httpStatus?: unknown } | null)?.httpStatus;
  return typeof status === "number" ? { httpStatus: status } : {};
}
