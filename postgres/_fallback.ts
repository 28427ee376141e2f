/**
 * The fallback ladder for one route whose outcome the database refused:
 * each step in a savepoint, from the most complete record down: the outcome
 * with its attempt-log row; the outcome alone; a hold (attempt counted,
 * due again after a backoff) or, when sending again would only repeat it,
 * `poisoned`. Run by the route's own transaction while it still holds the
 * row lock, and by the salvage after a lost connection.
 *
 * @module
 */
import type postgres from "postgres";
import { HeraldError } from "../core/errors.ts";
import type { SalvageResult, Unrecorded } from "../core/transaction.ts";
import { finaliseOne, hold, isConnectionLost, outcomeOnly } from "./_statements.ts";
import type { Guard } from "./_transaction.ts";

/** Records what it can of `u`'s outcome; see the module doc. */
export async function fallBack(
  tx: postgres.TransactionSql,
  schema: string,
  u: Unrecorded,
  guard: Guard,
): Promise<SalvageResult> {
  if (await inSavepoint(tx, guard, () => finaliseOne(tx, schema, u.record))) return "recorded";
  if (await inSavepoint(tx, guard, () => outcomeOnly(tx, schema, u))) {
    return "recorded_without_log";
  }
  if (await inSavepoint(tx, guard, () => hold(tx, schema, u))) {
    return u.poison ? "poisoned" : "held";
  }
  return "refused";
}

/**
 * Runs `step` in a savepoint; false, rolled back to it and the transaction
 * marked recovered (see `inTransaction`), when the database refuses it. By
 * hand, not the driver's `savepoint` scope: that one sends its ROLLBACK TO
 * even when the connection is gone, writing to a socket that is no more.
 * Released when it succeeds, so a salvage of many routes does not nest a
 * subtransaction per step (past 64, every snapshot in the database slows).
 */
async function inSavepoint(
  tx: postgres.TransactionSql,
  guard: Guard,
  step: () => Promise<unknown>,
): Promise<boolean> {
  if (guard.ended) {
    throw new HeraldError("HERALD_STORE", "the transaction has already ended; nothing recorded");
  }
  const set = tx.unsafe("SAVEPOINT herald_fallback").execute();
  set.catch(() => {}); // awaited below; its failure fails the step after it too
  try {
    await step();
    await set;
  } catch (err) {
    if (isConnectionLost(err)) guard.ended = true;
    if (guard.ended) throw err;
    await tx.unsafe("ROLLBACK TO SAVEPOINT herald_fallback");
    guard.recovered = true;
    return false;
  }
  await tx.unsafe("RELEASE SAVEPOINT herald_fallback");
  return true;
}
