/**
 * Upgrades: a schema written by an older Herald, with routes in it, migrated
 * to this one. Schema 6 numbers the queued routes in their enqueue order, so
 * the claim keeps FIFO across the upgrade; history stays as it was. Schema 8
 * gives every queued route a place (the claim starts its scan at the first
 * route's), and a retry numbers history written before 6. Schema 9 has
 * autovacuum clean the attempt log and the notifications after a prune.
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

describe("migrating from schema 7 to 8", () => {
  it("numbers a queued route left without a place, refuses new ones, and a retry numbers old history", async () => {
    const sql = testSql();
    const schema = uniqueSchema();
    const store = new PostgresStore({ sql, schema });
    try {
      assert.equal(await migrate(sql, schema, 7), 7);
      const s = sql(schema);
      await sql`
        INSERT INTO ${s}.notifications (id, kind)
        SELECT ('00000000-0000-4000-8000-00000000000' || n)::uuid, 'k' FROM generate_series(1, 3) AS n`;
      // Route 1: queued without a place, as a schema-7 retry of history from
      // before schema 6 left it; route 2: such history, failed; route 3: numbered.
      await sql`
        INSERT INTO ${s}.notification_routes
          (route_id, notification_id, channel, destination, destination_key, status,
           next_attempt_at, queue_order)
        VALUES
          ('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000001',
           'log', 'x', '*', 'queued', '2026-01-01T00:00:00Z', NULL),
          ('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000002',
           'log', 'x', '*', 'failed', '2026-01-01T00:00:00Z', NULL),
          ('10000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000003',
           'log', 'x', '*', 'queued', '2026-01-01T00:00:00Z', 1)`;
      assert.equal(await store.migrate(), SCHEMA_VERSION);
      const [numbered] = await sql`
        SELECT queue_order FROM ${s}.notification_routes
        WHERE route_id = '10000000-0000-4000-8000-000000000001'`;
      assert.notEqual(numbered?.["queue_order"], null);
      await assert.rejects(
        sql`UPDATE ${s}.notification_routes SET queue_order = NULL
            WHERE route_id = '10000000-0000-4000-8000-000000000003'`,
        (err: { constraint_name?: string }) =>
          err.constraint_name === "notification_routes_queued_in_order",
      );
      const retried = await store.retry({ ids: ["10000000-0000-4000-8000-000000000002"] });
      assert.equal(retried.changed, 1);
      const claimed = await store.transaction((tx) => tx.claimDue({ limit: 10, exclude: [] }));
      assert.deepEqual(claimed.map((r) => r.id).sort(), [
        "10000000-0000-4000-8000-000000000001",
        "10000000-0000-4000-8000-000000000002",
        "10000000-0000-4000-8000-000000000003",
      ]);
    } finally {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await store.close();
      await sql.end();
    }
  });
});

describe("migrating to schema 9", () => {
  it("asks autovacuum to clean the attempt log and the notifications after each day's prune", async () => {
    const sql = testSql();
    const schema = uniqueSchema();
    try {
      assert.equal(await migrate(sql, schema, 8), 8);
      assert.equal(await migrate(sql, schema), SCHEMA_VERSION);
      const rows = await sql`
        SELECT c.relname, c.reloptions, t.reloptions AS toast FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE n.nspname = ${schema} AND c.relname IN ('route_attempts', 'notifications')
        ORDER BY c.relname`;
      assert.deepEqual(rows.map((r) => r["toast"]), [
        ["autovacuum_vacuum_scale_factor=0.02", "autovacuum_vacuum_threshold=1000"],
        ["autovacuum_vacuum_scale_factor=0.02", "autovacuum_vacuum_threshold=1000"],
      ], "their TOAST tables too");
      assert.deepEqual(rows.map((r) => [r["relname"], r["reloptions"]]), [
        ["notifications", [
          "autovacuum_vacuum_scale_factor=0.02",
          "autovacuum_vacuum_threshold=1000",
        ]],
        ["route_attempts", [
          "autovacuum_vacuum_scale_factor=0.02",
          "autovacuum_vacuum_threshold=1000",
        ]],
      ]);
    } finally {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end();
    }
  });
});
