/**
 * The operator's queries: listing, retry, cancel and prune (stats: _stats.ts). None of
 * them waits on a route a worker holds: they skip locked rows and say so.
 *
 * @module
 */
import type postgres from "postgres";
import { InvalidArgumentError } from "../core/errors.ts";
import type { AttemptRecord, RouteRecord } from "../core/route.ts";
import { checkPrune, pruneRestMs } from "../core/operator.ts";
import type { ChangeResult, PruneOptions, RetrySelection } from "../core/operator.ts";
import { sleep } from "../core/_async.ts";
import { checkRouteIds, isUuid } from "../core/_validate.ts";
import { HELD } from "./destinations.ts";

export { stats } from "./_stats.ts";
export { activity, listRoutes, notification } from "./_browse.ts";

/** Reads one route, or `undefined` (also for a malformed id). */
export async function getRoute(
  sql: postgres.Sql,
  schema: string,
  routeId: string,
  toRecord: (row: postgres.Row) => RouteRecord,
): Promise<RouteRecord | undefined> {
  if (!isUuid(routeId)) return undefined;
  const [row] = await sql`
    SELECT r.*, n.kind FROM ${sql(schema)}.notification_routes r
    JOIN ${sql(schema)}.notifications n ON n.id = r.notification_id
    WHERE r.route_id = ${routeId}`;
  return row ? toRecord(row) : undefined;
}

/** The route's attempt log, oldest first (empty for an unknown or malformed id). */
export async function attempts(
  sql: postgres.Sql,
  schema: string,
  routeId: string,
  toAttempt: (row: postgres.Row) => AttemptRecord,
): Promise<AttemptRecord[]> {
  if (!isUuid(routeId)) return [];
  const rows = await sql`
    SELECT attempt, started_at, duration_ms, outcome, http_status, error
    FROM ${sql(schema)}.route_attempts WHERE route_id = ${routeId} ORDER BY id`;
  return rows.map(toAttempt);
}

/**
 * Requeues routes with a fresh attempt budget, due now (held as at enqueue
 * while their destination is paused, disabled or open). By id: failed,
 * poisoned, cancelled and queued routes (and sent ones with `force`). With
 * `failed: true`: every failed or poisoned route, optionally of one channel
 * or destination and updated since a time.
 */
export async function retry(
  sql: postgres.Sql,
  schema: string,
  selection: RetrySelection,
  options: { readonly force?: boolean; readonly dryRun?: boolean } = {},
): Promise<ChangeResult> {
  const s = sql(schema);
  const allowed = options.force
    ? ["queued", "failed", "cancelled", "poisoned", "sent"]
    : ["queued", "failed", "cancelled", "poisoned"];
  if ("ids" in selection) {
    const ids = checkIds(selection.ids);
    return await changeByIds(sql, schema, ids, !options.force, (tx) =>
      requeue(
        tx,
        schema,
        tx`q.route_id = ANY(${pgArray(ids)}::uuid[]) AND q.status = ANY(${pgArray(allowed)}::text[])
           AND (${options.force === true}::boolean OR q.sent_at IS NULL)`,
      ));
  }
  const channel = selection.channel ?? null;
  const destination = selection.destination ?? null;
  const since = selection.since ?? null;
  if (options.dryRun) {
    const [row] = await sql`
      SELECT count(*)::int AS n FROM ${s}.notification_routes
      WHERE status IN ('failed', 'poisoned') AND sent_at IS NULL
        AND (${channel}::text IS NULL OR channel = ${channel})
        AND (${destination}::text IS NULL OR destination_key = ${destination})
        AND (${since}::timestamptz IS NULL OR updated_at >= ${since})`;
    return { changed: row?.["n"] ?? 0, skipped: 0, notFound: [], refusedSent: 0 };
  }
  const changed = await requeue(
    sql,
    schema,
    sql`q.status IN ('failed', 'poisoned') AND q.sent_at IS NULL
        AND (${channel}::text IS NULL OR q.channel = ${channel})
        AND (${destination}::text IS NULL OR q.destination_key = ${destination})
        AND (${since}::timestamptz IS NULL OR q.updated_at >= ${since})`,
  );
  return { changed: changed.length, skipped: 0, notFound: [], refusedSent: 0 };
}

