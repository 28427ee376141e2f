/**
 * The Postgres side of one route transaction: the claim and the finalise
 * queries, and the guard that keeps a transaction whose connection was lost
 * from reaching the driver again.
 *
 * @module
 */
import type postgres from "postgres";
import { HeraldError } from "../core/errors.ts";
import type { Finalisation, Route } from "../core/route.ts";
import type { ClaimParams, SalvageResult, Unrecorded } from "../core/transaction.ts";
import { CONNECTION_LOST, finaliseOne, isConnectionLost } from "./_statements.ts";
import { fallBack } from "./_fallback.ts";
import { reportDestinations } from "./destinations.ts";
import { claim } from "./_claim.ts";
import type {
  DestinationChange,
  DestinationPolicy,
  DestinationReport,
} from "../core/destination.ts";

/**
 * Never settles: parks the driver's transaction scope after its connection
 * was lost. A fresh promise each time, referenced by nothing but the parked
 * scope, so scope and promise are collected together (one promise shared by
 * every scope would keep each one, and its routes, alive for ever).
 */
export function abandoned(): Promise<never> {
  return new Promise<never>(() => {});
}

/** A {@link RouteTransaction} on an open `postgres` transaction. */
export class PgRouteTransaction {
  readonly #tx: postgres.TransactionSql;
  readonly #schema: string;
  /** The transaction's first statement already applied the claim's settings. */
  readonly #tuned: boolean;

  #ended = false;

  constructor(tx: postgres.TransactionSql, schema: string, tuned = false) {
    this.#tx = tx;
    this.#schema = schema;
    this.#tuned = tuned;
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
    return await this.#query((tx) => claim(tx, this.#schema, params, this.#tuned));
  }

  /** Applies what this transaction's sends say about their destinations; see the contract. */
  async reportDestinations(
    reports: readonly DestinationReport[],
    policy: DestinationPolicy,
  ): Promise<DestinationChange[]> {
    const tx = this.#open();
    const savepoint = tx.unsafe("SAVEPOINT herald_destinations").execute();
    savepoint.catch(() => {}); // awaited below; the report failing first must not leave it unhandled
    try {
      const changes = await this.#query((t) =>
        reportDestinations(t, this.#schema, reports, policy)
      );
      await savepoint;
      return changes;
    } catch (err) {
      if (this.#ended || isConnectionLost(err)) throw err;
      // Undone, so the outcomes finalised before it still commit.
      await this.#query((t) => t.unsafe("ROLLBACK TO SAVEPOINT herald_destinations"));
      throw new HeraldError("HERALD_STORE", "destination health could not be recorded", {
        cause: err,
      });
    }
  }

  /**
   * Records the outcomes. With `fallbacks` (one per record), a refusal by the
   * database does not fail the transaction: it goes back to a savepoint
   * taken just before (sent with the statement, so it costs no round trip)
   * and records what it can, route by route, while the row locks are still
   * held, so no other worker can claim a route in between.
   */
  async finalise(
    records: readonly Finalisation[],
    fallbacks?: readonly Unrecorded[],
  ): Promise<SalvageResult[] | undefined> {
    if (!fallbacks) return void await this.#finaliseAll(records);
    const tx = this.#open();
    const savepoint = tx.unsafe("SAVEPOINT herald_finalise").execute();
    savepoint.catch(() => {}); // awaited below; the finalise failing first must not leave it unhandled
    try {
      await this.#finaliseAll(records);
      await savepoint;
      return undefined;
    } catch (err) {
      if (this.#ended || isConnectionLost(err)) throw err;
      await this.#query((t) => t.unsafe("ROLLBACK TO SAVEPOINT herald_finalise"));
      const results: SalvageResult[] = [];
      for (const u of fallbacks) {
        results.push(await this.#query((t) => fallBack(t, this.#schema, u)));
      }
      return results;
    }
  }

  async #finaliseAll(records: readonly Finalisation[]): Promise<void> {
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
            held_from = NULL, next_attempt_at = CASE WHEN x.status = 'retry'
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
