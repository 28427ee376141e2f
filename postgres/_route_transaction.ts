/**
 * The Postgres side of one route transaction: the claim and the finalise
 * queries, and the guard that keeps a transaction whose connection was lost
 * from reaching the driver again.
 *
 * @module
 */
import type postgres from "postgres";
import { HeraldError } from "../core/errors.ts";
import type { Finalisation, JsonValue, Route } from "../core/route.ts";
import type { ClaimParams } from "../core/transaction.ts";

/** Never settles: parks the driver's transaction scope after its connection was lost. */
export const ABANDONED: Promise<never> = new Promise<never>(() => {});

/** A {@link RouteTransaction} on an open `postgres` transaction. */
export class PgRouteTransaction {
  readonly #tx: postgres.TransactionSql;
  readonly #schema: string;

  #ended = false;

  constructor(tx: postgres.TransactionSql, schema: string) {
    this.#tx = tx;
    this.#schema = schema;
  }

  end(): void {
    this.#ended = true;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Runs a query, and marks the transaction over when the error says the
   * connection is gone: decided here, not by which rejection reaches
   * `PostgresStore.transaction` first, so the driver is never handed a late
   * ROLLBACK for a dead (or since reused) connection.
   */
  async #query<T>(run: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
    const tx = this.#open();
    try {
      return await run(tx);
    } catch (err) {
      const code = String((err as { code?: unknown } | null)?.code);
      if (CONNECTION_LOST.has(code)) this.end();
      if (code === "25006") {
        throw new HeraldError(
          "HERALD_STORE",
          "the database is read-only (a standby?): nothing can be claimed there; point Herald " +
            "at the primary (with several hosts in the URL, add target_session_attrs=read-write)",
          { cause: err },
        );
      }
      throw err;
    }
  }

  #open(): postgres.TransactionSql {
    if (this.#ended) {
      throw new HeraldError(
        "HERALD_STORE",
        "the route's transaction has already ended (connection lost or lock timeout); nothing was recorded",
      );
    }
    return this.#tx;
  }

  async claimDue(params: ClaimParams): Promise<Route[]> {
    // `{}` for "any channel" keeps one statement (one prepared plan) for both.
    const channels = `{${(params.channels ?? []).join(",")}}`;
    const rows = await this.#query((tx) => {
      const s = tx(this.#schema);
      return tx`
      SELECT r.route_id, r.notification_id, r.channel, r.destination, r.attempts,
             r.max_attempts, r.priority, r.created_at, n.kind, n.payload,
             n.traceparent, n.tracestate
      FROM ${s}.notification_routes r
      JOIN ${s}.notifications n ON n.id = r.notification_id
      WHERE r.status = 'queued'
        AND r.next_attempt_at <= now()
        AND r.route_id <> ALL(${`{${params.exclude.join(",")}}`}::uuid[])
        AND (${channels}::text[] = '{}' OR r.channel = ANY(${channels}::text[]))
      ORDER BY r.priority, r.next_attempt_at
      LIMIT ${params.limit}
      FOR UPDATE OF r SKIP LOCKED`;
    });
    return rows.map((row) => ({
      id: row["route_id"],
      notificationId: row["notification_id"],
      kind: row["kind"],
      payload: row["payload"] as JsonValue,
      channel: row["channel"],
      destination: row["destination"],
      attempts: row["attempts"],
      maxAttempts: row["max_attempts"],
      priority: row["priority"],
      createdAt: row["created_at"],
      trace: row["traceparent"] === null
        ? null
        : { traceparent: row["traceparent"], tracestate: row["tracestate"] },
    }));
  }

  async finalise(records: readonly Finalisation[]): Promise<void> {
    if (records.length === 1) return await this.#finaliseOne(records[0]!);
    const rows = records.map((r) => ({
      id: r.routeId,
      status: r.outcome.status,
      attempts: r.outcome.attempts,
      delay: r.outcome.status === "retry" ? r.outcome.delayMs : 0,
      error: r.outcome.status === "sent" ? null : r.outcome.error,
      duration_ms: r.durationMs,
      http_status: r.httpStatus ?? null,
    }));
    // One statement whatever the batch size: update the routes and append the
    // attempt log together, so a batch costs one round trip. The planner takes
    // json_to_recordset for 100 rows whatever it holds and would hash-join them
    // against a sequential scan of the whole table; `= ANY(ids)` gives it the
    // primary key instead, so a finalise costs the same on a table of any size.
    // Times are `clock_timestamp()`, the moment of the outcome: `now()` is the
    // transaction's start, the claim, and a send slower than its backoff would
    // commit a retry that is already due.
    const ids = `{${records.map((r) => r.routeId).join(",")}}`;
    await this.#query((tx) => {
      const s = tx(this.#schema);
      return tx`
      WITH x AS (
        SELECT x.*, clock_timestamp() AS at
        FROM json_to_recordset(${JSON.stringify(rows)}::text::json) AS x(
          id uuid, status text, attempts int, delay float8, error text,
          duration_ms float8, http_status int)
      ), updated AS (
        UPDATE ${s}.notification_routes r
        SET status = CASE WHEN x.status = 'retry' THEN 'queued' ELSE x.status END,
            attempts = x.attempts,
            next_attempt_at = CASE WHEN x.status = 'retry'
              THEN x.at + x.delay * interval '1 millisecond' ELSE r.next_attempt_at END,
            sent_at = CASE WHEN x.status = 'sent' THEN x.at ELSE r.sent_at END,
            last_error = x.error, updated_at = x.at
        FROM x WHERE r.route_id = x.id AND r.route_id = ANY(${ids}::uuid[])
        RETURNING r.route_id
      )
      INSERT INTO ${s}.route_attempts
        (route_id, attempt, started_at, duration_ms, outcome, http_status, error)
      SELECT x.id, x.attempts, x.at - x.duration_ms * interval '1 millisecond', x.duration_ms,
             x.status, x.http_status, x.error
      FROM x JOIN updated u ON u.route_id = x.id`;
    });
  }

  /**
   * The one-route-per-transaction case with plain parameters: no JSON to
   * parse, and a statement the driver prepares once.
   */
  async #finaliseOne(r: Finalisation): Promise<void> {
    await this.#query((tx) => finaliseOne(tx, this.#schema, r));
  }
}

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
          next_attempt_at = CASE WHEN ${outcome.status}::text = 'retry'
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

/** True when `err` says the connection to the database is gone or could not be made. */
export function isConnectionLost(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code);
  return CONNECTION_LOST.has(code) || UNREACHABLE.has(code);
}

/** Codes of a connection that could not be made at all. */
const UNREACHABLE = new Set(["ECONNREFUSED", "CONNECT_TIMEOUT", "ENOTFOUND", "EHOSTUNREACH"]);

/** Driver and server codes meaning the connection under the transaction is gone. */
const CONNECTION_LOST = new Set([
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
