/**
 * A transaction in the driver's `begin` scope, with the two exits the
 * driver does not have:
 *
 * - **committed by hand.** `begin` rolls back a transaction any of whose
 *   statements failed, even one undone to its savepoint. A body that undid a
 *   refused statement and wrote what it meant another way sets
 *   `guard.recovered`, and the transaction is committed here; a COMMIT that
 *   answers ROLLBACK (a failed statement was left in it) is an error.
 * - **abandoned.** When the connection drops, `begin` rejects at once, while
 *   the body may still run (a send in flight). Once the body settles the
 *   driver would send COMMIT or ROLLBACK down a connection that may since
 *   have been reused by another transaction, or crash writing to a dead
 *   socket; a body that saw its connection go sets `guard.ended`.
 *
 * Either way the driver's scope is then parked for good (it never settles),
 * so the driver sends nothing more for it: after a COMMIT is answered the
 * connection is back in the pool.
 *
 * @module
 */
import type postgres from "postgres";
import { HeraldError } from "../core/errors.ts";

/** What a transaction's body tells the runner, and reads back. */
export interface Guard {
  /** The transaction is over (its connection lost, or committed by hand): send nothing more. */
  ended: boolean;
  /** A refused statement was undone to its savepoint, and the rest stands: commit by hand. */
  recovered: boolean;
}

/**
 * Never settles. A fresh promise each time, referenced by nothing but the
 * parked scope, so scope and promise are collected together (one promise
 * shared by every scope would keep each one, and what it holds, alive for ever).
 */
function abandoned(): Promise<never> {
  return new Promise<never>(() => {});
}

/**
 * Runs `body` in a transaction: commits when it resolves (by hand when it
 * recovered), rolls back when it throws; see the module doc.
 */
export async function inTransaction<T>(
  sql: postgres.Sql,
  body: (tx: postgres.TransactionSql, guard: Guard) => Promise<T>,
): Promise<T> {
  const guard: Guard = { ended: false, recovered: false };
  // Settled by the driver's `begin`, or, for a transaction committed by
  // hand, from inside its scope (which then never settles).
  let settle!: { resolve: (value: T) => void; reject: (err: unknown) => void };
  const settled = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
  try {
    sql.begin(async (tx) => {
      try {
        const result = await body(tx, guard);
        // Not once the connection is lost: a COMMIT now would reach a dead
        // socket or someone else's session.
        if (guard.recovered && !guard.ended) {
          guard.ended = true;
          await commitByHand(tx).then(() => settle.resolve(result), settle.reject);
          await abandoned();
        }
        return result;
      } finally {
        if (guard.ended) await abandoned();
      }
    }).then((value) => settle.resolve(value as T), settle.reject);
    return await settled;
  } finally {
    // The driver must not be handed queries for a transaction that is over:
    // on a dropped connection it would throw outside any promise.
    guard.ended = true;
  }
}

async function commitByHand(tx: postgres.TransactionSql): Promise<void> {
  const done = await tx.unsafe("COMMIT");
  if (done.command !== "COMMIT") {
    throw new HeraldError(
      "HERALD_STORE",
      "the transaction was rolled back: one of its statements failed and was not undone",
    );
  }
}
