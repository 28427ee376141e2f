/**
 * The dashboard's handler on a real database, driven with plain `Request`s:
 * numbers equal SQL counts, filters narrow, a failed route shows its
 * attempts, retry re-queues it for a worker to send, and the guards hold
 * (token, CSRF, read-only, escaping, CSP, redaction).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { webhookChannel } from "../../channels/mod.ts";
import { Worker } from "../../worker.ts";
import { silentLogger } from "../../observe/logger.ts";
import { dashboard } from "../../dashboard/mod.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import { freshStore } from "../_helpers/pg.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { seedBacklog } from "../_helpers/seed.ts";

checkLeaks();

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN = "dashboard-token-0123456789";

describe("the dashboard handler", () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let server: TestServer;
  let worker: Worker;
  let healthy = false;
  let failedId: string;
  let sentId: string;
  let queuedId: string;
  let handle: (r: Request) => Promise<Response>;

  const get = (path: string, init: RequestInit = {}) =>
    handle(new Request(`http://127.0.0.1:8089${path}`, init));
  const text = async (path: string) => {
    const res = await get(path);
    assert.equal(res.status, 200, `GET ${path}`);
    return await res.text();
  };
  const csrfOf = (page: string) => /name="csrf" value="([0-9a-f]+)"/.exec(page)?.[1] ?? "";
  const post = (path: string, fields: Record<string, string>, headers: HeadersInit = {}) =>
    get(path, { method: "POST", body: new URLSearchParams(fields), headers, redirect: "manual" });

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    server = await startServer((req, res) => {
      res.writeHead(healthy || req.path === "/ok" ? 204 : 500).end("receiver says no");
    });
    const hostile = "<script>document.title='owned'</script>";
    const { routeIds } = await env.store.enqueue(
      { kind: `order.shipped${hostile}`, payload: { note: hostile, order: 42 } },
      [
        {
          channel: "webhook",
          destination: `${server.url}/bad?token=s3cr3t-in-url`,
          maxAttempts: 1,
        },
        { channel: "webhook", destination: `${server.url}/ok` },
      ],
    );
    [failedId, sentId] = routeIds as [string, string];
    worker = new Worker({
      store: env.store,
      channels: { webhook: webhookChannel({ secret: SECRET, allowHosts: ["127.0.0.1"] }) },
      logger: silentLogger,
    });
    assert.equal(await worker.tick(), 2);
    ({ routeIds: [queuedId] } = await env.store.enqueue({ kind: "user.welcome" }, [
      {
        channel: "webhook",
        destination: `${server.url}/later`,
        deliverAt: new Date(Date.now() + 3_600_000),
      },
    ]) as unknown as { routeIds: [string] });
    handle = dashboard(env.store, { refreshSeconds: 0 });
  });
  after(async () => {
    await server.close();
    await env.cleanup();
  });

  it("the overview's numbers are the table's counts", async () => {
    const page = await text("/");
    const rows = await env.sql<{ status: string; n: number }[]>`
      SELECT status, count(*)::int AS n FROM ${env.sql(env.schema)}.notification_routes GROUP BY 1`;
    for (const status of ["queued", "sent", "failed", "cancelled", "poisoned"]) {
      const shown = new RegExp(`data-status="${status}">(\\d+)<`).exec(page)?.[1];
      assert.equal(Number(shown), rows.find((r) => r.status === status)?.n ?? 0, status);
    }
    assert.match(page, /<svg class="chart"/);
    assert.match(page, /data-testid="failed-last-hour">1</);
  });

  it("a filter narrows the list, and a bad one is refused naming its field", async () => {
    const failed = await text("/routes?status=failed");
    assert.ok(failed.includes(`data-route="${failedId}"`));
    assert.ok(!failed.includes(`data-route="${sentId}"`));
    const kind = await text("/routes?kind=user.welcome");
    assert.deepEqual([...kind.matchAll(/data-route="([^"]+)"/g)].map((m) => m[1]), [queuedId]);
    const bad = await get("/routes?status=lost");
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /Invalid &#39;status&#39;/);
    assert.equal((await get("/routes?since=yesterday")).status, 400);
  });

  it("the list names each route's destination, not the channel's one key", async () => {
    const { routeIds: [id] } = await env.store.enqueue({ kind: "ops.note" }, [
      { channel: "log", destination: "ops-console" },
    ]);
    try {
      const row = new RegExp(`<tr data-route="${id}">([\\s\\S]*?)</tr>`)
        .exec(await text("/routes?kind=ops.note"))?.[1] ?? "";
      assert.match(row, /<td>ops-console<\/td>/);
      assert.doesNotMatch(row, /<td>\*<\/td>/);
    } finally {
      await env.store.cancel([id!]);
    }
  });

  it("a failed route shows its attempts, escaped, with its secrets left out", async () => {
    const page = await text(`/routes/${failedId}`);
    assert.match(page, /data-testid="status">failed</);
    assert.match(page, /<td class="num">500<\/td>/, "the attempt's HTTP status");
    assert.ok(!page.includes("<script>document"), "the payload is text, not markup");
    assert.ok(page.includes("&lt;script&gt;document.title="), "and it is shown");
    assert.ok(!page.includes("s3cr3t-in-url"), "the destination's query is redacted");
    assert.equal((await get("/routes/not-a-route")).status, 404);
  });

  it("retry re-queues a failed route and a worker sends it", async () => {
    const page = await text(`/routes/${failedId}`);
    const res = await post(`/routes/${failedId}/retry`, { csrf: csrfOf(page) });
    assert.equal(res.status, 303);
    assert.match(res.headers.get("location") ?? "", /done=retried&n=1/);
    assert.equal((await env.store.getRoute(failedId))?.status, "queued");
    healthy = true;
    assert.equal(await worker.tick(), 1);
    assert.equal((await env.store.getRoute(failedId))?.status, "sent");
    healthy = false;
  });

  it("a POST without the right CSRF token, or from another site, changes nothing", async () => {
    const csrf = csrfOf(await text(`/routes/${queuedId}`));
    for (
      const [fields, headers] of [
        [{}, {}],
        [{ csrf: "0".repeat(48) }, {}],
        [{ csrf }, { "sec-fetch-site": "cross-site" }],
      ] as [Record<string, string>, Record<string, string>][]
    ) {
      const res = await post(`/routes/${queuedId}/cancel`, fields, headers);
      assert.equal(res.status, 403);
    }
    assert.equal((await env.store.getRoute(queuedId))?.status, "queued");
    const res = await post(`/routes/${queuedId}/cancel`, { csrf });
    assert.equal(res.status, 303);
    assert.equal((await env.store.getRoute(queuedId))?.status, "cancelled");
  });

  it("pauses and resumes a destination", async () => {
    const key = new URL(server.url).origin;
    const csrf = csrfOf(await text("/destinations"));
    const paused = await post("/destinations/pause", { csrf, channel: "webhook", key });
    assert.equal(paused.status, 303);
    assert.equal((await env.store.destination("webhook", key))?.state, "paused");
    assert.match(await text("/destinations?done=paused"), /Resume<\/button>/);
    await post("/destinations/resume", { csrf, channel: "webhook", key });
    assert.equal((await env.store.destination("webhook", key))?.state, "closed");
  });

  it("every response forbids inline script and framing", async () => {
    for (const path of ["/", "/routes", "/assets/style.css", "/no-such-page"]) {
      const res = await get(path);
      await res.body?.cancel();
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /default-src 'none'/, path);
      assert.match(csp, /script-src 'self'(;|$)/, path);
      assert.equal(res.headers.get("x-frame-options"), "DENY", path);
    }
  });

  it("with a token, nothing is served without it", async () => {
    const guarded = dashboard(env.store, { token: TOKEN });
    const ask = (path: string, headers: HeadersInit = {}) =>
      guarded(new Request(`http://10.0.0.5:8089${path}`, { headers, redirect: "manual" }));
    assert.equal((await ask("/")).status, 401);
    assert.equal((await ask("/", { authorization: "Bearer wrong-token-0123456789" })).status, 401);
    assert.equal((await ask("/", { authorization: `Bearer ${TOKEN}` })).status, 200);
    const login = await ask(`/routes?status=failed&token=${TOKEN}`);
    assert.equal(login.status, 303);
    assert.equal(
      login.headers.get("location"),
      "/routes?status=failed",
      "the token leaves the address",
    );
    const cookie = login.headers.get("set-cookie") ?? "";
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Lax/i);
    assert.ok(!cookie.includes(TOKEN), "the cookie holds a session value, not the token");
    const away = await ask(`//evil.example/?token=${TOKEN}`);
    assert.equal(away.status, 303);
    assert.match(
      away.headers.get("location") ?? "",
      /^\/[^/]/,
      "the redirect stays on this origin",
    );
    const session = cookie.split(";")[0]!;
    assert.equal((await ask("/routes", { cookie: session })).status, 200);
    assert.equal((await ask("/routes", { cookie: "herald_dashboard=guess" })).status, 401);
  });

  it("read-only shows no actions and refuses every POST", async () => {
    const ro = dashboard(env.store, { readOnly: true });
    const { routeIds: [id] } = await env.store.enqueue({ kind: "ro" }, [
      {
        channel: "webhook",
        destination: `${server.url}/later`,
        deliverAt: new Date(Date.now() + 3_600_000),
      },
    ]);
    assert.match(await text(`/routes/${id}`), /Cancel<\/button>/, "a queued route has actions");
    const page = await (await ro(new Request(`http://127.0.0.1/routes/${id}`))).text();
    assert.ok(!page.includes('<form class="inline"'), "but not read-only");
    assert.ok(!page.includes('name="csrf"'));
    const csrf = csrfOf(await text(`/routes/${id}`));
    const res = await ro(
      new Request(`http://127.0.0.1/routes/${id}/cancel`, {
        method: "POST",
        body: new URLSearchParams({ csrf }),
      }),
    );
    assert.equal(res.status, 403);
    assert.match(await res.text(), /read-only/);
    assert.equal((await env.store.getRoute(id!))?.status, "queued");
  });

  it("without a token, answers only loopback host names (no DNS rebinding)", async () => {
    const rebound = await get("/", { headers: { host: "attacker.example:8089" } });
    assert.equal(rebound.status, 403);
    await rebound.body?.cancel();
    for (const host of ["127.0.0.1:8089", "localhost:8089", "[::1]:8089", "LOCALHOST"]) {
      const res = await get("/routes", { headers: { host } });
      assert.equal(res.status, 200, host);
      await res.body?.cancel();
    }
    const named = dashboard(env.store, { hosts: ["herald.internal"] });
    const ok = await named(new Request("http://x/", { headers: { host: "herald.internal:80" } }));
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  });

  it("bulk retry takes a destination's failed routes; an oversized form is refused", async () => {
    const { routeIds: [id] } = await env.store.enqueue({ kind: "bulk" }, [
      { channel: "webhook", destination: `${server.url}/bad/bulk`, maxAttempts: 1 },
    ]);
    assert.equal(await worker.tick(), 1);
    assert.equal((await env.store.getRoute(id!))?.status, "failed");
    const key = new URL(server.url).origin;
    const list = await text(`/routes?status=failed&destination=${encodeURIComponent(key)}`);
    assert.match(list, /Retry every failed or poisoned route matching these filters/);
    const res = await post("/routes/retry-failed", { csrf: csrfOf(list), destination: key });
    assert.equal(res.status, 303);
    assert.match(res.headers.get("location") ?? "", /done=retried-all&n=1/);
    assert.equal((await env.store.getRoute(id!))?.status, "queued");
    await env.store.cancel([id!]);
    const big = await post("/routes/retry-failed", { csrf: csrfOf(list), pad: "x".repeat(20_000) });
    assert.equal(big.status, 413);
    await big.body?.cancel();
  });

  it("mounts under a base path, and refuses bad options naming the field", async () => {
    const mounted = dashboard(env.store, { basePath: "/ops/herald" });
    const at = (path: string) => mounted(new Request(`http://127.0.0.1${path}`));
    const res = await at("/ops/herald/routes");
    assert.equal(res.status, 200);
    assert.match(await res.text(), /href="\/ops\/herald\/assets\/style.css"/);
    for (const path of ["/ops/herald", "/ops/herald/"]) {
      const overview = await at(path);
      assert.equal(overview.status, 200, path);
      assert.match(await overview.text(), /<h1>Overview<\/h1>/, path);
    }
    const missing = await at("/ops/herald/nothing-here");
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /<h1>Not found<\/h1>/, "the dashboard's own page");
    assert.match(missing.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    for (
      const [field, options] of [
        ["token", { token: "short" }],
        ["basePath", { basePath: "ops/" }],
        ["chartMinutes", { chartMinutes: 0 }],
        ["refreshSeconds", { refreshSeconds: -1 }],
        ["hosts", { hosts: [""] }],
      ] as const
    ) {
      assert.throws(
        () => dashboard(env.store, options),
        (e: unknown) => e instanceof InvalidArgumentError && e.field === field,
      );
    }
  });
});

describe("the dashboard's overview of a destination's long backlog", () => {
  it("marks a count that stopped at the cap", async () => {
    const env = await freshStore();
    try {
      await env.store.migrate();
      await seedBacklog(env.sql, env.schema, 1_005);
      const handle = dashboard(env.store, { refreshSeconds: 0 });
      const res = await handle(new Request("http://127.0.0.1:8089/"));
      assert.equal(res.status, 200);
      const rows = [
        ...(await res.text()).matchAll(/<tr data-destination="([^"]+)">([\s\S]*?)<\/tr>/g),
      ]
        .map((
          [, key, row],
        ) => [key, [...row!.matchAll(/<td class="num">([^<]*)</g)].map((m) => m[1])]);
      assert.deepEqual(rows, [
        ["https://down.example", ["0", "&gt;1000", "0"]],
        ["https://flaky.example", ["0", "3", "0"]],
      ]);
    } finally {
      await env.cleanup();
    }
  });
});
