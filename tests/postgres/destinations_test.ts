/**
 * Destination isolation on a real database with real HTTP: a destination
 * that never answers, queued ahead of a healthy one, holds at most its
 * in-flight cap of the worker's loops (per-route mode) or of its
 * transactions (batch mode), so every healthy route goes while the dead
 * ones hang. The time this takes is the bench's figure
 * (bench/destinations.ts), not an assertion here.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "../../worker.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { silentLogger } from "../../observe/logger.ts";
import { freshStore } from "../_helpers/pg.ts";
import { startServer } from "../_helpers/http_server.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

async function scenario(
  { dead, healthy, routesPerTransaction }: {
    dead: number;
    healthy: number;
    routesPerTransaction: number;
  },
): Promise<{ deadRequests: number; healthySent: number }> {
  const env = await freshStore({ max: 6 });
  let healthySeen = 0;
  let allHealthy!: () => void;
  const done = new Promise<void>((r) => (allHealthy = r));
  const never = await startServer(() => {}); // answers nothing, ever
  const fine = await startServer((_req, res) => {
    res.writeHead(204).end();
    if (++healthySeen === healthy) allHealthy();
  });
  try {
    await env.store.migrate();
    const to = (url: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ channel: "webhook", destination: `${url}/r/${i}` }));
    await env.store.enqueue({ kind: "k" }, to(never.url, dead));
    await env.store.enqueue({ kind: "k" }, to(fine.url, healthy));
    const worker = new Worker({
      store: env.store,
      channels: { webhook: webhookChannel({ allowHosts: ["127.0.0.1"] }) },
      concurrency: 4,
      routesPerTransaction,
      sendTimeoutMs: 600_000,
      logger: silentLogger,
    });
    const running = worker.run();
    await done;
    const deadRequests = never.requests.length;
    await worker.shutdown({ timeoutMs: 0 });
    await running;
    return { deadRequests, healthySent: healthySeen };
  } finally {
    await never.close();
    await fine.close();
    await env.cleanup();
  }
}

describe("a destination that never answers, ahead of a healthy one", () => {
  it("per-route mode: it holds two of four loops at most; every healthy route is sent", async () => {
    const { deadRequests, healthySent } = await scenario({
      dead: 100,
      healthy: 20,
      routesPerTransaction: 1,
    });
    assert.equal(healthySent, 20);
    assert.ok(deadRequests <= 2, `${deadRequests} sends to the dead destination in flight`);
  });

  it("batch mode (20 per transaction): it holds two transactions at most; every healthy route is sent", async () => {
    const { deadRequests, healthySent } = await scenario({
      dead: 200,
      healthy: 20,
      routesPerTransaction: 20,
    });
    assert.equal(healthySent, 20);
    assert.ok(deadRequests <= 40, `${deadRequests} sends to the dead destination in flight`);
  });
});

describe("a destination answering 503 to everything", () => {
  it("opens after the threshold; stats and the operator views show it; nothing was charged since", async () => {
    const env = await freshStore({ max: 3 });
    const down = await startServer((_req, res) => void res.writeHead(503).end());
    try {
      await env.store.migrate();
      await env.store.enqueue(
        { kind: "k" },
        Array.from(
          { length: 50 },
          (_, i) => ({ channel: "webhook", destination: `${down.url}/r/${i}` }),
        ),
      );
      const worker = new Worker({
        store: env.store,
        channels: { webhook: webhookChannel({ allowHosts: ["127.0.0.1"] }) },
        destinations: { failureThreshold: 5, cooldownMs: 3_600_000 },
        logger: silentLogger,
      });
      await worker.tick();
      await worker.tick();
      assert.equal(down.requests.length, 5, "five failures, then nothing while it is open");
      const st = await env.store.stats();
      assert.equal(st.destinations?.byState.open, 1);
      assert.deepEqual(
        st.destinations?.troubled.map((t) => [t.key, t.state, t.consecutiveFailures, t.queued]),
        [[down.url, "open", 5, 50]],
      );
      const [row] = await env.sql`
        SELECT sum(attempts)::int AS spent FROM ${env.sql(env.schema)}.notification_routes`;
      assert.equal(row?.["spent"], 5, "only the five sends before it opened");
      const d = await env.store.destination("webhook", down.url);
      assert.equal(d?.state, "open");
      assert.equal(d?.attemptsLastHour, 5);
      assert.equal(d?.failuresLastHour, 5);
      assert.equal(d?.lastError?.includes("503"), true);
    } finally {
      await down.close();
      await env.cleanup();
    }
  });
});

describe("a destination held back by its rate limit", () => {
  it("shows its due routes as deferred in stats, the destination view and /metrics' source", async () => {
    const env = await freshStore({ max: 3 });
    const slow = await startServer((_req, res) => void res.writeHead(204).end());
    try {
      await env.store.migrate();
      await env.store.enqueue(
        { kind: "k" },
        [1, 2, 3, 4].map((n) => ({ channel: "webhook", destination: `${slow.url}/r/${n}` })),
      );
      // One send an hour: the first goes, the other three wait for the token.
      await env.store.configureDestination("webhook", slow.url, { ratePerSecond: 1 / 3600 });
      const worker = new Worker({
        store: env.store,
        channels: { webhook: webhookChannel({ allowHosts: ["127.0.0.1"] }) },
        logger: silentLogger,
      });
      await worker.tick();
      assert.equal(slow.requests.length, 1);
      const st = await env.store.stats();
      assert.equal(st.destinations?.deferredByLimit, 3);
      assert.deepEqual(
        st.destinations?.troubled.map((t) => [t.key, t.state, t.queued, t.deferred]),
        [[slow.url, "closed", 3, 3]],
      );
      assert.equal((await env.store.destination("webhook", slow.url))?.deferred, 3);
      // A new limit starts a new schedule: nothing waits until the next claim.
      await env.store.configureDestination("webhook", slow.url, { ratePerSecond: null });
      const after = await env.store.stats();
      assert.equal(after.destinations?.deferredByLimit, 0, "no limit, nothing deferred");
      assert.deepEqual(after.destinations?.troubled, []);
    } finally {
      await slow.close();
      await env.cleanup();
    }
  });
});

describe("a rate-limited destination's backlog ahead of the rest, in batch mode", () => {
  it("costs its one route per claim, and the routes behind it go in the same tick", async () => {
    const env = await freshStore({ max: 4 });
    try {
      await env.store.migrate();
      const slow = "https://slow.example";
      // One send an hour: a claim reads its queued routes, and gives one.
      await env.store.configureDestination("hook", slow, { ratePerSecond: 1 / 3600 });
      const to = (origin: (i: number) => string) =>
        Array.from({ length: 30 }, (_, i) => ({ channel: "hook", destination: origin(i) }));
      await env.store.enqueue({ kind: "k" }, to((i) => `${slow}/r/${i}`));
      await env.store.enqueue({ kind: "k" }, to((i) => `https://fast${i}.example/hook`));
      const sent: string[] = [];
      const worker = new Worker({
        store: env.store,
        channels: { hook: { send: (route) => Promise.resolve(void sent.push(route.destination)) } },
        routesPerTransaction: 10,
        routesPerTick: 1_000,
        logger: silentLogger,
      });
      assert.equal(await worker.tick(), 31);
      assert.equal(sent.filter((d) => d.startsWith(slow)).length, 1, "one of the limited");
      assert.equal(sent.filter((d) => d.includes("fast")).length, 30, "every one behind it");
    } finally {
      await env.cleanup();
    }
  });
});

describe("the destination list's last hour", () => {
  it("counts each destination's attempts of the last hour, none older, from one read", async () => {
    const env = await freshStore({ max: 2 });
    try {
      await env.store.migrate();
      const s = env.sql(env.schema);
      // Route by route: its destination, when it last changed (minutes ago),
      // and its attempts (minutes ago, outcome); one retried by an operator
      // since (queued again with a fresh budget: its attempts column 0).
      const routes = [
        { host: "a.example", changed: 120, attempts: [[120, "sent"]] },
        { host: "a.example", changed: 10, attempts: [[90, "retry"], [10, "failed"]] },
        { host: "a.example", changed: 3, attempts: [[30, "retry"], [3, "sent"]] },
        { host: "a.example", changed: 2, attempts: [[20, "failed"]], retried: true },
        { host: "b.example", changed: 5, attempts: [[5, "sent"]] },
      ];
      await env.sql`
        INSERT INTO ${s}.destinations (channel, key)
        VALUES ('webhook', 'https://a.example'), ('webhook', 'https://b.example')`;
      for (const [i, r] of routes.entries()) {
        await env.sql`
          WITH n AS (
            INSERT INTO ${s}.notifications (id, kind) VALUES (gen_random_uuid(), 'k') RETURNING id
          ), route AS (
            INSERT INTO ${s}.notification_routes (route_id, notification_id, channel, destination,
              destination_key, status, attempts, updated_at, created_at)
            SELECT gen_random_uuid(), id, 'webhook', ${`https://${r.host}/${i}`},
                   ${`https://${r.host}`}, ${r.retried ? "queued" : "sent"},
                   ${r.retried ? 0 : r.attempts.length}, now() - ${r.changed} * interval '1 minute',
                   now() - interval '1 day'
            FROM n RETURNING route_id)
          INSERT INTO ${s}.route_attempts (route_id, attempt, started_at, duration_ms, outcome)
          SELECT route_id, a.n, now() - a.ago * interval '1 minute', 20, a.outcome
          FROM route, json_to_recordset(${
          JSON.stringify(r.attempts.map(([ago, outcome], n) => ({ ago, outcome, n: n + 1 })))
        }::text::json) AS a(ago float8, outcome text, n int)`;
      }
      const hour = (
        d: { key: string; attemptsLastHour: number; failuresLastHour: number },
      ) => [d.key, d.attemptsLastHour, d.failuresLastHour];
      assert.deepEqual((await env.store.destinations()).map(hour).sort(), [
        ["https://a.example", 4, 3],
        ["https://b.example", 1, 0],
      ]);
      assert.deepEqual(hour((await env.store.destination("webhook", "https://b.example"))!), [
        "https://b.example",
        1,
        0,
      ]);
    } finally {
      await env.cleanup();
    }
  });
});