/** Cancels queued routes; sent, failed and in-flight ones are skipped. */
export async function cancel(
  sql: postgres.Sql,
  schema: string,
  routeIds: readonly string[],
): Promise<ChangeResult> {
  const ids = checkIds(routeIds);
  return await changeByIds(sql, schema, ids, false, (tx) =>
    tx`
      UPDATE ${tx(schema)}.notification_routes SET status = 'cancelled', updated_at = now()
      WHERE route_id IN (
        SELECT route_id FROM ${tx(schema)}.notification_routes
        WHERE route_id = ANY(${pgArray(ids)}::uuid[]) AND status = 'queued'
        FOR UPDATE SKIP LOCKED)
      RETURNING route_id`);
}

/**
 * Runs `change` (an UPDATE returning the route ids it changed) on the routes
 * named by `ids`, in one transaction, and accounts for every id: changed,
 * unknown, refused because already sent (when `refuseSent`), or skipped (in
 * flight, or in a status the change does not apply to).
 */
async function changeByIds(
  sql: postgres.Sql,
  schema: string,
  ids: readonly string[],
  refuseSent: boolean,
  change: (tx: postgres.TransactionSql) => Promise<readonly postgres.Row[]>,
): Promise<ChangeResult> {
  return await sql.begin(async (tx) => {
    const existing = await tx`
      SELECT route_id, status, sent_at FROM ${tx(schema)}.notification_routes
      WHERE route_id = ANY(${pgArray(ids)}::uuid[])`;
    const changed = new Set((await change(tx)).map((r) => r["route_id"] as string));
    const found = new Set(existing.map((r) => r["route_id"] as string));
    const refusedSent = refuseSent
      ? existing.filter((r) => r["sent_at"] !== null && !changed.has(r["route_id"])).length
      : 0;
    return {
      changed: changed.size,
      skipped: found.size - changed.size - refusedSent,
      notFound: ids.filter((id) => !found.has(id)),
      refusedSent,
    };
  }) as ChangeResult;
}

/**
 * Deletes finished routes older than `olderThanMs` (as of the call) in
 * batches, each one short transaction ({@link pruneBatch}). Each status is
 * walked oldest first along its `(status, updated_at, route_id)` index,
 * every batch starting past the last one's rows, so no batch steps over the
 * dead entries of those before it. Between batches it rests as `dutyCycle`
 * says, so workers beside it keep most of the database; `signal` stops it
 * between batches. Resolves with the routes deleted.
 */
export async function prune(
  sql: postgres.Sql,
  schema: string,
  options: PruneOptions,
): Promise<number> {
  const plan = checkPrune(options);
  const s = sql(schema);
  // One cut for the whole run: routes that finish while it runs wait for the next.
  const [cut] = await sql`
    SELECT now() - ${plan.olderThanMs}::float8 * interval '1 millisecond' AS at`;
  const before = cut!["at"] as Date;
  if (options.dryRun) {
    const [row] = await sql`
      SELECT count(*)::int AS n FROM ${s}.notification_routes
      WHERE status = ANY(${pgArray(plan.statuses)}::text[]) AND updated_at < ${before}`;
    return row?.["n"] ?? 0;
  }
  const signal = options.signal;
  let total = 0;
  for (const status of plan.statuses) {
    let after: Keyset | undefined;
    while (!signal?.aborted) {
      const began = performance.now();
      const batch = await pruneBatch(sql, schema, {
        status,
        before,
        after,
        limit: plan.batchSize,
      });
      const took = performance.now() - began;
      if (batch.deleted > 0) {
        total += batch.deleted;
        options.onProgress?.(total, took);
        after = batch.last;
      }
      if (batch.deleted < plan.batchSize) break;
      await sleep(pruneRestMs(took, plan.dutyCycle), signal);
    }
  }
  return total;
}

/**
 * Where a prune's last batch ended: its newest `(updated_at, route_id)`, the
 * time in ISO 8601 (`to_json`'s, whatever the session's DateStyle) so no
 * microsecond is lost on the way through JavaScript.
 */
interface Keyset {
  readonly at: string;
  readonly id: string;
}

/**
 * One batch of a prune, in one transaction: up to `limit` routes of
 * `status` finished before `before` and past `after` (rows another
 * transaction holds are skipped, never waited for; the next run takes them),
 * their attempt logs by the foreign key's cascade, then their notifications
 * left with no route. That step takes the schema's prune lock (an advisory
 * lock for the rest of the transaction, which needs no privilege and works
 * through a transaction pooler) in a statement of its own: of two prunes
 * deleting the last routes of one notification at once, the second waits
 * for the first to commit and then sees its deletes, so one of them deletes
 * the notification.
 */
