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
import type { SalvageResult, Unrecorded } from "../core/transaction.ts";
import { finaliseOne, hold, isConnectionLost, outcomeOnly } from "./_statements.ts";

/** Records what it can of `u`'s outcome; see the module doc. */
export async function fallBack(
  tx: postgres.TransactionSql,
  schema: string,
  u: Unrecorded,
): Promise<SalvageResult> {
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
