/**
 * The `destinations` table: what a route transaction reports about the
 * destinations it sent to, parking a blocked destination's routes, and the
 * operator's views and controls. The rules themselves are
 * `nextDestination`'s, shared with every store.
 *
 * @module
 */
import type postgres from "postgres";
import { checkDestinationCall, checkSettings } from "../core/_validate.ts";
import { changeOf, HELD_UNTIL, nextDestination, stateAfter } from "../core/destination.ts";
import type {
  DestinationAction,
  DestinationChange,
  DestinationHealth,
  DestinationInfo,
  DestinationPolicy,
  DestinationReport,
  DestinationSettings,
  DestinationState,
} from "../core/destination.ts";
import { ROUTE_STATUSES } from "../core/route.ts";
import { wakeChannel } from "./schema.ts";

/** Where held routes wait, as Postgres reads it. */
export const HELD: string = new Date(HELD_UNTIL).toISOString();

/** The advisory-lock namespace of a schema's in-flight slots (hashed with the destination). */
export function slotPrefix(schema: string): string {
  return `herald.slot:${schema}\n`;
}

/**
 * Applies each report to its destination, in the route transaction that
 * made the sends (the destination row stays locked until it commits), and
 * parks the queued routes of a destination left open, paused or disabled,
 * skipping those other workers hold: each parks itself when it reports.
 */
export async function reportDestinations(
  tx: postgres.TransactionSql,
  schema: string,
  reports: readonly DestinationReport[],
  policy: DestinationPolicy,
): Promise<DestinationChange[]> {
  const s = tx(schema);
  const changes: DestinationChange[] = [];
  // Locked in one order by every worker: two batches reporting on the same
  // destinations in claim order (d1, d2 against d2, d1) would deadlock, and
  // the loser's reports be lost.
  for (const report of [...reports].sort(byDestination)) {
    const { channel, key } = report;
    // Pipelined: the row exists by the time it is locked and read.
    tx`INSERT INTO ${s}.destinations (channel, key) VALUES (${channel}, ${key})
       ON CONFLICT DO NOTHING`.execute().catch(() => {});
    const [row] = await tx`
      SELECT *, clock_timestamp() AS at FROM ${s}.destinations
      WHERE channel = ${channel} AND key = ${key} FOR UPDATE`;
    if (!row) continue;
    const before = toHealth(row);
    const now = (row["at"] as Date).getTime();
    const after = nextDestination(before, report, policy, now);
    await tx`
      UPDATE ${s}.destinations SET
        state = ${after.state}, consecutive_failures = ${after.consecutiveFailures},
        trips = ${after.trips}, open_until = ${date(after.openUntil)},
        failing_since = ${date(after.failingSince)}, last_failure_at = ${date(after.lastFailureAt)},
        last_success_at = ${date(after.lastSuccessAt)}, last_error = ${after.lastError},
        reason = ${after.reason}, updated_at = clock_timestamp()
      WHERE channel = ${channel} AND key = ${key}`;
    if (after.state !== "closed") await park(tx, schema, channel, key, after);
    else if (before.state !== "closed") await release(tx, schema, channel, key);
    const change = changeOf(channel, key, before, after);
    if (change) changes.push(change);
  }
  return changes;
}