async function pruneBatch(
  sql: postgres.Sql,
  schema: string,
  { status, before, after, limit }: {
    status: string;
    before: Date;
    after: Keyset | undefined;
    limit: number;
  },
): Promise<{ deleted: number; last: Keyset | undefined }> {
  const s = sql(schema);
  return await sql.begin(async (tx) => {
    // Newest first: the first row is where the next batch starts.
    const rows = await tx`
      WITH gone AS (
        DELETE FROM ${s}.notification_routes WHERE route_id IN (
          SELECT route_id FROM ${s}.notification_routes
          WHERE status = ${status} AND updated_at < ${before}
            ${
      after ? tx`AND (updated_at, route_id) > (${after.at}::timestamptz, ${after.id}::uuid)` : tx``
    }
          ORDER BY updated_at, route_id
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED)
        RETURNING notification_id, route_id, updated_at)
      SELECT notification_id, route_id, to_json(updated_at) #>> '{}' AS at FROM gone
      ORDER BY updated_at DESC, route_id DESC`;
    if (rows.length > 0) {
      const ids = pgArray([...new Set(rows.map((r) => r["notification_id"] as string))]);
      await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`herald.prune:${schema}`}, 0))`;
      await tx`
        DELETE FROM ${s}.notifications n
        WHERE n.id = ANY(${ids}::uuid[])
          AND NOT EXISTS (SELECT 1 FROM ${s}.notification_routes r WHERE r.notification_id = n.id)`;
    }
    const [last] = rows;
    return {
      deleted: rows.length,
      last: last ? { at: last["at"] as string, id: last["route_id"] as string } : undefined,
    };
  });
}

function checkIds(ids: readonly string[]): string[] {
  if (!Array.isArray(ids) || ids.length === 0) {
    throw new InvalidArgumentError("routeIds", "must name at least one route id");
  }
  return checkRouteIds("routeIds", ids);
}

/**
 * An array parameter in Postgres's text form (`{a,b}`), for values already
 * checked to need no quoting (UUIDs, status names): the driver then needs no
 * array type information (Herald's connections do not fetch it).
 */
function pgArray(values: readonly string[]): string {
  return `{${values.join(",")}}`;
}

/**
 * Requeues the routes (alias `q`) that `where` picks, not locked elsewhere,
 * with a fresh budget, each due now or held as at enqueue while its
 * destination is paused, disabled or open: held far ahead (its due time kept
 * in `held_from`) or until its cool-down ends, so claims never step over a
 * retried backlog that cannot go yet. The destinations' rows are read under
 * FOR SHARE: a resume committing meanwhile is waited for and then seen, and
 * one that comes after waits for this and then releases what it held.
 */
function requeue(
  sql: postgres.Sql | postgres.TransactionSql,
  schema: string,
  where: postgres.PendingQuery<postgres.Row[]>,
): Promise<readonly postgres.Row[]> {
  const s = sql(schema);
  return sql`
    WITH picked AS (
      SELECT q.route_id, q.channel, q.destination_key FROM ${s}.notification_routes q
      WHERE ${where}
      FOR UPDATE SKIP LOCKED
    ), held AS (
      SELECT d.channel, d.key, d.state, d.open_until FROM ${s}.destinations d
      WHERE (d.channel, d.key) IN (SELECT channel, destination_key FROM picked)
      FOR SHARE
    )
    UPDATE ${s}.notification_routes r SET status = 'queued', attempts = 0,
           next_attempt_at = CASE WHEN x.state IN ('paused', 'disabled') THEN ${HELD}::timestamptz
                                  WHEN x.state = 'open' THEN greatest(now(), x.open_until)
                                  ELSE now() END,
           held_from = CASE WHEN x.state IN ('paused', 'disabled')
                              OR (x.state = 'open' AND x.open_until > now()) THEN now() END,
           queue_order = ${queueOrder(sql, schema)}, sent_at = NULL, last_error = NULL,
           updated_at = now()
    FROM (SELECT p.route_id, h.state, h.open_until FROM picked p
          LEFT JOIN held h ON h.channel = p.channel AND h.key = p.destination_key) x
    WHERE r.route_id = x.route_id
    RETURNING r.route_id`;
}

/**
 * A retried route's place in the queue: its own, or for a route written
 * before migration 6 (no place), the next one (the claim needs every queued
 * route numbered).
 */
function queueOrder(
  sql: postgres.Sql | postgres.TransactionSql,
  schema: string,
): postgres.PendingQuery<postgres.Row[]> {
  return sql`coalesce(queue_order, nextval(${`"${schema}".notification_routes_queue_order`}::regclass))`;
}
