/**
 * Database fixtures for the hostile-input tests: a seeded schema and a
 * checksum of every row of Herald's three tables, so a test can prove that a
 * refused input changed nothing (and that a refused route changed nothing but
 * itself).
 */
import type postgres from "postgres";
import type { PostgresStore } from "../../store.ts";
import { Worker } from "../../worker.ts";
import { silentLogger } from "../../observe/logger.ts";
import { logChannel } from "../../channels/log.ts";

/** What is left out of a checksum: the rows of these notifications and their routes. */
export interface ChecksumExclusion {
  readonly notificationIds?: readonly string[];
}

/**
 * One md5 per table over every row's text, in a fixed order. Rows of the
 * excluded notifications (and their routes and attempts) are left out.
 */
export async function checksum(
  sql: postgres.Sql,
  schema: string,
  exclude: ChecksumExclusion = {},
): Promise<string> {
  const s = sql(schema);
  const ids = `{${(exclude.notificationIds ?? []).join(",")}}`;
  const [row] = await sql`
    SELECT
      (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), ''))
         FROM ${s}.notifications t WHERE t.id <> ALL(${ids}::uuid[])) AS n,
      (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.route_id), ''))
         FROM ${s}.notification_routes t WHERE t.notification_id <> ALL(${ids}::uuid[])) AS r,
      (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), ''))
         FROM ${s}.route_attempts t JOIN ${s}.notification_routes x USING (route_id)
         WHERE x.notification_id <> ALL(${ids}::uuid[])) AS a,
      (SELECT count(*)::int FROM ${s}.notifications) AS notifications,
      (SELECT count(*)::int FROM ${s}.notification_routes) AS routes,
      (SELECT count(*)::int FROM ${s}.route_attempts) AS attempts`;
  if (!row) throw new Error("checksum query returned nothing");
  const counts = exclude.notificationIds?.length
    ? ""
    : ` ${row["notifications"]}/${row["routes"]}/${row["attempts"]}`;
  return `${row["n"]}:${row["r"]}:${row["a"]}${counts}`;
}

/**
 * Seeds a migrated store with rows in every state: sent (with attempts), a
 * payload of awkward-but-legal text, a cancelled route and one queued for
 * next year. None of them is due, so a worker tick later only touches the
 * rows a test adds.
 */
export async function seed(store: PostgresStore, sql: postgres.Sql): Promise<void> {
  await store.enqueue({ kind: "seed.sent", payload: { n: 1, text: "héllo ✓ 'quoted' \"x\"" } }, [
    { channel: "log", destination: "ops" },
    { channel: "log", destination: "audit", priority: -3 },
  ]);
  await store.enqueue(
    { kind: "seed.sql'); DROP TABLE x; --", payload: ["a", { b: null }], idempotencyKey: "seed-1" },
    [{ channel: "log", destination: "sql-ish ' OR 1=1 --" }],
  );
  const worker = new Worker({
    store,
    channels: { log: logChannel({ write: () => {} }) },
    logger: silentLogger,
  });
  while (await worker.tick() > 0) { /* drain */ }
  const later = new Date(Date.now() + 365 * 86_400_000);
  const { routeIds } = await store.enqueue({ kind: "seed.later" }, [
    { channel: "webhook", destination: "https://hooks.example.com/later", deliverAt: later },
    { channel: "log", destination: "to-cancel", deliverAt: later },
  ]);
  await store.cancel([routeIds[1]!]);
  // A failed route with an attempt, written directly (no channel needed).
  const { routeIds: [failed] } = await store.enqueue({ kind: "seed.failed" }, [
    { channel: "log", destination: "will-fail", deliverAt: later },
  ]);
  await sql`UPDATE ${sql(store.schema)}.notification_routes
            SET status = 'failed', attempts = 1, last_error = 'seeded failure'
            WHERE route_id = ${failed!}`;
}
