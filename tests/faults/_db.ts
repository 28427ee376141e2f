/**
 * Database-side observation for the fault tests: the sessions of a spawned
 * program (found by the `application_name` `_procs.ts` gives it), who holds
 * a route's row lock, and a bounded wait on a database condition.
 *
 * @module
 */
import type postgres from "postgres";
import type { Store } from "../../store.ts";

import { until } from "../_helpers/kit.ts";

export { until };

/**
 * The `application_name`s (of those starting with `prefix`), one per
 * session, of the sessions holding row locks on a routes table: a claim's
 * `FOR UPDATE`. (A transaction id alone is no proof: the listener's probe,
 * a NOTIFY, takes one for an instant on a connection of its own.)
 */
export async function lockHolders(sql: postgres.Sql, prefix: string): Promise<string[]> {
  const rows = await sql`
    SELECT DISTINCT a.pid, a.application_name
    FROM pg_locks l
    JOIN pg_stat_activity a ON a.pid = l.pid
    JOIN pg_class c ON c.oid = l.relation
    WHERE l.locktype = 'relation' AND l.mode = 'RowShareLock'
      AND c.relname = 'notification_routes'
      AND starts_with(a.application_name, ${prefix})`;
  return rows.map((r) => r["application_name"] as string);
}

/** Backend pids of the program named `name`. */
export async function backendsOf(sql: postgres.Sql, name: string): Promise<number[]> {
  const rows = await sql`SELECT pid FROM pg_stat_activity WHERE application_name = ${name}`;
  return rows.map((r) => r["pid"] as number);
}

/** The pid of the program's LISTEN session, once its `LISTEN` is in place. */
export async function listenerOf(
  sql: postgres.Sql,
  name: string,
  _schema: string,
): Promise<number | undefined> {
  // The listener's connection is the one whose last query was a LISTEN (the
  // wake-up channel's or its liveness probe's); `name` is unique to the worker.
  const rows = await sql`
    SELECT pid FROM pg_stat_activity
    WHERE application_name = ${name} AND query LIKE 'listen %' AND state = 'idle'`;
  return rows[0]?.["pid"] as number | undefined;
}

/**
 * True when the route's row can be locked right now by another transaction
 * (`FOR UPDATE NOWAIT` would fail while a worker holds it).
 */
export async function claimable(
  sql: postgres.Sql,
  schema: string,
  routeId: string,
): Promise<boolean> {
  const rows = await sql`
    SELECT route_id FROM ${sql(schema)}.notification_routes
    WHERE route_id = ${routeId} FOR UPDATE SKIP LOCKED`;
  return rows.length === 1;
}

/** Waits, bounded, until the route's row can be locked: whoever held it has let go. */
export async function untilClaimable(
  sql: postgres.Sql,
  schema: string,
  routeId: string,
  what: string,
): Promise<void> {
  await until(what, async () => (await claimable(sql, schema, routeId)) || undefined);
}

/** Counts of the schema's routes by status. */
export async function statusCounts(
  sql: postgres.Sql,
  schema: string,
): Promise<Record<string, number>> {
  const rows = await sql`
    SELECT status, count(*)::int AS n FROM ${sql(schema)}.notification_routes GROUP BY status`;
  return Object.fromEntries(rows.map((r) => [r["status"] as string, r["n"] as number]));
}

/** Enqueues `n` webhook routes to `url/<tag>/<i>`, 500 per notification; returns their ids in order. */
export async function enqueueMany(
  store: Pick<Store, "enqueue">,
  url: string,
  n: number,
  tag: string,
): Promise<string[]> {
  const ids: string[] = [];
  for (let done = 0; done < n; done += 500) {
    const routes = Array.from({ length: Math.min(500, n - done) }, (_, i) => ({
      channel: "webhook",
      destination: `${url}/${tag}/${done + i}`,
    }));
    const { routeIds } = await store.enqueue({ kind: `fault.${tag}` }, routes);
    ids.push(...routeIds);
  }
  return ids;
}

/**
 * For each worker: does it `LISTEN` again, on a session other than the one
 * in `before` (waits up to 10 s each; a dead worker counts as not listening).
 */
export async function relistened(
  sql: postgres.Sql,
  workers: readonly { readonly name: string; readonly exit: unknown }[],
  schema: string,
  before: ReadonlyMap<string, number>,
): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const w of workers) {
    if (w.exit !== undefined) {
      out.push(false);
      continue;
    }
    const pid = await until(
      `${w.name} listens again`,
      () => listenerOf(sql, w.name, schema),
      10_000,
    )
      .catch(() => undefined); // a silently lost listener must not hide the figures
    out.push(pid !== undefined && pid !== before.get(w.name));
  }
  return out;
}

/** Of `ids`, how many never reached the receiver, and how many reached it more than once. */
export function deliveryCounts(
  ids: readonly string[],
  counts: ReadonlyMap<string, number>,
): { lost: number; duplicates: number } {
  return {
    lost: ids.filter((id) => !counts.has(id)).length,
    duplicates: ids.filter((id) => (counts.get(id) ?? 0) > 1).length,
  };
}

/**
 * True once the worker named `name` listens and none of its sessions is busy:
 * it has heard what was enqueued and looked. `undefined` otherwise, for `until`.
 */
export async function listeningIdle(
  sql: postgres.Sql,
  name: string,
  schema: string,
): Promise<true | undefined> {
  if ((await listenerOf(sql, name, schema)) === undefined) return undefined;
  const busy = await sql`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE application_name = ${name} AND state <> 'idle'`;
  return busy[0]?.["n"] === 0 ? true : undefined;
}
