/**
 * The operator's queries: listing, retry, cancel and prune (stats: _stats.ts). None of
 * them waits on a route a worker holds: they skip locked rows and say so.
 *
 * @module
 */
import type postgres from "postgres";
import { InvalidArgumentError } from "../core/errors.ts";
import type { AttemptRecord, RouteRecord } from "../core/route.ts";
import type { ChangeResult, PruneOptions, RetrySelection } from "../core/operator.ts";
import { checkRouteIds, isUuid } from "../core/_validate.ts";

export { stats } from "./_stats.ts";
export { activity, listRoutes, notification } from "./_browse.ts";

const PRUNABLE = ["sent", "failed", "cancelled"] as const;

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
 * Makes routes due now with a fresh attempt budget. By id: failed, cancelled
 * and queued routes (and sent ones with `force`). With `failed: true`: every
 * failed route, optionally of one channel and updated since a time.
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
      tx`
        UPDATE ${tx(schema)}.notification_routes SET status = 'queued', attempts = 0,
               next_attempt_at = now(), queue_order = ${
        queueOrder(tx, schema)
      }, held_from = NULL, sent_at = NULL, last_error = NULL, updated_at = now()
        WHERE route_id IN (
          SELECT route_id FROM ${tx(schema)}.notification_routes
          WHERE route_id = ANY(${pgArray(ids)}::uuid[])
            AND status = ANY(${pgArray(allowed)}::text[])
            AND (${options.force === true}::boolean OR sent_at IS NULL)
          FOR UPDATE SKIP LOCKED)
        RETURNING route_id`);
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
  const changed = await sql`
    UPDATE ${s}.notification_routes SET status = 'queued', attempts = 0, next_attempt_at = now(),
           queue_order = ${queueOrder(sql, schema)}, held_from = NULL,
           last_error = NULL, updated_at = now()
    WHERE route_id IN (
      SELECT route_id FROM ${s}.notification_routes
      WHERE status IN ('failed', 'poisoned') AND sent_at IS NULL
        AND (${channel}::text IS NULL OR channel = ${channel})
        AND (${destination}::text IS NULL OR destination_key = ${destination})
        AND (${since}::timestamptz IS NULL OR updated_at >= ${since})
      FOR UPDATE SKIP LOCKED)
    RETURNING route_id`;
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
 * Deletes finished routes older than `olderThanMs` in batches (with their
 * attempt logs), then notifications left with no route. Queued routes are
 * never touched. Resolves with the number of routes deleted.
 */
export async function prune(
  sql: postgres.Sql,
  schema: string,
  options: PruneOptions,
): Promise<number> {
  const { olderThanMs } = options;
  if (typeof olderThanMs !== "number" || !Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new InvalidArgumentError(
      "olderThanMs",
      "must be a number of milliseconds, 0 or more",
      olderThanMs,
    );
  }
  const statuses = options.statuses ?? PRUNABLE;
  if (statuses.length === 0 || statuses.some((st) => !PRUNABLE.includes(st))) {
    throw new InvalidArgumentError(
      "statuses",
      `must list only ${PRUNABLE.join(", ")}`,
      statuses.join(","),
    );
  }
  const batch = options.batchSize ?? 1_000;
  if (!Number.isInteger(batch) || batch < 1 || batch > 100_000) {
    throw new InvalidArgumentError("batchSize", "must be an integer from 1 to 100000", batch);
  }
  const s = sql(schema);
  if (options.dryRun) {
    const [row] = await sql`
      SELECT count(*)::int AS n FROM ${s}.notification_routes
      WHERE status = ANY(${pgArray(statuses)}::text[])
        AND updated_at < now() - ${olderThanMs}::float8 * interval '1 millisecond'`;
    return row?.["n"] ?? 0;
  }
  let total = 0;
  for (;;) {
    const deleted = await sql`
      DELETE FROM ${s}.notification_routes WHERE route_id IN (
        SELECT route_id FROM ${s}.notification_routes
        WHERE status = ANY(${pgArray(statuses)}::text[])
          AND updated_at < now() - ${olderThanMs}::float8 * interval '1 millisecond'
        LIMIT ${batch}
        FOR UPDATE SKIP LOCKED)`;
    total += deleted.count;
    options.onProgress?.(total);
    if (deleted.count < batch) break;
  }
  await sql`
    DELETE FROM ${s}.notifications n
    WHERE created_at < now() - ${olderThanMs}::float8 * interval '1 millisecond'
      AND NOT EXISTS (SELECT 1 FROM ${s}.notification_routes r WHERE r.notification_id = n.id)`;
  return total;
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
