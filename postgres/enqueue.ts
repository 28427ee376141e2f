/**
 * The transactional outbox: a notification and its routes written with the
 * application's own `postgres` handle, in one statement per table, with the
 * wake-up `NOTIFY` decided in SQL.
 *
 * @module
 */
import type postgres from "postgres";
import { HeraldError } from "../core/errors.ts";
import { uuidv7 } from "../core/_uuid.ts";
import type { Tracer } from "@opentelemetry/api";
import type { TracerLike } from "../core/telemetry.ts";
import type { Enqueued, NotificationInput, RouteInput, TraceHeaders } from "../core/route.ts";
import { checkEnqueue } from "../core/_validate.ts";
import { HELD_UNTIL } from "../core/destination.ts";
import { destinationKey } from "../core/destination_key.ts";
import { activeHeaders, heraldTracer, publishSpan } from "../observe/tracing.ts";
import { checkSchema, driverHandle, wakeChannel } from "./schema.ts";
import type { SqlHandle } from "./schema.ts";

/**
 * Writes a notification and its routes with the caller's own `postgres`
 * handle, so they commit or roll back with the caller's transaction (the
 * transactional outbox). Given a pool rather than a transaction, it opens one.
 * The enqueue is a producer span `publish herald` (a no-op without an
 * OpenTelemetry SDK), and its trace context is stored with the notification
 * so the sends continue the trace; `tracer: false` stores only an explicit
 * or already active context and records no span.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { enqueue } from "./enqueue.ts";
 *
 * export async function shipOrder(sql: postgres.Sql, order: number): Promise<void> {
 *   await sql.begin(async (tx) => {
 *     await tx`UPDATE orders SET shipped = true WHERE id = ${order}`;
 *     await enqueue(tx, { kind: "order.shipped", payload: { order } }, [
 *       { channel: "webhook", destination: "https://example.com/hooks" },
 *     ]);
 *   });
 * }
 * ```
 */
export async function enqueue(
  sqlOrTx: SqlHandle,
  notification: NotificationInput,
  routes: readonly RouteInput[],
  options: { readonly schema?: string; readonly tracer?: TracerLike | false } = {},
): Promise<Enqueued> {
  const schema = checkSchema(options.schema ?? "herald");
  const checked = checkEnqueue(notification, routes);
  const handle = driverHandle("sqlOrTx", sqlOrTx);
  const write = async (trace: TraceHeaders | null): Promise<Enqueued> => {
    if ("savepoint" in handle) {
      const tx = handle as unknown as postgres.TransactionSql;
      return await insertNotification(tx, schema, checked, trace);
    }
    return await handle.begin((tx) => insertNotification(tx, schema, checked, trace)) as Enqueued;
  };
  const explicit = checked.notification.trace;
  const tracer = (options.tracer ?? heraldTracer()) as Tracer | false;
  if (tracer === false) return await write(explicit ?? activeHeaders());
  return await publishSpan(tracer, explicit, write);
}

/** Where held routes wait, as Postgres reads it. */
const HELD = new Date(HELD_UNTIL).toISOString();

async function insertNotification(
  tx: postgres.TransactionSql,
  schema: string,
  { notification, routes }: ReturnType<typeof checkEnqueue>,
  trace: TraceHeaders | null,
): Promise<Enqueued> {
  const notificationId = uuidv7();
  const inserted = await tx`
    INSERT INTO ${tx(schema)}.notifications
      (id, kind, payload, idempotency_key, traceparent, tracestate)
    VALUES (${notificationId}, ${notification.kind}, ${notification.payloadJson}::text::jsonb,
            ${notification.idempotencyKey}, ${trace?.traceparent ?? null},
            ${trace?.tracestate ?? null})
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id`;
  if (inserted.length === 0) {
    const existing = await tx`
      SELECT n.id, coalesce(json_agg(r.route_id ORDER BY r.created_at, r.seq)
               FILTER (WHERE r.route_id IS NOT NULL), '[]') AS route_ids
      FROM ${tx(schema)}.notifications n
      LEFT JOIN ${tx(schema)}.notification_routes r ON r.notification_id = n.id
      WHERE n.idempotency_key = ${notification.idempotencyKey}
      GROUP BY n.id`;
    const row = existing[0];
    if (!row) throw new HeraldError("HERALD_STORE", "idempotency key conflict, but no row found");
    return { notificationId: row["id"], routeIds: row["route_ids"], duplicate: true };
  }
  const rows = routes.map((r, seq) => ({
    route_id: uuidv7(),
    notification_id: notificationId,
    seq,
    channel: r.channel,
    destination: r.destination,
    destination_key: destinationKey(r.destination),
    max_attempts: r.maxAttempts,
    priority: r.priority,
    deliver_at: r.deliverAt,
  }));
  // The NOTIFY is delivered on commit, and only then: listening workers wake
  // for routes that exist. Whether a route is due now is the database's
  // call, on the clock that decides due-ness, not the application's.
  // A route for a blocked destination is held from the start, its own due time
  // kept in held_from: far ahead while the destination is paused or disabled,
  // to the end of its cool-down while it is open. The claim never steps over it.
  await tx`
    WITH x AS (
      SELECT x.*, coalesce(x.deliver_at, now()) AS due, d.state, d.open_until
      FROM json_to_recordset(${JSON.stringify(rows)}::text::json) AS x(
        route_id uuid, notification_id uuid, seq int, channel text, destination text,
        destination_key text, max_attempts int, priority int, deliver_at timestamptz)
      LEFT JOIN ${tx(schema)}.destinations d
        ON d.channel = x.channel AND d.key = x.destination_key
    ), inserted AS (
      INSERT INTO ${tx(schema)}.notification_routes
        (route_id, notification_id, seq, channel, destination, destination_key, max_attempts,
         priority, next_attempt_at, held_from)
      SELECT route_id, notification_id, seq, channel, destination, destination_key,
             max_attempts, priority,
             CASE WHEN state IN ('paused', 'disabled') THEN ${HELD}::timestamptz
                  WHEN state = 'open' THEN greatest(due, open_until) ELSE due END,
             CASE WHEN state IN ('paused', 'disabled') OR (state = 'open' AND due < open_until)
                  THEN due END
      FROM x ORDER BY seq
    ), known AS (
      -- A destination's row exists from its first route on: its rate limiter's
      -- row must be there to lock before anything is sent to it.
      INSERT INTO ${tx(schema)}.destinations (channel, key)
      SELECT DISTINCT channel, destination_key FROM x WHERE state IS NULL
      ON CONFLICT DO NOTHING
    )
    SELECT pg_notify(${wakeChannel(schema)}, '')
    FROM (SELECT 1 FROM x WHERE due <= clock_timestamp()
            AND coalesce(state, 'closed') = 'closed' LIMIT 1) due`;
  return { notificationId, routeIds: rows.map((r) => r.route_id), duplicate: false };
}
