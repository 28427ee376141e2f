/**
 * The statements that record an outcome, shared by the route transaction
 * and the salvage: the full finalise of one route, its outcome alone, a
 * hold; and which errors mean the connection is gone.
 *
 * @module
 */
import type postgres from "postgres";
import type { Finalisation } from "../core/route.ts";
import type { Unrecorded } from "../core/transaction.ts";

/**
 * Records one route's outcome and its attempt-log row in one statement, all
 * times taken at the outcome (`clock_timestamp()`; the attempt's start is
 * that minus its duration), so every time comes from the database's clock.
 */
export function finaliseOne(
  tx: postgres.TransactionSql,
  schema: string,
  r: Finalisation,
): Promise<unknown> {
  const { outcome } = r;
  const delay = outcome.status === "retry" ? outcome.delayMs : 0;
  const error = outcome.status === "sent" ? null : outcome.error;
  const s = tx(schema);
  return tx`
    WITH t AS (SELECT clock_timestamp() AS at), updated AS (
      UPDATE ${s}.notification_routes
      SET status = ${outcome.status === "retry" ? "queued" : outcome.status},
          attempts = ${outcome.attempts},
          held_from = NULL, next_attempt_at = CASE WHEN ${outcome.status}::text = 'retry'
            THEN t.at + ${delay}::float8 * interval '1 millisecond' ELSE next_attempt_at END,
          sent_at = CASE WHEN ${outcome.status}::text = 'sent' THEN t.at ELSE sent_at END,
          last_error = ${error}::text, updated_at = t.at
      FROM t
      WHERE route_id = ${r.routeId}::uuid
      RETURNING route_id, t.at
    )
    INSERT INTO ${s}.route_attempts
      (route_id, attempt, started_at, duration_ms, outcome, http_status, error)
    SELECT route_id, ${outcome.attempts}::int,
           at - ${r.durationMs}::float8 * interval '1 millisecond', ${r.durationMs}::float8,
           ${outcome.status}::text, ${r.httpStatus ?? null}::int, ${error}::text
    FROM updated`;
}

/** The outcome on the route's row, without the attempt-log row. */
export function outcomeOnly(
  tx: postgres.TransactionSql,
  schema: string,
  { record: { routeId, outcome } }: Unrecorded,
): Promise<unknown> {
  const delay = outcome.status === "retry" ? outcome.delayMs : 0;
  const error = outcome.status === "sent" ? null : outcome.error;
  return tx`
    UPDATE ${tx(schema)}.notification_routes
    SET status = ${outcome.status === "retry" ? "queued" : outcome.status},
        attempts = ${outcome.attempts},
        held_from = NULL, next_attempt_at = CASE WHEN ${outcome.status}::text = 'retry'
          THEN clock_timestamp() + ${delay}::float8 * interval '1 millisecond'
          ELSE next_attempt_at END,
        sent_at = CASE WHEN ${outcome.status}::text = 'sent' THEN clock_timestamp() ELSE sent_at END,
        last_error = ${error}::text, updated_at = clock_timestamp()
    WHERE route_id = ${routeId}::uuid`;
}

/** The attempt counted and the route held back, or poisoned. */
export function hold(tx: postgres.TransactionSql, schema: string, u: Unrecorded): Promise<unknown> {
  const { routeId, outcome } = u.record;
  const what = outcome.status === "sent" ? "sent" : `${outcome.status}: ${outcome.error}`;
  // Cut by code points: half a surrogate pair is text Postgres refuses.
  const error = [...`outcome could not be recorded (${what})`].slice(0, 500).join("");
  return tx`
    UPDATE ${tx(schema)}.notification_routes
    SET status = ${u.poison ? "poisoned" : "queued"},
        attempts = ${outcome.attempts},
        sent_at = CASE WHEN ${outcome.status}::text = 'sent' THEN clock_timestamp() ELSE sent_at END,
        held_from = NULL, next_attempt_at = clock_timestamp() + ${u.holdMs}::float8 * interval '1 millisecond',
        last_error = ${error}::text, updated_at = clock_timestamp()
    WHERE route_id = ${routeId}::uuid`;
}

/** True when `err` says the connection to the database is gone or could not be made. */
export function isConnectionLost(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code);
  // SQLSTATE class 08: connection exceptions reported by the server.
  return CONNECTION_LOST.has(code) || UNREACHABLE.has(code) || /^08[0-9A-Z]{3}$/.test(code);
}

/** Codes of a connection that could not be made at all. */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "CONNECT_TIMEOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ECONNABORTED",
]);

/** Driver and server codes meaning the connection under a transaction is gone. */
export const CONNECTION_LOST: ReadonlySet<string> = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
  "57P01", // admin_shutdown (pg_terminate_backend)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "25P03", // idle_in_transaction_session_timeout
]);
