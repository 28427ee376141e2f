/**
 * How the worker tells of an outcome: a log line at the level it deserves
 * and an event for the application.
 *
 * @module
 */
import type { RouteEventDetail, WorkerEventName } from "../core/events.ts";
import type { Finalisation, Route } from "../core/route.ts";
import type { Logger } from "../observe/logger.ts";
import { redactDestination } from "../core/_redact.ts";

/** The part of an event's detail every route event carries. */
export function routeDetail(route: Route, attempt: number): RouteEventDetail {
  return {
    routeId: route.id,
    notificationId: route.notificationId,
    kind: route.kind,
    channel: route.channel,
    destination: redactDestination(route.destination),
    attempt,
  };
}

/** Dispatches one of the worker's events. */
export type Emit = (name: WorkerEventName, detail: RouteEventDetail) => void;

/** Logs and emits a recorded outcome; `record` absent: the send was cut short by shutdown. */
export function reportOutcome(
  logger: Logger,
  emit: Emit,
  { route, record }: { route: Route; record: Finalisation | undefined },
): void {
  if (!record) {
    logger.log("info", "send cut short by shutdown; route released", { route_id: route.id });
    return;
  }
  const { outcome } = record;
  const detail: RouteEventDetail = {
    ...routeDetail(route, outcome.attempts),
    durationMs: record.durationMs,
    ...(record.httpStatus === undefined ? {} : { httpStatus: record.httpStatus }),
  };
  const fields = { route_id: route.id, channel: route.channel, attempt: outcome.attempts };
  switch (outcome.status) {
    case "sent":
      logger.log("debug", "route sent", fields);
      emit("sent", detail);
      return;
    case "retry":
      logger.log("info", "route will be retried", {
        ...fields,
        delay_ms: outcome.delayMs,
        error: outcome.error,
      });
      emit("retry", { ...detail, error: outcome.error, delayMs: outcome.delayMs });
      return;
    case "failed":
      logger.log("warn", "route failed for good", { ...fields, error: outcome.error });
      emit("failed", { ...detail, error: outcome.error });
      return;
  }
}
