/**
 * `stats`: what `herald stats` prints and `/metrics` serves. On a large
 * table it reads only what indexes answer cheaply and estimates the rest;
 * `QueueStats.estimated` says which figures are estimates.
 *
 * @module
 */
import type postgres from "postgres";
import { ROUTE_STATUSES as STATUSES } from "../core/route.ts";
import type { RouteStatus } from "../core/route.ts";
import { type DestinationStats, type QueueStats, TROUBLED_COUNT_CAP } from "../core/operator.ts";
import { levels } from "./_claim.ts";

/**
 * Above this many rows (the planner's estimate), `stats` counts only what
 * the queue's indexes answer (queued and poisoned routes, exact) and
 * estimates the history's statuses from the planner's statistics: counting
 * millions of rows per scrape costs seconds.
 */
export const EXACT_STATS_ROWS = 100_000;

/**
 * On such a table, each channel's queued routes are counted exactly up to
 * this many (index-only reads of the destination index, which leads with the
 * channel); a channel with more is estimated: the planner's count of the
 * whole queue, less the channels counted exactly, shared evenly among the
 * channels past this figure (never below it).
 */
export const EXACT_QUEUED_ROUTES = 10_000;

/** Counts by status and channel, the oldest due age and the last hour's failures. */
export async function stats(pool: postgres.Sql, schema: string): Promise<QueueStats> {
  // One transaction, its queries pipelined on one connection, with JIT off:
  // these plans can look costly enough to compile, which takes longer than
  // running them.
  return await pool.begin(async (sql) => {
    await planSettings(sql);
    return await statsIn(sql, schema);
  }) as QueueStats;
}

/** The transaction's plan settings for the stats queries: JIT off, sorts avoided. */
export async function planSettings(sql: postgres.TransactionSql): Promise<void> {
  await sql`SELECT set_config('jit', 'off', true), set_config('enable_sort', 'off', true)`;
}

async function statsIn(sql: postgres.TransactionSql, schema: string): Promise<QueueStats> {
  const s = sql(schema);
  const [size] = await sql`
    SELECT c.reltuples::float8 AS rows,
           -- most_common_vals is anyarray: through text to text[].
           array_to_json(st.most_common_vals::text::text[]) AS vals,
           array_to_json(st.most_common_freqs) AS freqs
    FROM pg_class c
    LEFT JOIN pg_stats st ON st.schemaname = ${schema} AND st.tablename = c.relname
                         AND st.attname = 'status'
    WHERE c.oid = to_regclass(${`"${schema}".notification_routes`})`;
  const rows = (size?.["rows"] as number | undefined) ?? -1;
  const estimate = rows >= EXACT_STATS_ROWS && size?.["vals"] != null;
  const [groups, [extra], due, troubled, states] = await Promise.all([
    channelCounts(sql, s, estimate),
    sql`SELECT
          (SELECT count(*) FROM ${s}.notification_routes
             WHERE status = 'failed' AND updated_at > now() - interval '1 hour')::int AS failed`,
    oldestDue(sql, s),
    troubledDestinations(sql, s),
    sql`SELECT CASE WHEN state = 'open' AND open_until <= now() THEN 'half_open' ELSE state END
                 AS state, count(*)::int AS n
        FROM ${s}.destinations GROUP BY 1`,
  ]);
  const byStatus = Object.fromEntries(STATUSES.map((st) => [st, 0])) as Record<RouteStatus, number>;
  const estimated = estimate ? historyEstimate(byStatus, rows, size!) : [];
  let byChannel = groups.map((g) => {
    byStatus[g["status"] as RouteStatus] += g["n"];
    return {
      channel: g["channel"] as string,
      status: g["status"] as RouteStatus,
      count: g["n"] as number,
    };
  });
  if (estimate && byChannel.some((c) => c.status === "queued" && c.count > EXACT_QUEUED_ROUTES)) {
    byChannel = queuedEstimate(byStatus, byChannel, rows, size!);
    estimated.push("queued");
  }
  const oldestDueByChannel = due.map((d) => ({
    channel: d["channel"] as string,
    ageMs: Math.max(0, Math.round(d["age"] as number)),
  }));
  const ages = oldestDueByChannel.map((d) => d.ageMs);
  return {
    byStatus,
    byChannel,
    oldestDueAgeMs: ages.length === 0 ? null : Math.max(...ages),
    oldestDueByChannel,
    failedLastHour: extra?.["failed"] ?? 0,
    estimated,
    destinations: destinationStats(troubled, states),
  };
}

