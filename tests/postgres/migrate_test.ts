/**
 * Upgrades: a schema written by an older Herald, with routes in it, migrated
 * to this one. Schema 6 numbers the queued routes in their enqueue order, so
 * the claim keeps FIFO across the upgrade; history stays as it was.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostgresStore, SCHEMA_VERSION } from "../../store.ts";
import { migrate } from "../../postgres/_migrations.ts";
import { testSql, uniqueSchema } from "../_helpers/pg.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("migrating from schema 5 to 6", () => {
  it("numbers queued routes in enqueue order, leaves history alone, and new routes follow", async () => {
    const sql = testSql();
    const schema = uniqueSchema();
    const store = new PostgresStore({ sql, schema });
    try {
      assert.equal(await migrate(sql, schema, 5), 5);
      const s = sql(schema);
      // As Herald 5 wrote them: three queued routes enqueued one after another
      // (inserted out of that order here) with one due time, and a sent one.
      await sql`
        INSERT INTO ${s}.notifications (id, kind, created_at)
        SELECT ('00000000-0000-4000-8000-00000000000' || n)::uuid, 'k',
               '2026-01-01T00:00:00Z'::timestamptz + n * interval '1 second'
        FROM generate_series(1, 4) AS n`;
      await sql`
        INSERT INTO ${s}.notification_routes
          (route_id, notification_id, channel, destination, destination_key, status,
           next_attempt_at, created_at)
        SELECT ('10000000-0000-4000-8000-00000000000' || n)::uuid,
               ('00000000-0000-4000-8000-00000000000' || n)::uuid, 'log', 'x', '*',
               CASE WHEN n = 4 THEN 'sent' ELSE 'queued' END, '2026-01-01T00:00:00Z',
               '2026-01-01T00:00:00Z'::timestamptz + n * interval '1 second'
        FROM unnest(ARRAY[3, 1, 4, 2]) AS n`;
      assert.equal(await store.migrate(), SCHEMA_VERSION);
      const rows = await sql`
        SELECT right(route_id::text, 1) AS n, queue_order::int AS q
        FROM ${s}.notification_routes ORDER BY route_id`;
      assert.deepEqual(
        rows.map((r) => [r["n"], r["q"]]),
        [["1", 1], ["2", 2], ["3", 3], ["4", null]],
      );
      const { routeIds: [fifth] } = await store.enqueue({ kind: "k" }, [
        { channel: "log", destination: "y", deliverAt: new Date("2026-01-01T00:00:00Z") },
      ]);
      const claimed = await store.transaction((tx) => tx.claimDue({ limit: 10, exclude: [] }));
      assert.deepEqual(claimed.map((r) => r.id), [
        "10000000-0000-4000-8000-000000000001",
        "10000000-0000-4000-8000-000000000002",
        "10000000-0000-4000-8000-000000000003",
        fifth,
      ]);
    } finally {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await store.close();
      await sql.end();
    }
  });
});
