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
import { isConnectionLost } from "./_statements.ts";
import { fallBack } from "./_fallback.ts";
import { type Guard, inTransaction } from "./_transaction.ts";

/** Salvages `routes` in one transaction; see the module doc. */
export async function salvage(
  sql: postgres.Sql,
  schema: string,
  routes: readonly Unrecorded[],
): Promise<SalvageResult[]> {
  try {
    // Committed by hand when a step was refused and undone (see inTransaction).
    return await inTransaction(sql, async (tx, guard) => {
      const results: SalvageResult[] = [];
      try {
        for (const route of routes) results.push(await salvageOne(tx, schema, route, guard));
      } catch (err) {
        if (isConnectionLost(err)) guard.ended = true;
        throw err;
      }
      return results;
    });
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
  guard: Guard,
): Promise<SalvageResult> {
  const s = tx(schema);
  const [row] = await tx`
    SELECT status, attempts FROM ${s}.notification_routes
    WHERE route_id = ${u.record.routeId}::uuid
    FOR UPDATE SKIP LOCKED`;
  if (row?.["status"] !== "queued" || row["attempts"] !== u.claimedAttempts) return "skipped";
  return await fallBack(tx, schema, u, guard);
}
