/**
 * Rows as the store's readers see them.
 *
 * @module
 */
import type postgres from "postgres";
import type { AttemptRecord, RouteRecord } from "../core/route.ts";

/** A `notification_routes` row, with its notification's `kind`, as a {@link RouteRecord}. */
export function toRecord(row: postgres.Row): RouteRecord {
  return {
    id: row["route_id"],
    notificationId: row["notification_id"],
    kind: row["kind"],
    channel: row["channel"],
    destination: row["destination"],
    destinationKey: row["destination_key"] ?? null,
    status: row["status"],
    attempts: row["attempts"],
    maxAttempts: row["max_attempts"],
    priority: row["priority"],
    nextAttemptAt: row["next_attempt_at"],
    lastError: row["last_error"],
    createdAt: row["created_at"],
    updatedAt: row["updated_at"],
    sentAt: row["sent_at"],
  };
}

/** A `route_attempts` row as an {@link AttemptRecord}. */
export function toAttempt(r: postgres.Row): AttemptRecord {
  return {
    attempt: r["attempt"],
    startedAt: r["started_at"],
    durationMs: r["duration_ms"],
    outcome: r["outcome"],
    httpStatus: r["http_status"],
    error: r["error"],
  };
}