/**
 * Routes by channel and status. On a large table (`estimate`), queued routes
 * channel by channel (one index probe finds each channel, then its count,
 * capped), from the index of queued routes that leads with the channel, and
 * poisoned ones from (status, updated_at, route_id); the history is
 * estimated apart.
 */
function channelCounts(
  sql: postgres.TransactionSql,
  s: postgres.Helper<string>,
  estimate: boolean,
): postgres.PendingQuery<postgres.Row[]> {
  return estimate
    ? sql`WITH RECURSIVE ${channels(sql, s)}
        SELECT c.channel, 'queued' AS status, q.n FROM channels c CROSS JOIN LATERAL (
          SELECT count(*)::int AS n FROM (
            SELECT FROM ${s}.notification_routes r
            WHERE r.status = 'queued' AND r.channel = c.channel
            LIMIT ${EXACT_QUEUED_ROUTES + 1}) x) q
        WHERE c.channel IS NOT NULL
        UNION ALL
        SELECT channel, 'poisoned', count(*)::int FROM ${s}.notification_routes
        WHERE status = 'poisoned' GROUP BY channel
        ORDER BY 1, 2`
    : sql`SELECT channel, status, count(*)::int AS n FROM ${s}.notification_routes
        GROUP BY channel, status ORDER BY channel, status`;
}

/**
 * The `channels` CTE (for a `WITH RECURSIVE`): each channel with a queued
 * route, one index probe each (a skip scan of an index that leads with the
 * channel), then a NULL row that ends it.
 */
function channels(
  sql: postgres.TransactionSql,
  s: postgres.Helper<string>,
): postgres.PendingQuery<postgres.Row[]> {
  return sql`channels AS (
    (SELECT r.channel FROM ${s}.notification_routes r WHERE r.status = 'queued'
     ORDER BY r.channel LIMIT 1)
    UNION ALL
    SELECT (SELECT r.channel FROM ${s}.notification_routes r
            WHERE r.status = 'queued' AND r.channel > c.channel
            ORDER BY r.channel LIMIT 1)
    FROM channels c WHERE c.channel IS NOT NULL)`;
}

/**
 * Each channel's oldest due route: one probe per channel (channel by channel
 * from the index that leads with it), starting at the oldest queued route's
 * due time: past the entries that routes sent since the last VACUUM left in
 * front of it (those of a channel behind the oldest route it still steps
 * over). Never the routes scheduled for later, nor a busy channel's backlog.
 */
function oldestDue(
  sql: postgres.TransactionSql,
  s: postgres.Helper<string>,
): postgres.PendingQuery<postgres.Row[]> {
  return sql`
    WITH RECURSIVE ${levels(sql, s)}, ${channels(sql, s)}
    SELECT c.channel, (extract(epoch FROM now() - f.at) * 1000)::float8 AS age
    FROM channels c CROSS JOIN LATERAL (
      SELECT r.next_attempt_at AS at FROM ${s}.notification_routes r
      WHERE r.status = 'queued' AND r.channel = c.channel
        AND r.next_attempt_at >= (SELECT min(first_at) FROM levels)
        AND r.next_attempt_at <= now()
      ORDER BY r.next_attempt_at LIMIT 1) f
    WHERE c.channel IS NOT NULL
    ORDER BY c.channel`;
}

/** The destinations part of the stats, from {@link troubledDestinations} and the states' counts. */
function destinationStats(
  troubled: readonly postgres.Row[],
  states: readonly postgres.Row[],
): DestinationStats {
  return {
    byState: Object.assign(
      { closed: 0, open: 0, half_open: 0, paused: 0, disabled: 0 },
      Object.fromEntries(states.map((r) => [r["state"], r["n"]])),
    ),
    troubled: troubled.map((r) => ({
      channel: r["channel"],
      key: r["key"],
      state: r["state"],
      trips: r["trips"],
      consecutiveFailures: r["consecutive_failures"],
      queued: r["queued"],
      deferred: r["deferred"],
      ...(Math.max(r["queued"], r["deferred"]) > TROUBLED_COUNT_CAP
        ? { capped: true as const }
        : {}),
    })),
    deferredByLimit: troubled.reduce((n, r) => n + (r["deferred"] as number), 0),
  };
}