/** Orders reports by channel, then key (code units: the same in every worker). */
function byDestination(a: DestinationReport, b: DestinationReport): number {
  if (a.channel !== b.channel) return a.channel < b.channel ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Moves a blocked destination's queued routes out of the claim's way: due
 * at the end of an open destination's cool-down, or far ahead while it is
 * paused or disabled. Each keeps its own due time in `held_from`.
 */
async function park(
  tx: postgres.TransactionSql,
  schema: string,
  channel: string,
  key: string,
  d: Pick<DestinationHealth, "state" | "openUntil">,
): Promise<void> {
  const s = tx(schema);
  const until = d.state === "open" ? date(d.openUntil) : HELD;
  await tx`
    UPDATE ${s}.notification_routes
    SET held_from = coalesce(held_from, next_attempt_at), next_attempt_at = ${until}
    WHERE route_id IN (
      SELECT route_id FROM ${s}.notification_routes
      WHERE channel = ${channel} AND destination_key = ${key} AND status = 'queued'
        AND next_attempt_at < ${until}
      FOR UPDATE SKIP LOCKED)`;
}

/** Gives a closed destination's held routes back their own due times; true if any. */
async function release(
  tx: postgres.TransactionSql,
  schema: string,
  channel: string,
  key: string,
): Promise<boolean> {
  const s = tx(schema);
  const released = await tx`
    UPDATE ${s}.notification_routes SET next_attempt_at = held_from, held_from = NULL
    WHERE route_id IN (
      SELECT route_id FROM ${s}.notification_routes
      WHERE channel = ${channel} AND destination_key = ${key} AND status = 'queued'
        AND held_from IS NOT NULL
      FOR UPDATE SKIP LOCKED)
    RETURNING 1`;
  return released.length > 0;
}

/**
 * Pauses, disables, resumes or enables a destination (creating its row if
 * need be). Resuming releases the held routes, each due when it was due, and
 * wakes the workers.
 */
export async function setDestinationState(
  sql: postgres.Sql,
  schema: string,
  channel: string,
  key: string,
  action: DestinationAction,
  reason?: string,
): Promise<DestinationState> {
  checkDestinationCall(channel, key, { action, reason });
  const state = stateAfter(action);
  const s = sql(schema);
  return await sql.begin(async (tx) => {
    await tx`
      INSERT INTO ${s}.destinations AS d (channel, key, state, reason)
      VALUES (${channel}, ${key}, ${state}, ${reason ?? null})
      ON CONFLICT (channel, key) DO UPDATE SET
        state = excluded.state, reason = excluded.reason, updated_at = clock_timestamp(),
        consecutive_failures = CASE WHEN excluded.state = 'closed' THEN 0
                                    ELSE d.consecutive_failures END,
        trips = CASE WHEN excluded.state = 'closed' THEN 0 ELSE d.trips END,
        open_until = NULL,
        failing_since = CASE WHEN excluded.state = 'closed' THEN NULL ELSE d.failing_since END`;
    if (state !== "closed") {
      await park(tx, schema, channel, key, { state, openUntil: null });
      return state;
    }
    if (await release(tx, schema, channel, key)) {
      await tx`SELECT pg_notify(${wakeChannel(schema)}, '')`;
    }
    return state;
  }) as DestinationState;
}

/** Sets (or, with `null`, clears) a destination's own settings. */
export async function configureDestination(
  sql: postgres.Sql,
  schema: string,
  channel: string,
  key: string,
  settings: DestinationSettings,
): Promise<void> {
  checkDestinationCall(channel, key);
  checkSettings(settings);
  const keep = (field: keyof DestinationSettings): boolean => settings[field] === undefined;
  const s = sql(schema);
  await sql`
    INSERT INTO ${s}.destinations AS d
      (channel, key, max_in_flight, failure_threshold, cooldown_ms, rate_per_sec, burst)
    VALUES (${channel}, ${key}, ${settings.maxInFlight ?? null},
            ${settings.failureThreshold ?? null}, ${settings.cooldownMs ?? null},
            ${settings.ratePerSecond ?? null}::float8, ${settings.burst ?? null})
    ON CONFLICT (channel, key) DO UPDATE SET
      rate_per_sec = CASE WHEN ${keep("ratePerSecond")} THEN d.rate_per_sec
                          ELSE excluded.rate_per_sec END,
      burst = CASE WHEN ${keep("burst")} THEN d.burst ELSE excluded.burst END,
      -- A new limit takes effect now, not after the old one's backlog of tokens.
      tat = CASE WHEN ${keep("ratePerSecond") && keep("burst")} THEN d.tat END,
      max_in_flight = CASE WHEN ${keep("maxInFlight")} THEN d.max_in_flight
                           ELSE excluded.max_in_flight END,
      failure_threshold = CASE WHEN ${keep("failureThreshold")} THEN d.failure_threshold
                               ELSE excluded.failure_threshold END,
      cooldown_ms = CASE WHEN ${keep("cooldownMs")} THEN d.cooldown_ms
                         ELSE excluded.cooldown_ms END,
      updated_at = clock_timestamp()`;
}

/**
 * Every destination with a row or a queued route, or one: state, settings,
 * queue, slots in use (where a cap applies) and the last hour's attempts.
 */
export async function listDestinations(
  sql: postgres.Sql,
  schema: string,
  one?: { readonly channel: string; readonly key: string },
): Promise<DestinationInfo[]> {
  const s = sql(schema);
  const all = one === undefined;
  const only = one ?? { channel: "", key: "" };
  const rows = await sql`
    WITH q AS (
      SELECT channel, destination_key AS key, count(*)::int AS queued,
             min(coalesce(held_from, next_attempt_at))
               FILTER (WHERE coalesce(held_from, next_attempt_at) <= now()) AS oldest_due,
             count(*) FILTER (WHERE held_from IS NULL AND next_attempt_at <= now())::int AS due
      FROM ${s}.notification_routes
      WHERE status = 'queued' AND destination_key IS NOT NULL
        AND (${all} OR (channel = ${only.channel} AND destination_key = ${only.key}))
      GROUP BY 1, 2
    ), dest AS (
      SELECT coalesce(d.channel, q.channel) AS channel, coalesce(d.key, q.key) AS key,
             d.state, d.consecutive_failures, d.trips, d.open_until, d.failing_since,
             d.last_failure_at, d.last_success_at, d.last_error, d.reason, d.max_in_flight,
             d.failure_threshold, d.cooldown_ms, d.rate_per_sec, d.burst, d.tat,
             coalesce(q.queued, 0) AS queued, q.oldest_due, coalesce(q.due, 0) AS due
      FROM (SELECT * FROM ${s}.destinations
            WHERE ${all} OR (channel = ${only.channel} AND key = ${only.key})) d
      FULL JOIN q ON q.channel = d.channel AND q.key = d.key
    ), hour AS (
      -- The last hour's attempts, by destination, read once for all of them,
      -- from the routes changed in the last hour (a finalise stamps its route
      -- with the attempt's end; an operator's retry or cancel with its
      -- transaction's start, a moment earlier at most: a minute of slack
      -- covers that and the clock). A join, left to the planner: a lateral
      -- count per route read every queued route changed in the hour (a
      -- backlog's enqueues) and was 12 times slower beside one.
      SELECT r.channel, r.destination_key AS key, count(*)::int AS attempts,
             count(*) FILTER (WHERE a.outcome <> 'sent')::int AS failures,
             max(a.started_at + a.duration_ms * interval '1 millisecond')
               FILTER (WHERE a.outcome = 'sent') AS last_sent
      FROM ${s}.notification_routes r
      JOIN ${s}.route_attempts a ON a.route_id = r.route_id
      WHERE r.status = ANY(${`{${ROUTE_STATUSES.join(",")}}`}::text[])
        AND r.updated_at > now() - interval '61 minutes'
        AND a.started_at > now() - interval '1 hour' AND r.destination_key IS NOT NULL
        AND (${all} OR (r.channel = ${only.channel} AND r.destination_key = ${only.key}))
      GROUP BY 1, 2
    )
    SELECT dest.*, now() AS at,
           (dest.key <> '*' OR dest.max_in_flight IS NOT NULL) AS capped,
           -- Due and sendable but for the rate limit: its schedule is ahead of the clock.
           CASE WHEN coalesce(dest.state, 'closed') = 'closed' AND dest.tat > now()
                THEN dest.due ELSE 0 END AS deferred,
           (SELECT count(*)::int FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted
              AND l.classid = (hashtext(${slotPrefix(schema)} || dest.channel || E'\\n' || dest.key)
                                 ::bigint & 4294967295)::oid) AS in_flight,
           coalesce(hour.attempts, 0) AS attempts_hour, coalesce(hour.failures, 0) AS failures_hour,
           -- A healthy destination's successes change nothing in its row: the log has them.
           greatest(dest.last_success_at, hour.last_sent) AS last_success
    FROM dest
    LEFT JOIN hour ON hour.channel = dest.channel AND hour.key = dest.key
    ORDER BY CASE coalesce(dest.state, 'closed') WHEN 'disabled' THEN 0 WHEN 'open' THEN 1
               WHEN 'paused' THEN 2 ELSE 3 END, dest.consecutive_failures DESC NULLS LAST,
             dest.queued DESC, dest.channel, dest.key`;
  return rows.map((row) => toInfo(row));
}

function toInfo(row: postgres.Row): DestinationInfo {
  const health = toHealth(row);
  const at = (row["at"] as Date).getTime();
  const halfOpen = health.state === "open" && health.openUntil !== null && health.openUntil <= at;
  return {
    channel: row["channel"],
    key: row["key"],
    state: halfOpen ? "half_open" : health.state,
    consecutiveFailures: health.consecutiveFailures,
    trips: health.trips,
    openUntil: date(health.openUntil),
    failingSince: date(health.failingSince),
    lastFailureAt: date(health.lastFailureAt),
    lastSuccessAt: row["last_success"] ?? null,
    lastError: health.lastError,
    reason: health.reason,
    settings: {
      maxInFlight: row["max_in_flight"] ?? null,
      failureThreshold: health.failureThreshold,
      cooldownMs: health.cooldownMs,
      ratePerSecond: row["rate_per_sec"] ?? null,
      burst: row["burst"] ?? null,
    },
    queued: row["queued"],
    oldestDueAt: row["oldest_due"] ?? null,
    deferred: row["deferred"],
    inFlight: row["capped"] ? row["in_flight"] : null,
    attemptsLastHour: row["attempts_hour"],
    failuresLastHour: row["failures_hour"],
  };
}

function toHealth(row: postgres.Row): DestinationHealth {
  return {
    state: row["state"] ?? "closed",
    consecutiveFailures: row["consecutive_failures"] ?? 0,
    trips: row["trips"] ?? 0,
    openUntil: ms(row["open_until"]),
    failingSince: ms(row["failing_since"]),
    lastFailureAt: ms(row["last_failure_at"]),
    lastSuccessAt: ms(row["last_success_at"]),
    lastError: row["last_error"] ?? null,
    reason: row["reason"] ?? null,
    failureThreshold: row["failure_threshold"] ?? null,
    cooldownMs: row["cooldown_ms"] ?? null,
  };
}

function ms(value: unknown): number | null {
  return value instanceof Date ? value.getTime() : null;
}

function date(value: number | null): Date | null {
  return value === null ? null : new Date(value);
}
