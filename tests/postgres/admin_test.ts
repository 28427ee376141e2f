/** The operator's tools on a real database: stats, listing, retry, cancel, prune. */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { Outcome } from "../../core/route.ts";
import postgres from "postgres";
import { PostgresStore } from "../../store.ts";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { seedBacklog, seedOutcomes } from "../_helpers/seed.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { EXACT_QUEUED_ROUTES, EXACT_STATS_ROWS, planSettings } from "../../postgres/_stats.ts";
import { TROUBLED_COUNT_CAP } from "../../core/operator.ts";

checkLeaks();

describe("PostgresStore operator tools", () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  before(async () => {
    env = await freshStore();
    await env.store.migrate();
  });
  beforeEach(async () => {
    await env.sql`DELETE FROM ${env.sql(env.schema)}.notifications`;
  });
  after(async () => {
    await env.cleanup();
  });

  const seed = (outcomes: (Outcome | null)[], channel = "webhook") =>
    seedOutcomes(env.store, outcomes, { channel });
  const sent: Outcome = { status: "sent", attempts: 1 };
  const failed: Outcome = { status: "failed", attempts: 3, error: "HTTP 404" };
  const later: Outcome = { status: "retry", attempts: 1, delayMs: 3_600_000, error: "HTTP 503" };

  it("stats counts by status and channel, oldest due age and last hour's failures", async () => {
    await seed([sent, sent, failed, later, null]);
    await seed([null], "slack");
    const st = await env.store.stats();
    assert.deepEqual(st.byStatus, { queued: 3, sent: 2, failed: 1, cancelled: 0, poisoned: 0 });
    assert.deepEqual(
      st.byChannel.map((c) => `${c.channel}/${c.status}=${c.count}`),
      ["slack/queued=1", "webhook/failed=1", "webhook/queued=2", "webhook/sent=2"],
    );
    assert.equal(st.failedLastHour, 1);
    assert.ok(st.oldestDueAgeMs !== null && st.oldestDueAgeMs >= 0);
    // Per channel, only channels with a due route: the webhook retry is an hour away.
    assert.deepEqual(st.oldestDueByChannel.map((d) => d.channel), ["slack", "webhook"]);
    assert.equal(
      st.oldestDueAgeMs,
      Math.max(...st.oldestDueByChannel.map((d) => d.ageMs)),
      "the overall age is the oldest channel's",
    );
  });

  it("stats gives each channel's oldest due route, a quiet one's behind a busy one's backlog", async () => {
    const s = env.sql(env.schema);
    await env.sql`INSERT INTO ${s}.notifications (id, kind) VALUES (gen_random_uuid(), 'k')`;
    // Ages in minutes: sms's backlog at priority 0 (1-10), its oldest at
    // priority 1 (20); push's at priority 2 (5) behind all of sms's; routes
    // not due (later, or held back with their own due time long past) and
    // email, with nothing due, count for nothing.
    const route = (channel: string, priority: number, age: number, held: number | null = null) => ({
      channel,
      priority,
      age,
      held,
    });
    const routes = [
      ...Array.from({ length: 500 }, (_, i) => route("sms", 0, 10 - (i % 10))),
      route("sms", 1, 20),
      route("sms", 0, -60),
      route("push", 0, 0.5),
      route("push", 2, 5),
      route("push", 0, -60 * 24 * 365, 60),
      route("email", 0, -60),
    ];
    await env.sql`
      INSERT INTO ${s}.notification_routes
        (route_id, notification_id, channel, destination, priority, next_attempt_at, held_from)
      SELECT gen_random_uuid(), n.id, r.channel, 'x', r.priority,
             now() - r.age * interval '1 minute', now() - r.held * interval '1 minute'
      FROM ${s}.notifications n, json_to_recordset(${JSON.stringify(routes)}::text::json)
        AS r(channel text, priority int, age float8, held float8)`;
    const st = await env.store.stats();
    const minutes = st.oldestDueByChannel.map((d) => [d.channel, d.ageMs / 60_000] as const);
    assert.deepEqual(minutes.map(([c]) => c), ["push", "sms"]);
    // Read after the rows were written, so never younger; a minute's slack above.
    for (const [i, expected] of [5, 20].entries()) {
      const [channel, age] = minutes[i]!;
      assert.ok(age >= expected && age < expected + 1, `${channel}: ${age} min, not ${expected}`);
    }
    assert.equal(st.oldestDueAgeMs, st.oldestDueByChannel[1]!.ageMs);
  });

  it("stats on an empty table has no oldest due age", async () => {
    const st = await env.store.stats();
    assert.equal(st.oldestDueAgeMs, null);
    assert.deepEqual(st.byStatus, { queued: 0, sent: 0, failed: 0, cancelled: 0, poisoned: 0 });
    assert.deepEqual(st.oldestDueByChannel, []);
  });

  it("listRoutes filters by status and channel, last changed first, with a limit", async () => {
    const [first] = await seed([failed]);
    const [second, sentOne] = await seed([failed, sent]);
    const [slack] = await seed([failed], "slack");
    const failedWebhooks = await env.store.listRoutes({ status: "failed", channel: "webhook" });
    assert.deepEqual(failedWebhooks.map((r) => r.id), [second, first]);
    assert.equal((await env.store.listRoutes({ status: "sent" }))[0]?.id, sentOne);
    assert.deepEqual((await env.store.listRoutes({ limit: 1 })).map((r) => r.id), [slack]);
    await assert.rejects(env.store.listRoutes({ limit: 0 }), InvalidArgumentError);
  });

  it("retry by id requeues failed routes with a fresh budget, refuses sent ones unless forced", async () => {
    const [f, s] = await seed([failed, sent]);
    const unknown = crypto.randomUUID();
    const res = await env.store.retry({ ids: [f!, s!, unknown] });
    assert.deepEqual(res, { changed: 1, skipped: 0, notFound: [unknown], refusedSent: 1 });
    const route = await env.store.getRoute(f!);
    assert.deepEqual([route?.status, route?.attempts, route?.lastError], ["queued", 0, null]);
    assert.equal((await env.store.getRoute(s!))?.status, "sent");
    const forced = await env.store.retry({ ids: [s!] }, { force: true });
    assert.equal(forced.changed, 1);
    assert.equal((await env.store.getRoute(s!))?.status, "queued");
  });

  it("retry --failed selects by channel and time", async () => {
    const [w] = await seed([failed]);
    const [sl] = await seed([failed], "slack");
    assert.equal((await env.store.retry({ failed: true, channel: "slack" })).changed, 1);
    assert.equal((await env.store.getRoute(sl!))?.status, "queued");
    assert.equal((await env.store.getRoute(w!))?.status, "failed");
    const future = new Date(Date.now() + 60_000);
    assert.equal((await env.store.retry({ failed: true, since: future })).changed, 0);
    assert.equal((await env.store.retry({ failed: true })).changed, 1);
  });

  it("cancel cancels queued routes only and skips one a worker holds", async () => {
    const [q, s, held] = await seed([null, sent, null]);
    await env.store.transaction(async (tx) => {
      const claimed = await tx.claimDue({ limit: 1, exclude: [q!] });
      assert.equal(claimed[0]?.id, held);
      const res = await env.store.cancel([q!, s!, held!]);
      assert.deepEqual(res, { changed: 1, skipped: 2, notFound: [], refusedSent: 0 });
    });
    assert.equal((await env.store.getRoute(q!))?.status, "cancelled");
    assert.equal((await env.store.getRoute(held!))?.status, "queued");
    await assert.rejects(env.store.cancel(["not-a-uuid"]), /routeIds/);
  });

  it("prune deletes old finished routes in batches and leaves due routes untouched", async () => {
    const ids = await seed([sent, sent, sent, failed, later, null]);
    const [fresh] = await seed([sent]);
    await env.sql`
      UPDATE ${env.sql(env.schema)}.notification_routes
      SET updated_at = now() - interval '2 days', created_at = now() - interval '2 days'
      WHERE route_id = ANY(${ids}::uuid[])`;
    const progress: number[] = [];
    const deleted = await env.store.prune({
      olderThanMs: 86_400_000,
      batchSize: 2,
      onProgress: (n) => progress.push(n),
    });
    assert.equal(deleted, 4);
    assert.deepEqual(progress, [2, 3, 4], "sent in two batches, then failed");
    assert.equal(await env.store.getRoute(ids[0]!), undefined);
    assert.equal((await env.store.getRoute(ids[4]!))?.status, "queued", "retrying route kept");
    assert.equal((await env.store.getRoute(ids[5]!))?.status, "queued", "due route kept");
    assert.equal((await env.store.getRoute(fresh!))?.status, "sent", "recent route kept");
    assert.deepEqual(await env.store.attempts(ids[0]!), [], "its attempt log went with it");
    await assert.rejects(
      env.store.prune({ olderThanMs: 0, statuses: ["queued" as never] }),
      /'statuses'/,
    );
  });
});

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
