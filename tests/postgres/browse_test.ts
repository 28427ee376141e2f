/** Browsing on a real database: route pages by keyset, every filter, the activity series, a notification. */
import { beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { Outcome } from "../../core/route.ts";
import { useFreshStore } from "../_helpers/pg.ts";
import { seedOutcomes } from "../_helpers/seed.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("PostgresStore browsing", () => {
  const fresh = useFreshStore();
  let env: ReturnType<typeof fresh>;
  beforeEach(async () => {
    env = fresh();
    await env.sql`DELETE FROM ${env.sql(env.schema)}.notifications`;
  });

  const seed = (outcomes: (Outcome | null)[], options: { kind?: string; host?: string } = {}) =>
    seedOutcomes(env.store, outcomes, {
      host: "a.example",
      payload: { note: "<script>alert(1)</script>" },
      ...options,
    });
  const sent: Outcome = { status: "sent", attempts: 1 };
  const failed: Outcome = { status: "failed", attempts: 3, error: "HTTP 404" };

  it("pages with `after` walk every route once, last changed first", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(...await seed([i % 2 ? sent : null, failed]));
    const seen: string[] = [];
    let page = await env.store.listRoutes({ limit: 3 });
    while (page.length > 0) {
      seen.push(...page.map((r) => r.id));
      const last = page[page.length - 1]!;
      page = await env.store.listRoutes({ limit: 3, after: last });
    }
    assert.equal(seen.length, 14);
    assert.deepEqual([...seen].sort(), [...ids].sort(), "every route, none twice");
    const all = await env.store.listRoutes({ limit: 100 });
    assert.deepEqual(seen, all.map((r) => r.id), "pages in the one-page order");
    const times = all.map((r) => r.updatedAt.getTime());
    assert.deepEqual(times, [...times].sort((a, b) => b - a), "last changed first");
  });

  it("a page resumes without a gap when its last route changed since it was listed", async () => {
    // One enqueue: every route shares one updated_at, to the microsecond.
    const ids = await seed(Array(9).fill(null));
    const first = await env.store.listRoutes({ limit: 3 });
    const last = first[first.length - 1]!;
    await env.store.cancel([last.id]); // it moves to the top of the list
    const seen = new Set(first.map((r) => r.id));
    let page = await env.store.listRoutes({ limit: 3, after: last });
    while (page.length > 0) {
      for (const r of page) seen.add(r.id);
      page = await env.store.listRoutes({ limit: 3, after: page[page.length - 1]! });
    }
    assert.deepEqual([...seen].sort(), [...ids].sort(), "no route skipped");
  });

  it("filters by destination key, kind and time, alone and together", async () => {
    const [a] = await seed([failed], { host: "a.example", kind: "order.shipped" });
    const [b] = await seed([failed], { host: "b.example", kind: "order.shipped" });
    const [c] = await seed([sent], { host: "b.example", kind: "user.welcome" });
    const ids = async (filter: Parameters<typeof env.store.listRoutes>[0]) =>
      (await env.store.listRoutes(filter)).map((r) => r.id).sort();
    assert.deepEqual(await ids({ destination: "https://b.example" }), [b, c].sort());
    assert.deepEqual(await ids({ kind: "order.shipped" }), [a, b].sort());
    assert.deepEqual(
      await ids({ kind: "order.shipped", destination: "https://b.example", status: "failed" }),
      [b],
    );
    // Last changed three, two and one hours ago: the time filters see whole hours.
    await env.sql`
      UPDATE ${env.sql(env.schema)}.notification_routes SET updated_at = now() - CASE route_id
        WHEN ${a!}::uuid THEN interval '3 hours' WHEN ${b!}::uuid THEN interval '2 hours'
        ELSE interval '1 hour' END`;
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);
    assert.deepEqual(await ids({ since: hoursAgo(1.5) }), [c]);
    assert.deepEqual(await ids({ until: hoursAgo(1.5) }), [a, b].sort());
    assert.deepEqual(await ids({ since: hoursAgo(2.5), until: hoursAgo(1.5) }), [b]);
    assert.deepEqual(await ids({ kind: "nobody" }), []);
  });

  it("refuses malformed filters, naming the field", async () => {
    const bad: [string, object][] = [
      ["since", { since: new Date("nope") }],
      ["until", { until: "yesterday" }],
      ["kind", { kind: 3 }],
      ["after", { after: { updatedAt: new Date(), id: "x' OR 1=1" } }],
    ];
    for (const [field, filter] of bad) {
      await assert.rejects(
        env.store.listRoutes(filter),
        (e: unknown) => e instanceof InvalidArgumentError && e.field === field,
        field,
      );
    }
  });

  it("activity counts routes sent and failed per minute; a notification reads back as written", async () => {
    const [first] = await seed([sent, sent, failed, null]);
    const points = await env.store.activity(60);
    const total = points.reduce(
      (t, p) => ({ sent: t.sent + p.sent, failed: t.failed + p.failed }),
      {
        sent: 0,
        failed: 0,
      },
    );
    assert.deepEqual(total, { sent: 2, failed: 1 });
    await assert.rejects(env.store.activity(0), InvalidArgumentError);
    const route = await env.store.getRoute(first!);
    const note = await env.store.notification(route!.notificationId);
    assert.deepEqual(note?.payload, { note: "<script>alert(1)</script>" });
    assert.equal(note?.kind, "k");
    assert.equal(await env.store.notification("not-a-uuid"), undefined);
  });

  it("retry of failed routes can take one destination only", async () => {
    const [a] = await seed([failed], { host: "a.example" });
    const [b] = await seed([failed], { host: "b.example" });
    const dry = await env.store.retry(
      { failed: true, destination: "https://b.example" },
      { dryRun: true },
    );
    assert.equal(dry.changed, 1);
    const done = await env.store.retry({ failed: true, destination: "https://b.example" });
    assert.equal(done.changed, 1);
    assert.equal((await env.store.getRoute(b!))?.status, "queued");
    assert.equal((await env.store.getRoute(a!))?.status, "failed");
  });
});
