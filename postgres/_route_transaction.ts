/**
 * The Postgres side of one route transaction: the claim and the finalise
 * queries, the fallback when the finalise is refused, and the guard that
 * keeps a transaction that is over from reaching the driver again.
 *
 * @module
 */
import type postgres from "postgres";
import { HeraldError } from "../core/errors.ts";
import type { Finalisation, Route } from "../core/route.ts";
import type {
  ClaimParams,
  SalvageResult,
  TransactionOptions,
  Unrecorded,
} from "../core/transaction.ts";
import { CONNECTION_LOST, finaliseOne, isConnectionLost } from "./_statements.ts";
import { fallBack } from "./_fallback.ts";
import { reportDestinations } from "./destinations.ts";
import { claim, claimSettings } from "./_claim.ts";
import { type Guard, inTransaction } from "./_transaction.ts";
import type {
  DestinationChange,
  DestinationPolicy,
  DestinationReport,
} from "../core/destination.ts";

/**
 * Runs `fn` on a {@link PgRouteTransaction}: commits when it resolves, rolls
 * back when it throws; see `PostgresStore.transaction` and {@link inTransaction}.
 */
export async function routeTransaction<T>(
  sql: postgres.Sql,
  schema: string,
  fn: (tx: PgRouteTransaction) => Promise<T>,
  options: TransactionOptions,
): Promise<T> {
  return await inTransaction(sql, async (tx, guard) => {
    // Not awaited before `fn`: it goes down the connection in the same
    // write as the claim `fn` issues next and runs before it, so the safety
    // net costs no round trip of its own. Should it fail, the claim fails too.
    const ms = options.lockTimeoutMs === undefined
      ? undefined
      : String(Math.ceil(options.lockTimeoutMs));
    // With it, the claim's planner settings (see claimDue): one statement for both.
    const limits = ms === undefined ? undefined : tx`
      SELECT set_config('idle_in_transaction_session_timeout', ${ms}, true),
             set_config('statement_timeout', ${ms}, true), ${claimSettings(tx)}`.execute();
    limits?.catch(() => {}); // awaited below; `fn` failing first must not leave it unhandled
    const result = await fn(new PgRouteTransaction(tx, schema, guard, limits !== undefined));
    await limits;
    return result;
  });
}

/** A {@link RouteTransaction} on an open `postgres` transaction. */
export class PgRouteTransaction {
  readonly #tx: postgres.TransactionSql;
  readonly #schema: string;
  /** The transaction's first statement already applied the claim's settings. */
  readonly #tuned: boolean;
  /** Over, or recovered: shared with {@link inTransaction}, which acts on both. */
  readonly #guard: Guard;

  /** `herald_finalise` is set (see {@link claimDue}). */
  #savepoint = false;

  constructor(tx: postgres.TransactionSql, schema: string, guard: Guard, tuned = false) {
    this.#tx = tx;
    this.#guard = guard;
    this.#schema = schema;
    this.#tuned = tuned;
  }

  end(): void {
    this.#guard.ended = true;
  }

  get ended(): boolean {
    return this.#guard.ended;
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
    if (this.ended) {
      throw new HeraldError(
        "HERALD_STORE",
        "the route's transaction has already ended (connection lost or lock timeout); nothing was recorded",
      );
    }
    return this.#tx;
  }

  /**
   * Claims under the savepoint a refused finalise goes back to, set here (in
   * the claim's write: no round trip of its own) rather than just before
   * the finalise. A row locked by the transaction and then updated by a
   * savepoint's subtransaction gets a MultiXact as its old version's
   * remover, and index scans never mark such a version dead: every claim
   * would then fetch every route sent since the last VACUUM from the heap.
   * Locked and updated in the one subtransaction, it is an ordinary row.
   */
  async claimDue(params: ClaimParams): Promise<Route[]> {
    return await this.#query((tx) => {
      this.#setSavepoint(tx);
      return claim(tx, this.#schema, params, this.#tuned);
    });
  }

  /** Sends `SAVEPOINT herald_finalise` once; its failure fails the statement after it. */
  #setSavepoint(tx: postgres.TransactionSql): void {
    if (this.#savepoint) return;
    this.#savepoint = true;
    tx.unsafe("SAVEPOINT herald_finalise").execute().catch(() => {});
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
      if (this.ended || isConnectionLost(err)) throw err;
      // Undone, so the outcomes finalised before it still commit.
      await this.#query((t) => t.unsafe("ROLLBACK TO SAVEPOINT herald_destinations"));
      this.#guard.recovered = true;
      throw new HeraldError("HERALD_STORE", "destination health could not be recorded", {
        cause: err,
      });
    }
  }

  /**
   * Records the outcomes. With `fallbacks` (one per record), a refusal by the
   * database does not fail the transaction: it goes back to the savepoint
   * the claim was made under, locks the routes again in the same write (the
   * rollback released them; no round trip lies between the two, so another
   * worker can take one only in the microseconds between two statements,
   * and then it is `skipped`, never waited for), and records what it can,
   * route by route, while they are locked.
   */
  async finalise(
    records: readonly Finalisation[],
    fallbacks?: readonly Unrecorded[],
  ): Promise<SalvageResult[] | undefined> {
    if (!fallbacks) return void await this.#finaliseAll(records);
    this.#setSavepoint(this.#open());
    try {
      await this.#finaliseAll(records);
      return undefined;
    } catch (err) {
      if (this.ended || isConnectionLost(err)) throw err;
      const held = await this.#query((t) => relock(t, this.#schema, fallbacks));
      this.#guard.recovered = true;
      const results: SalvageResult[] = [];
      for (const u of fallbacks) {
        if (held.get(u.record.routeId) !== u.claimedAttempts) results.push("skipped");
        else results.push(await this.#query((t) => fallBack(t, this.#schema, u, this.#guard)));
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

/**
 * Goes back to `herald_finalise` and locks `routes` again, both in one
 * write; resolves with the attempts of each route still queued and locked
 * now (one another transaction took in between is left out).
 */
async function relock(
  tx: postgres.TransactionSql,
  schema: string,
  routes: readonly Unrecorded[],
): Promise<Map<string, number>> {
  const back = tx.unsafe("ROLLBACK TO SAVEPOINT herald_finalise").execute();
  back.catch(() => {}); // awaited below; its failure fails the lock after it too
  const ids = `{${routes.map((u) => u.record.routeId).join(",")}}`;
  const rows = await tx`
    SELECT route_id, attempts FROM ${tx(schema)}.notification_routes
    WHERE route_id = ANY(${ids}::uuid[]) AND status = 'queued'
    FOR UPDATE SKIP LOCKED`;
  await back;
  return new Map(rows.map((r) => [r["route_id"] as string, r["attempts"] as number]));
}
