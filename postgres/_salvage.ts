/**
 * Salvage: what the worker records when a route's own transaction failed
 * after its send. Each route is tried in a savepoint of one short transaction
 * (so one refused record does not take the others with it), from the most
 * complete record down to the least:
 *
 * 1. the outcome with its attempt-log row (the finalise, once more);
 * 2. the outcome alone (a refused attempt log must not cost the route);
 * 3. a hold: the attempt counted, the route due again after a backoff, or
 *    `poisoned` when sending it again would only repeat it (it was sent, it
 *    failed for good, or it is out of attempts).
 *
 * A route that is no longer as it was claimed (the lost commit went through
 * after all, or another worker has it now) is skipped, never waited for.
 *
 * @module
 */
import type postgres from "postgres";
import { HeraldError } from "../core/errors.ts";
import type { SalvageResult, Unrecorded } from "../core/transaction.ts";
import { finaliseOne, isConnectionLost } from "./_route_transaction.ts";

/** Salvages `routes` in one transaction; see the module doc. */
export async function salvage(
  sql: postgres.Sql,
  schema: string,
  routes: readonly Unrecorded[],
): Promise<SalvageResult[]> {
  try {
    return await sql.begin(async (tx) => {
      const results: SalvageResult[] = [];
      for (const route of routes) results.push(await salvageOne(tx, schema, route));
      return results;
    }) as SalvageResult[];
  } catch (err) {
    if (!isConnectionLost(err)) throw err;
    throw new HeraldError(
      "HERALD_UNAVAILABLE",
      "the database could not be reached; no outcome was recorded",
      { cause: err },
    );
  }
}

async function salvageOne(
  tx: postgres.TransactionSql,
  schema: string,
  u: Unrecorded,
): Promise<SalvageResult> {
  const s = tx(schema);
  const [row] = await tx`
    SELECT status, attempts FROM ${s}.notification_routes
    WHERE route_id = ${u.record.routeId}::uuid
    FOR UPDATE SKIP LOCKED`;
  if (row?.["status"] !== "queued" || row["attempts"] !== u.claimedAttempts) return "skipped";
  if (await inSavepoint(tx, (sp) => finaliseOne(sp, schema, u.record))) return "recorded";
  if (await inSavepoint(tx, (sp) => outcomeOnly(sp, schema, u))) return "recorded_without_log";
  if (await inSavepoint(tx, (sp) => hold(sp, schema, u))) return u.poison ? "poisoned" : "held";
  return "refused";
}

/** Runs `fn` in a savepoint; false (and rolled back to it) when it fails. */
async function inSavepoint(
  tx: postgres.TransactionSql,
  fn: (sp: postgres.TransactionSql) => Promise<unknown>,
): Promise<boolean> {
  try {
    await tx.savepoint((sp) => fn(sp));
    return true;
  } catch (err) {
    if (isConnectionLost(err)) throw err;
    return false;
  }
}

/** The outcome on the route's row, without the attempt-log row. */
function outcomeOnly(
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
        next_attempt_at = CASE WHEN ${outcome.status}::text = 'retry'
          THEN clock_timestamp() + ${delay}::float8 * interval '1 millisecond'
          ELSE next_attempt_at END,
        sent_at = CASE WHEN ${outcome.status}::text = 'sent' THEN clock_timestamp() ELSE sent_at END,
        last_error = ${error}::text, updated_at = clock_timestamp()
    WHERE route_id = ${routeId}::uuid`;
}

/** The attempt counted and the route held back, or poisoned. */
function hold(tx: postgres.TransactionSql, schema: string, u: Unrecorded): Promise<unknown> {
  const { routeId, outcome } = u.record;
  const what = outcome.status === "sent" ? "sent" : `${outcome.status}: ${outcome.error}`;
  // Cut by code points: half a surrogate pair is text Postgres refuses.
  const error = [...`outcome could not be recorded (${what})`].slice(0, 500).join("");
  return tx`
    UPDATE ${tx(schema)}.notification_routes
    SET status = ${u.poison ? "poisoned" : "queued"},
        attempts = ${outcome.attempts},
        next_attempt_at = clock_timestamp() + ${u.holdMs}::float8 * interval '1 millisecond',
        last_error = ${error}::text, updated_at = clock_timestamp()
    WHERE route_id = ${routeId}::uuid`;
}
