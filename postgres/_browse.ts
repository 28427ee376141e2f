/**
 * The operator's reads for browsing: pages of routes, the minute-by-minute
 * activity, a route's notification. Every one walks an index, so a page of a
 * table of millions costs what a page of a small one does.
 *
 * @module
 */
import type postgres from "postgres";
import { InvalidArgumentError } from "../core/errors.ts";
import { ROUTE_STATUSES } from "../core/route.ts";
import type { RouteRecord } from "../core/route.ts";
import type { ActivityPoint, NotificationRecord, RouteFilter } from "../core/operator.ts";
import { isUuid } from "../core/_validate.ts";

/**
 * Routes matching `filter`, last changed first (ties by id). One index walk
 * per status (`(status, updated_at, route_id)`), merged: no scan of what the page does
 * not show. `after` continues from a route of the previous page.
 */
export async function listRoutes(
  sql: postgres.Sql,
  schema: string,
  filter: RouteFilter,
  toRecord: (row: postgres.Row) => RouteRecord,
): Promise<RouteRecord[]> {
  const limit = filter.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new InvalidArgumentError("limit", "must be an integer from 1 to 10000", limit);
  }
  if (filter.status !== undefined && !ROUTE_STATUSES.includes(filter.status)) {
    throw new InvalidArgumentError(
      "status",
      `must be one of ${ROUTE_STATUSES.join(", ")}`,
      filter.status,
    );
  }
  for (const field of ["channel", "destination", "kind"] as const) {
    const value = filter[field];
    if (value !== undefined && typeof value !== "string") {
      throw new InvalidArgumentError(field, "must be a string", value);
    }
  }
  for (const field of ["since", "until"] as const) {
    const value = filter[field];
    if (value !== undefined && !(value instanceof Date && Number.isFinite(value.getTime()))) {
      throw new InvalidArgumentError(field, "must be a valid Date", value);
    }
  }
  const after = filter.after;
  if (
    after !== undefined &&
    !(after.updatedAt instanceof Date && Number.isFinite(after.updatedAt.getTime()) &&
      isUuid(after.id))
  ) {
    throw new InvalidArgumentError("after", "must be { updatedAt: Date, id: route id }", after);
  }
  const s = sql(schema);
  const none = sql``;
  // A Date holds milliseconds, the column microseconds: the page resumes from
  // the cursor route's own time while that route still has the one it was
  // listed with (it has not changed since), else from the end of the
  // millisecond given, so a route of that millisecond may show twice but
  // none is skipped.
  const cursor = after === undefined ? none : sql`(
    SELECT coalesce(max(updated_at), ${after.updatedAt}::timestamptz + interval '999 microseconds')
    FROM ${s}.notification_routes
    WHERE route_id = ${after.id}
      AND date_trunc('milliseconds', updated_at) = ${after.updatedAt})`;
  const where = sql`
    ${filter.channel === undefined ? none : sql`AND r.channel = ${filter.channel}`}
    ${filter.destination === undefined ? none : sql`AND r.destination_key = ${filter.destination}`}
    ${filter.since === undefined ? none : sql`AND r.updated_at >= ${filter.since}`}
    ${filter.until === undefined ? none : sql`AND r.updated_at < ${filter.until}`}
    ${
    after === undefined
      ? none
      : sql`AND (r.updated_at, r.route_id) < (${cursor}, ${after.id}::uuid)`
  }
    ${filter.kind === undefined ? none : sql`AND n.kind = ${filter.kind}`}`;
  const statuses = filter.status === undefined ? ROUTE_STATUSES : [filter.status];
  // Postgres cannot merge one index's per-status runs by itself: one
  // limited walk per status, then the newest `limit` of them all.
  const walks = statuses.map((status, i) =>
    sql`${i === 0 ? none : sql`UNION ALL`} (
      SELECT r.*, n.kind FROM ${s}.notification_routes r
      JOIN ${s}.notifications n ON n.id = r.notification_id
      WHERE r.status = ${status} ${where}
      ORDER BY r.updated_at DESC, r.route_id DESC LIMIT ${limit})`
  );
  const rows = await sql`
    SELECT * FROM (${walks}) page
    ORDER BY updated_at DESC, route_id DESC LIMIT ${limit}`;
  return rows.map(toRecord);
}

/**
 * Routes sent and failed for good per minute over the last `minutes`
 * (1 to 1,440), oldest first, minutes with neither left out. Counted by the
 * time each route last changed, from the `(status, updated_at, route_id)` index.
 */
export async function activity(
  sql: postgres.Sql,
  schema: string,
  minutes: number,
): Promise<ActivityPoint[]> {
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
    throw new InvalidArgumentError("minutes", "must be an integer from 1 to 1440", minutes);
  }
  const rows = await sql`
    SELECT date_trunc('minute', updated_at) AS at,
           count(*) FILTER (WHERE status = 'sent')::int AS sent,
           count(*) FILTER (WHERE status = 'failed')::int AS failed
    FROM ${sql(schema)}.notification_routes
    WHERE status IN ('sent', 'failed')
      AND updated_at >= date_trunc('minute', now()) - make_interval(mins => ${minutes - 1})
    GROUP BY 1 ORDER BY 1`;
  return rows.map((r) => ({ at: r["at"], sent: r["sent"], failed: r["failed"] }));
}

/** One notification as written, or `undefined` (also for a malformed id). */
export async function notification(
  sql: postgres.Sql,
  schema: string,
  id: string,
): Promise<NotificationRecord | undefined> {
  if (!isUuid(id)) return undefined;
  const [row] = await sql`
    SELECT id, kind, payload, created_at FROM ${sql(schema)}.notifications WHERE id = ${id}`;
  return row === undefined
    ? undefined
    : { id: row["id"], kind: row["kind"], payload: row["payload"], createdAt: row["created_at"] };
}
