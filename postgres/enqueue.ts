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
import { HELD } from "./destinations.ts";
import { destinationKey } from "../core/destination_key.ts";
import { activeHeaders, heraldTracer, publishSpan } from "../observe/tracing.ts";
import { checkSchema, driverHandle, wakeChannel } from "./schema.ts";
import type { SqlHandle } from "./schema.ts";

/**
 * Writes a notification and its routes with the caller's own `postgres`
 * handle, so they commit or roll back with the caller's transaction (the
 * transactional outbox). Given a pool rather than a transaction, its one
 * statement is atomic by itself: one round trip.
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
  // One statement, atomic by itself: in the caller's transaction or on its own.
  const write = (trace: TraceHeaders | null): Promise<Enqueued> =>
    insertNotification(handle as postgres.Sql, schema, checked, trace).catch((err) => {
      throw unmigrated(schema, err) ?? err;
    });
  const explicit = checked.notification.trace;
  const tracer = (options.tracer ?? heraldTracer()) as Tracer | false;
  if (tracer === false) return await write(explicit ?? activeHeaders());
  return await publishSpan(tracer, explicit, write);
}

/**
 * The error to give for a schema without Herald's tables (42P01): the
 * driver's alone names only the relation.
 */
function unmigrated(schema: string, err: unknown): HeraldError | undefined {
  if ((err as { code?: unknown } | null)?.code !== "42P01") return undefined;
  return new HeraldError(
    "HERALD_STORE",
    `schema ${schema} has no Herald tables: run the migrations first (herald migrate, or store.migrate())`,
    { cause: err },
  );
}

/**
 * One statement: the notification, its routes, their destinations' rows and
 * the wake-up, all or nothing, so outside a transaction it needs no BEGIN or
 * COMMIT (one round trip) and inside one it adds one. A repeated idempotency
 * key inserts nothing and answers with the first notification's ids.
 */
async function insertNotification(
  sql: postgres.Sql | postgres.TransactionSql,
  schema: string,
  { notification, routes }: ReturnType<typeof checkEnqueue>,
  trace: TraceHeaders | null,
): Promise<Enqueued> {
  const notificationId = uuidv7();
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
  const s = sql(schema);
  // The NOTIFY is delivered on commit, and only then: listening workers wake
  // for routes that exist. Whether a route is due now is the database's
  // call, on the clock that decides due-ness, not the application's.
  // A route for a blocked destination is held from the start, its own due time
  // kept in held_from: far ahead while the destination is paused or disabled,
  // to the end of its cool-down while it is open. The claim never steps over it.
  const [row] = await sql`
    WITH n AS (
      INSERT INTO ${s}.notifications (id, kind, payload, idempotency_key, traceparent, tracestate)
      VALUES (${notificationId}, ${notification.kind}, ${notification.payloadJson}::text::jsonb,
              ${notification.idempotencyKey}, ${trace?.traceparent ?? null},
              ${trace?.tracestate ?? null})
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING id
    ), x AS (
      SELECT x.*, coalesce(x.deliver_at, now()) AS due, d.state, d.open_until
      FROM json_to_recordset(${JSON.stringify(rows)}::text::json) AS x(
        route_id uuid, notification_id uuid, seq int, channel text, destination text,
        destination_key text, max_attempts int, priority int, deliver_at timestamptz)
      LEFT JOIN ${s}.destinations d ON d.channel = x.channel AND d.key = x.destination_key
      WHERE EXISTS (SELECT FROM n)
    ), inserted AS (
      INSERT INTO ${s}.notification_routes
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
      INSERT INTO ${s}.destinations (channel, key)
      SELECT DISTINCT channel, destination_key FROM x WHERE state IS NULL
      ON CONFLICT DO NOTHING
    )
    SELECT EXISTS (SELECT FROM n) AS inserted,
           (SELECT count(pg_notify(${wakeChannel(schema)}, ''))
            FROM (SELECT 1 FROM x WHERE due <= clock_timestamp()
                    AND coalesce(state, 'closed') = 'closed' LIMIT 1) due) AS woke,
           -- A repeated key: the first one's ids (found here when it committed
           -- before this statement began; else read below, on a new snapshot).
           (SELECT json_build_object('id', e.id, 'route_ids', (
              SELECT coalesce(json_agg(r.route_id ORDER BY r.created_at, r.seq), '[]')
              FROM ${s}.notification_routes r WHERE r.notification_id = e.id))
            FROM ${s}.notifications e
            WHERE NOT EXISTS (SELECT FROM n)
              AND e.idempotency_key = ${notification.idempotencyKey}) AS existing`;
  if (row?.["inserted"]) {
    return { notificationId, routeIds: rows.map((r) => r.route_id), duplicate: false };
  }
  const existing = (row?.["existing"] ?? await firstOfKey(sql, schema, notification)) as
    | { id: string; route_ids: string[] }
    | undefined;
  if (!existing) {
    throw new HeraldError("HERALD_STORE", "idempotency key conflict, but no row found");
  }
  return { notificationId: existing.id, routeIds: existing.route_ids, duplicate: true };
}

/** The notification that holds `notification`'s idempotency key, and its routes' ids. */
async function firstOfKey(
  sql: postgres.Sql | postgres.TransactionSql,
  schema: string,
  notification: ReturnType<typeof checkEnqueue>["notification"],
): Promise<{ id: string; route_ids: string[] } | undefined> {
  const [row] = await sql`
    SELECT n.id, coalesce(json_agg(r.route_id ORDER BY r.created_at, r.seq)
             FILTER (WHERE r.route_id IS NOT NULL), '[]') AS route_ids
    FROM ${sql(schema)}.notifications n
    LEFT JOIN ${sql(schema)}.notification_routes r ON r.notification_id = n.id
    WHERE n.idempotency_key = ${notification.idempotencyKey}
    GROUP BY n.id`;
  return row ? { id: row["id"], route_ids: row["route_ids"] } : undefined;
}
