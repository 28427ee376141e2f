/**
 * `stats` on a large table: exact where it counts the queue, estimated from the
 * planner's statistics past the caps, and a few index pages per channel
 * however long the backlog. The operator's other tools: admin_test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { PostgresStore } from "../../store.ts";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { seedBacklog } from "../_helpers/seed.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { EXACT_QUEUED_ROUTES, EXACT_STATS_ROWS, planSettings } from "../../postgres/_stats.ts";
import { TROUBLED_COUNT_CAP } from "../../core/operator.ts";

checkLeaks();

describe("PostgresStore stats on a large table", () => {
  it("counts the queue exactly and estimates the history from the planner's statistics", async () => {
    const env = await freshStore();
    try {
      await env.store.migrate();
      const s = env.sql(env.schema);
      const history = EXACT_STATS_ROWS + 20_000;
      await env.sql`
        INSERT INTO ${s}.notifications (id, kind)
        SELECT gen_random_uuid(), 'k' FROM generate_series(1, ${history + 4}::int)`;
      // The history, then three queued routes and one poisoned, all on one channel.
      await env.sql`
        INSERT INTO ${s}.notification_routes (route_id, notification_id, channel, destination, status)
        SELECT gen_random_uuid(), id, 'sms',  '+15550100',
               CASE WHEN row_number() OVER () <= 3 THEN 'queued'
                    WHEN row_number() OVER () = 4 THEN 'poisoned' ELSE 'sent' END
        FROM ${s}.notifications`;
      await env.sql.unsafe(`ANALYZE "${env.schema}".notification_routes`);
      const st = await env.store.stats();
      assert.deepEqual(st.estimated, ["sent", "failed", "cancelled"]);
      assert.equal(st.byStatus.queued, 3, "the queue is exact");
      assert.equal(st.byStatus.poisoned, 1, "so are poisoned routes");
      assert.ok(
        Math.abs(st.byStatus.sent - history) < history * 0.05,
        `sent estimated at ${st.byStatus.sent} for ${history}`,
      );
      assert.deepEqual(
        st.byChannel.map((c) => [c.channel, c.status, c.count]),
        [["sms", "poisoned", 1], ["sms", "queued", 3]],
        "per channel, only what is exact",
      );
    } finally {
      await env.cleanup();
    }
  });

  it("past the exact cap, estimates a long channel's queue, never below the cap; short ones stay exact", async () => {
    const env = await freshStore();
    try {
      await env.store.migrate();
      const s = env.sql(env.schema);
      // Three channels, interleaved as they were enqueued: sms and push past
      // the per-channel cap, email short of it; and history to make the table large.
      const email = 3_000;
      const long = EXACT_QUEUED_ROUTES + 12_000;
      const queued = email + 2 * long;
      const total = EXACT_STATS_ROWS + 40_000;
      // No statistics until the test takes them: autoanalyze (where autovacuum
      // is on) could take them at any moment after the inserts.
      await env.sql.unsafe(
        `ALTER TABLE "${env.schema}".notification_routes SET (autovacuum_enabled = off)`,
      );
      await env.sql`
        INSERT INTO ${s}.notifications (id, kind)
        SELECT gen_random_uuid(), 'k' FROM generate_series(1, ${total}::int)`;
      await env.sql`
        INSERT INTO ${s}.notification_routes (route_id, notification_id, channel, destination, status)
        SELECT gen_random_uuid(), id,
               CASE WHEN n <= ${3 * email} AND n % 3 = 0 THEN 'email'
                    WHEN n % 2 = 0 THEN 'sms' ELSE 'push' END, 'x',
               CASE WHEN n <= ${queued} THEN 'queued' ELSE 'sent' END
        FROM (SELECT id, row_number() OVER () AS n FROM ${s}.notifications) x`;
      const counted = await env.sql`
        SELECT channel, count(*)::int AS n FROM ${s}.notification_routes
        WHERE status = 'queued' GROUP BY channel`;
      const actual = Object.fromEntries(counted.map((r) => [r["channel"], r["n"]]));
      const before = await env.store.stats();
      assert.deepEqual(before.estimated, [], "no statistics yet: every status counted");
      assert.equal(before.byStatus.queued, queued);
      // Vacuumed too: with the visibility map set the planner may read queued
      // routes from any index, and the counts must not depend on which.
      await env.sql.unsafe(`VACUUM ANALYZE "${env.schema}".notification_routes`);
      const st = await env.store.stats();
      assert.ok(st.estimated?.includes("queued"), `estimated: ${st.estimated}`);
      assert.ok(
        Math.abs(st.byStatus.queued - queued) < queued * 0.05,
        `queued estimated at ${st.byStatus.queued} for ${queued}`,
      );
      const of = (channel: string): number =>
        st.byChannel.find((c) => c.channel === channel && c.status === "queued")!.count;
      assert.equal(of("email"), actual["email"], "a channel under the cap is counted exactly");
      for (const channel of ["sms", "push"]) {
        assert.ok(of(channel) > EXACT_QUEUED_ROUTES, `${channel}: never below the cap`);
        assert.ok(
          Math.abs(of(channel) - actual[channel]) < actual[channel] * 0.1,
          `${channel} estimated at ${of(channel)} for ${actual[channel]}`,
        );
      }
      assert.equal(
        st.byChannel.filter((c) => c.status === "queued").reduce((n, c) => n + c.count, 0),
        st.byStatus.queued,
        "the channels add up to the total",
      );
    } finally {
      await env.cleanup();
    }
  });

  it("finds each channel's oldest due route in a few index pages, however long the backlog", async () => {
    const env = await freshStore();
    const sent: { text: string; params: unknown[] }[] = [];
    const sql = postgres(DATABASE_URL, {
      max: 1,
      onnotice: () => {},
      debug: (_connection, text, params) => void sent.push({ text, params: [...params] }),
    });
    const store = new PostgresStore({ sql, schema: env.schema });
    try {
      await env.store.migrate();
      const s = env.sql(env.schema);
      // 20,000 sms routes due, then one push route behind all of them.
      await env.sql`
        WITH n AS (
          INSERT INTO ${s}.notifications (id, kind)
          SELECT gen_random_uuid(), 'k' FROM generate_series(1, 20001) RETURNING id)
        INSERT INTO ${s}.notification_routes (route_id, notification_id, channel, destination,
          next_attempt_at)
        SELECT gen_random_uuid(), id, CASE WHEN i = 20001 THEN 'push' ELSE 'sms' END, 'x',
               now() - interval '1 hour' + i * interval '1 millisecond'
        FROM (SELECT id, row_number() OVER () AS i FROM n) x`;
      await env.sql.unsafe(`VACUUM ANALYZE "${env.schema}".notification_routes`);
      const st = await store.stats();
      assert.deepEqual(st.oldestDueByChannel.map((d) => d.channel), ["push", "sms"]);
      // The statement stats() sent for the ages, run again under EXPLAIN.
      const ages = sent.find((q) => q.text.includes("channels AS (") && q.text.includes("f.at"));
      assert.ok(ages, "the oldest-due statement was sent");
      // Under the settings stats() runs it with, so the plan is the one it got.
      const [row] = await sql.begin(async (tx) => {
        await planSettings(tx);
        return await tx.unsafe(
          `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${ages.text}`,
          ages.params as postgres.ParameterOrJSON<never>[],
        );
      });
      const [{ Plan: plan }] = row!["QUERY PLAN"] as [{ Plan: Record<string, number> }];
      const buffers = plan["Shared Hit Blocks"]! + plan["Shared Read Blocks"]!;
      // Reading the 20,000 due routes' index entries alone takes over 50 pages.
      assert.ok(buffers <= 40, `${buffers} buffers`);
    } finally {
      await store.close();
      await sql.end({ timeout: 5 });
      await env.cleanup();
    }
  });

  it("counts a troubled destination's queue up to the cap, and says so past it", async () => {
    const env = await freshStore();
    try {
      await env.store.migrate();
      await seedBacklog(env.sql, env.schema, TROUBLED_COUNT_CAP + 5);
      const st = await env.store.stats();
      const troubled = st.destinations!.troubled.map((t) => [t.key, t.queued, t.capped]);
      assert.deepEqual(troubled, [
        ["https://down.example", TROUBLED_COUNT_CAP + 1, true],
        ["https://flaky.example", 3, undefined],
      ]);
    } finally {
      await env.cleanup();
    }
  });

  it("counts a rate-limited destination's deferred routes at each priority's due end", async () => {
    const env = await freshStore();
    try {
      await env.store.migrate();
      const s = env.sql(env.schema);
      // Closed, its limiter's schedule a minute ahead: due routes wait. More
      // routes than the cap at priority 0, none of them due, then 5 due at
      // priority 1 and a held one: the deferred are the 5.
      await env.sql`
        INSERT INTO ${s}.destinations (channel, key, tat, rate_per_sec)
        VALUES ('webhook', 'https://slow.example', now() + interval '1 minute', 1)`;
      await env.sql`
        WITH n AS (
          INSERT INTO ${s}.notifications (id, kind)
          SELECT gen_random_uuid(), 'k' FROM generate_series(1, ${TROUBLED_COUNT_CAP + 7}::int)
          RETURNING id)
        INSERT INTO ${s}.notification_routes (route_id, notification_id, channel, destination,
          destination_key, priority, next_attempt_at, held_from)
        SELECT gen_random_uuid(), id, 'webhook', 'https://slow.example/hook',
               'https://slow.example', CASE WHEN i <= ${TROUBLED_COUNT_CAP + 1} THEN 0 ELSE 1 END,
               now() + CASE WHEN i <= ${TROUBLED_COUNT_CAP + 1} THEN interval '1 hour'
                            WHEN i = ${TROUBLED_COUNT_CAP + 7} THEN interval '1 year'
                            ELSE -interval '1 minute' END,
               CASE WHEN i = ${TROUBLED_COUNT_CAP + 7} THEN now() - interval '1 minute' END
        FROM (SELECT id, row_number() OVER () AS i FROM n) x`;
      const st = await env.store.stats();
      assert.deepEqual(
        st.destinations!.troubled.map((t) => [t.key, t.queued, t.deferred, t.capped]),
        [["https://slow.example", TROUBLED_COUNT_CAP + 1, 5, true]],
      );
      assert.equal(st.destinations!.deferredByLimit, 5);
    } finally {
      await env.cleanup();
    }
  });

  it("is exact below the threshold", async () => {
    const env = await freshStore();
    try {
      await env.store.migrate();
      await env.store.enqueue({ kind: "k" }, [{ channel: "sms", destination: "+15550100" }]);
      await env.sql.unsafe(`ANALYZE "${env.schema}".notification_routes`);
      const st = await env.store.stats();
      assert.deepEqual(st.estimated, []);
      assert.equal(st.byStatus.queued, 1);
    } finally {
      await env.cleanup();
    }
  });
});