/**
 * Every destination in trouble (not closed, failing, or holding routes back
 * by its rate limit), with its queued routes and the due ones its rate limit
 * defers, each counted up to one past the cap: a dead destination's backlog
 * is what grows, and a scrape must not read all of it. The deferred are read
 * at the due end of each priority in use, never the routes not yet due.
 */
function troubledDestinations(
  sql: postgres.TransactionSql,
  s: postgres.Helper<string>,
): postgres.PendingQuery<postgres.Row[]> {
  const most = TROUBLED_COUNT_CAP + 1;
  return sql`
    WITH RECURSIVE ${levels(sql, s)}
    SELECT d.channel, d.key,
           CASE WHEN d.state = 'open' AND d.open_until <= now() THEN 'half_open'
                ELSE d.state END AS state,
           d.trips, d.consecutive_failures, q.queued, f.deferred
    FROM (SELECT * FROM ${s}.destinations
          WHERE state <> 'closed' OR consecutive_failures > 0 OR tat > now()) d
    CROSS JOIN LATERAL (
      SELECT count(*)::int AS queued FROM (
        SELECT FROM ${s}.notification_routes r
        WHERE r.channel = d.channel AND r.destination_key = d.key AND r.status = 'queued'
        LIMIT ${most}) r) q
    CROSS JOIN LATERAL (
      -- Due and sendable but for the rate limit (its schedule is ahead).
      SELECT count(*)::int AS deferred FROM (
        SELECT FROM levels l CROSS JOIN LATERAL (
          SELECT FROM ${s}.notification_routes r
          WHERE r.channel = d.channel AND r.destination_key = d.key AND r.status = 'queued'
            AND r.priority = l.priority AND r.next_attempt_at <= now() AND r.held_from IS NULL
          LIMIT ${most}) r
        WHERE d.state = 'closed' AND d.tat > now()
        LIMIT ${most}) r) f
    WHERE d.state <> 'closed' OR d.consecutive_failures > 0 OR f.deferred > 0
    ORDER BY d.channel, d.key LIMIT 1000`;
}

/**
 * Replaces the capped queued counts by an estimate: the planner's count of
 * the queue (rows x its share in the sample, at least what was counted) less
 * the channels counted exactly, shared evenly among the capped channels
 * (which routes of a long queue belong to which is what was not counted).
 */
function queuedEstimate(
  byStatus: Record<RouteStatus, number>,
  byChannel: { channel: string; status: RouteStatus; count: number }[],
  rows: number,
  size: postgres.Row,
): { channel: string; status: RouteStatus; count: number }[] {
  const capped = (c: { status: RouteStatus; count: number }): boolean =>
    c.status === "queued" && c.count > EXACT_QUEUED_ROUTES;
  const exact = byChannel.filter((c) => c.status === "queued" && !capped(c))
    .reduce((n, c) => n + c.count, 0);
  const long = byChannel.filter(capped).length;
  byStatus.queued = Math.max(byStatus.queued, planned(rows, size, "queued"));
  const each = Math.max(EXACT_QUEUED_ROUTES + 1, Math.round((byStatus.queued - exact) / long));
  byStatus.queued = exact + each * long;
  return byChannel.map((c) => capped(c) ? { ...c, count: each } : c);
}

/**
 * Fills `byStatus` for the history's statuses from the planner's statistics
 * (rows x each status's share in its sample); returns the statuses filled.
 */
function historyEstimate(
  byStatus: Record<RouteStatus, number>,
  rows: number,
  size: postgres.Row,
): RouteStatus[] {
  const history = ["sent", "failed", "cancelled"] as const;
  for (const status of history) byStatus[status] = planned(rows, size, status);
  return [...history];
}

/** The planner's count of `status`: rows x its share in the sample (0 when not in it). */
function planned(rows: number, size: postgres.Row, status: RouteStatus): number {
  const i = (size["vals"] as string[]).indexOf(status);
  return i < 0 ? 0 : Math.round(rows * (size["freqs"] as number[])[i]!);
}
