/**
 * The claim: the statement that finds due routes and locks them, with the
 * destination checks (state, in-flight slots, rate limiter) in its filter.
 *
 * @module
 */
import type postgres from "postgres";
import type { JsonValue, Route } from "../core/route.ts";
import type { ClaimParams } from "../core/transaction.ts";
import { slotPrefix } from "./destinations.ts";

/**
 * The planner settings a claim runs under, as a fragment of a select list:
 * the store's safety-net statement carries them, so a route transaction
 * spends one statement on both.
 */
export function claimSettings(tx: postgres.TransactionSql): postgres.PendingQuery<postgres.Row[]> {
  return tx`set_config('enable_sort', 'off', true), set_config('jit', 'off', true),
            set_config('plan_cache_mode', 'force_generic_plan', true)`;
}

/**
 * The `levels` CTE (for a `WITH RECURSIVE`): each priority with a queued
 * route, lowest first, with its first route's due time and place. One index
 * probe per level, so a reader never walks the routes not yet due, and skips
 * a level with none due without reading it again. The claim starts each
 * level's scan at that first route (see {@link fromFirst}); the stats, each
 * channel's probe at the earliest of their due times.
 */
export function levels(
  sql: postgres.Sql | postgres.TransactionSql,
  s: postgres.Helper<string>,
): postgres.PendingQuery<postgres.Row[]> {
  return sql`levels AS (
    (SELECT p.priority, p.next_attempt_at AS first_at, p.queue_order AS first_order
     FROM ${s}.notification_routes p
     WHERE p.status = 'queued' ORDER BY p.priority, p.next_attempt_at, p.queue_order LIMIT 1)
    UNION ALL
    SELECT n.priority, n.first_at, n.first_order FROM levels l CROSS JOIN LATERAL (
      SELECT p.priority, p.next_attempt_at AS first_at, p.queue_order AS first_order
      FROM ${s}.notification_routes p
      WHERE p.status = 'queued' AND p.priority > l.priority
      ORDER BY p.priority, p.next_attempt_at, p.queue_order LIMIT 1) n)`;
}

/**
 * The condition that starts a scan of level `l`'s routes (alias `r`) at its
 * first queued route rather than at the start of its index range. Every
 * route sent since the last VACUUM leaves a dead entry in the queue's index,
 * and they gather exactly there, at the front: the probe in {@link levels}
 * steps over them once, and the scan that follows starts past them (an index
 * start key, not a filter). Every queued route has a place (migration 8), so
 * the comparison is never NULL for one.
 */
export function fromFirst(
  sql: postgres.Sql | postgres.TransactionSql,
): postgres.PendingQuery<postgres.Row[]> {
  return sql`(r.next_attempt_at, r.queue_order) >= (l.first_at, l.first_order)`;
}

