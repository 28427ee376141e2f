/**
 * The operator's tools on a real database: stats, listing, retry, cancel, prune.
 * `stats` on a large table: stats_large_test.ts.
 */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { Outcome } from "../../core/route.ts";
import { freshStore } from "../_helpers/pg.ts";
import { seedOutcomes } from "../_helpers/seed.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

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

  const seed = (outcomes: (Outcome | null)[], channel = "webhook", host?: string) =>
    seedOutcomes(env.store, outcomes, { channel, ...(host ? { host } : {}) });
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

  it("retry keeps a held destination's routes held: parked while paused, due on resume", async () => {
    const [a, b] = await seed([failed, failed], "webhook", "held.example");
    const [other] = await seed([failed], "webhook", "fine.example");
    await env.store.setDestinationState("webhook", "https://held.example", "pause");
    assert.equal((await env.store.retry({ ids: [a!] })).changed, 1);
    assert.equal((await env.store.retry({ failed: true })).changed, 2);
    for (const id of [a!, b!]) {
      const route = await env.store.getRoute(id);
      assert.equal(route?.status, "queued");
      // Parked at the end of the queue, not due now: claims never step over them.
      assert.ok(route!.nextAttemptAt.getTime() > Date.now() + 365 * 86_400_000, id);
    }
    assert.ok((await env.store.getRoute(other!))!.nextAttemptAt.getTime() <= Date.now() + 60_000);
    await env.store.setDestinationState("webhook", "https://held.example", "resume");
    for (const id of [a!, b!]) {
      const due = (await env.store.getRoute(id))!.nextAttemptAt.getTime();
      assert.ok(due <= Date.now() + 60_000, `${id} due again on resume`);
    }
  });

  it("retry holds a disabled destination's routes, and an open one's until its cool-down ends", async () => {
    const { sql, schema } = env;
    const [d] = await seed([failed], "webhook", "disabled.example");
    const [o] = await seed([failed], "webhook", "open.example");
    const [h] = await seed([failed], "webhook", "half-open.example");
    await env.store.setDestinationState("webhook", "https://disabled.example", "disable");
    const openFor = async (key: string, interval: string) =>
      await sql`UPDATE ${sql(schema)}.destinations SET state = 'open',
                  open_until = now() + ${interval}::interval WHERE key = ${key}`;
    await openFor("https://open.example", "1 hour");
    await openFor("https://half-open.example", "-1 minute"); // its cool-down over
    assert.equal((await env.store.retry({ ids: [d!, o!, h!] })).changed, 3);
    const rows = await sql`
      SELECT destination_key AS key, extract(epoch FROM next_attempt_at - now())::float8 AS wait,
             held_from IS NOT NULL AS held
      FROM ${sql(schema)}.notification_routes WHERE route_id IN ${sql([d!, o!, h!])}`;
    const by = new Map(rows.map((r) => [r["key"] as string, r]));
    const wait = (key: string) => by.get(key)!["wait"] as number;
    assert.ok(wait("https://disabled.example") > 365 * 86_400, "disabled: held far ahead");
    assert.equal(by.get("https://disabled.example")!["held"], true);
    assert.equal(by.get("https://open.example")!["held"], true, "open: held, its due time kept");
    const open = wait("https://open.example");
    assert.ok(
      open > 0 && open <= 3_600,
      `open: until its cool-down ends, within the hour (${open})`,
    );
    assert.equal(by.get("https://half-open.example")!["held"], false, "cool-down over: due now");
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