/** Claims due routes; `tuned`: the transaction already runs under {@link claimSettings}. */
export async function claim(
  tx: postgres.TransactionSql,
  schema: string,
  params: ClaimParams,
  tuned: boolean,
): Promise<Route[]> {
  // One statement (one prepared plan) for both: unset means any channel, and
  // an empty list none (a worker with no channel claims nothing).
  const anyChannel = params.channels === undefined;
  const channels = `{${(params.channels ?? []).join(",")}}`;
  const cap = params.maxInFlight ?? null;
  const rates = params.rates ?? [];
  const rateChannels = `{${rates.map((r) => r.channel).join(",")}}`;
  const perSecond = `{${rates.map((r) => r.perSecond).join(",")}}`;
  const bursts = `{${rates.map((r) => r.burst).join(",")}}`;
  const s = tx(schema);
  // The in-flight slots and the rate limiter's row are taken in the claim's
  // filter, row by row in claim order; a sorting plan would run the filter
  // over every due row first and take what it then does not claim. JIT off
  // too: the sorts a claim does need (a few rows) then look costly enough
  // to compile, which took a second. Sent in the same write as the claim:
  // no round trip of its own.
  if (!tuned) tx`SELECT ${claimSettings(tx)}`.execute().catch(() => {});
  const rows = await tx`
    WITH RECURSIVE ${levels(tx, s)}, claimed AS (
      SELECT x.* FROM levels l CROSS JOIN LATERAL (
      SELECT r.ctid AS at_row, r.route_id, r.notification_id, r.channel, r.destination,
             r.attempts, r.max_attempts, r.priority, r.next_attempt_at, r.created_at,
             r.destination_key, r.queue_order,
             d.state AS destination_state,
             coalesce(d.state <> 'closed' OR d.consecutive_failures > 0, false)
               AS destination_dirty,
             lim.rate, lim.burst
      FROM ${s}.notification_routes r
      LEFT JOIN ${s}.destinations d ON d.channel = r.channel AND d.key = r.destination_key
      CROSS JOIN LATERAL (
        SELECT CASE WHEN r.destination_key IS NOT NULL THEN coalesce(d.rate_per_sec,
                 (${perSecond}::float8[])[array_position(${rateChannels}::text[], r.channel)])
               END AS rate,
               coalesce(d.burst,
                 (${bursts}::int[])[array_position(${rateChannels}::text[], r.channel)], 1)
                 AS burst,
               -- The in-flight cap: one while open (the probe), else its own or, for
               -- an origin, the worker's; none for a channel-wide destination.
               CASE WHEN r.destination_key IS NULL THEN NULL WHEN d.state = 'open' THEN 1
                    ELSE coalesce(d.max_in_flight,
                                  CASE WHEN r.destination_key <> '*' THEN ${cap}::int END)
               END AS cap) lim
      WHERE r.status = 'queued' AND r.priority = l.priority
        AND r.next_attempt_at <= now() AND ${fromFirst(tx)}
        AND r.route_id <> ALL(${`{${params.exclude.join(",")}}`}::uuid[])
        AND (${anyChannel}::boolean OR r.channel = ANY(${channels}::text[]))
        -- Closed, or half-open: its cool-down over, one probe (a cap of one slot,
        -- and below, one route of it per claim).
        AND (d.state IS NULL OR d.state = 'closed'
             OR (d.state = 'open' AND d.open_until <= now()))
        AND (lim.cap IS NULL OR EXISTS (
          -- A slot of the destination's in-flight cap; an advisory lock, so it
          -- ends with the transaction or the connection, whatever kills them.
          -- Uncapped rows stop at the first test (no subplan runs for them).
          SELECT FROM generate_series(1, lim.cap) AS slot(n)
          WHERE pg_try_advisory_xact_lock(
            hashtext(${slotPrefix(schema)} || r.channel || E'\n' || r.destination_key),
            slot.n)))
        AND (lim.rate IS NULL OR EXISTS (
          -- A token: the limiter's row, locked (one sender at a time takes
          -- tokens), its next send due within the burst.
          SELECT FROM ${s}.destinations l
          WHERE l.channel = r.channel AND l.key = r.destination_key
            AND coalesce(l.tat, '-infinity') <=
              now() + (lim.burst - 1) / lim.rate * interval '1 second'
          FOR UPDATE SKIP LOCKED))
      -- Equal due times go in enqueue order.
      ORDER BY r.next_attempt_at, r.queue_order
      LIMIT ${params.limit}
      FOR UPDATE OF r SKIP LOCKED) x
      WHERE l.first_at <= now()
      LIMIT ${params.limit}
    ), tokens AS (
      -- One token per transaction and rate-limited destination; its other
      -- routes claimed here stay queued (locked until this commits).
      UPDATE ${s}.destinations d
      -- A send up to a quarter of an interval late keeps the schedule (no rate
      -- lost to wake-up latency) while a one-second window at the receiver still
      -- holds at most rate + burst. Later than that, the destination was idle:
      -- the schedule starts now.
      SET tat = CASE WHEN d.tat >= now() - interval '0.25 second' / k.rate THEN d.tat
                     ELSE now() END + interval '1 second' / k.rate
      FROM (SELECT DISTINCT channel, destination_key, rate, burst FROM claimed
            WHERE rate IS NOT NULL) k
      WHERE d.channel = k.channel AND d.key = k.destination_key
      RETURNING d.channel, d.key, greatest(0, extract(epoch FROM d.tat - now()) * 1000
        - (k.burst - 1) * 1000 / k.rate) AS next_token_ms
    )
    -- The notification (its payload may be large) joins only the routes returned.
    SELECT c.route_id, c.notification_id, c.channel, c.destination, c.attempts,
           c.max_attempts, c.priority, c.created_at, c.destination_key, c.destination_state,
           c.destination_dirty, n.kind, n.payload, n.traceparent, n.tracestate,
           -- Looked up only for a rate-limited route: a join would scan tokens per row.
           CASE WHEN c.rate IS NOT NULL THEN (
             SELECT t.next_token_ms FROM tokens t
             WHERE t.channel = c.channel AND t.key = c.destination_key) END AS next_token_ms
    FROM claimed c
    -- By its key, route by route (LIMIT keeps the planner from turning this
    -- into a join that reads the whole table under a generic plan).
    CROSS JOIN LATERAL (
      SELECT kind, payload, traceparent, tracestate FROM ${s}.notifications
      WHERE id = c.notification_id LIMIT 1) n
    -- Of a rate-limited or half-open destination, only its first route claimed
    -- here (the rest stay queued, locked until this transaction ends).
    WHERE (c.rate IS NULL AND c.destination_state IS DISTINCT FROM 'open') OR NOT EXISTS (
      SELECT FROM claimed e
      WHERE e.channel = c.channel AND e.destination_key = c.destination_key
        AND (e.priority, e.next_attempt_at, coalesce(e.queue_order, 0), e.at_row)
          < (c.priority, c.next_attempt_at, coalesce(c.queue_order, 0), c.at_row))
    ORDER BY c.priority, c.next_attempt_at, c.queue_order`;
  return rows.map((row) => ({
    id: row["route_id"],
    notificationId: row["notification_id"],
    kind: row["kind"],
    payload: row["payload"] as JsonValue,
    channel: row["channel"],
    destination: row["destination"],
    attempts: row["attempts"],
    maxAttempts: row["max_attempts"],
    priority: row["priority"],
    createdAt: row["created_at"],
    trace: row["traceparent"] === null
      ? null
      : { traceparent: row["traceparent"], tracestate: row["tracestate"] },
    ...(row["destination_key"] === null ? {} : {
      destinationKey: row["destination_key"],
      probe: row["destination_state"] === "open",
      destinationDirty: row["destination_dirty"],
      ...(row["next_token_ms"] === null ? {} : { nextTokenMs: Number(row["next_token_ms"]) }),
    }),
  }));
}
