/**
 * Least privilege, on the real Postgres: the roles and grants of
 * docs/security.md (its SQL blocks are executed as written, with unique role
 * and schema names) are enough for each job and no more. The owner migrates;
 * the worker role migrates as a no-op, claims, sends, retries, fails routes
 * and wakes on LISTEN, in process and as the `herald run --once` program, but
 * cannot enqueue, delete or create tables; the application role can only
 * enqueue; the operator role runs stats, routes, show, retry, cancel and
 * prune but cannot enqueue.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import postgres from "postgres";
import { PostgresStore, SCHEMA_VERSION } from "../../store.ts";
import type { Store } from "../../store.ts";
import { Worker } from "../../worker.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { silentLogger } from "../../observe/logger.ts";
import { DATABASE_URL, uniqueSchema } from "../_helpers/pg.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { runProgramWithin } from "../_helpers/hostile_http.ts";
import { RUNTIME } from "../_helpers/spawn.ts";

const DOC = readFileSync(new URL("../../docs/security.md", import.meta.url), "utf8");

/** The ```sql block after `<!-- least-privilege: {marker} -->` in docs/security.md. */
function docBlock(marker: string): string {
  const at = DOC.indexOf(`<!-- least-privilege: ${marker} -->`);
  assert.ok(at >= 0, `docs/security.md has the '${marker}' block`);
  const m = /```sql\n([\s\S]*?)```/.exec(DOC.slice(at));
  assert.ok(m, `a sql block follows '${marker}'`);
  return m[1]!;
}

/** Statements of a block, with this test's role, schema and database names. */
function statements(block: string, roles: Record<string, string>, schema: string, db: string) {
  return block
    .split("\n")
    .filter((l) => !l.trim().startsWith("--"))
    .join("\n")
    .replace(/\bherald_(owner|worker|app|operator)\b/g, (_m, r: string) => roles[r]!)
    .replace(/\bSCHEMA herald\b/g, `SCHEMA ${schema}`)
    .replace(/\bherald\./g, `${schema}.`)
    .replace(/\bON DATABASE app\b/g, `ON DATABASE "${db}"`)
    .split(";")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

const DENIED = (err: unknown): boolean => (err as { code?: unknown }).code === "42501";

describe(`least privilege on ${RUNTIME}`, () => {
  const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  const roles = {
    owner: `herald_owner_${suffix}`,
    worker: `herald_worker_${suffix}`,
    app: `herald_app_${suffix}`,
    operator: `herald_operator_${suffix}`,
  };
  const schema = uniqueSchema("herald_lp");
  const base = new URL(DATABASE_URL);
  const db = decodeURIComponent(base.pathname.slice(1));
  const urlOf = (role: string): string => {
    const u = new URL(DATABASE_URL);
    u.username = role;
    u.password = "";
    return u.href;
  };
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  const opened: { close(): Promise<void> }[] = [];
  const storeAs = (role: string): PostgresStore => {
    const store = new PostgresStore({ url: urlOf(role), schema, max: 3 });
    opened.push(store);
    return store;
  };
  const sqlAs = (role: string): postgres.Sql => {
    const sql = postgres(urlOf(role), { max: 1, onnotice: () => {} });
    opened.push({ close: () => sql.end({ timeout: 5 }) });
    return sql;
  };
  let server: TestServer;
  let worker: PostgresStore;
  let app: PostgresStore;
  let operator: PostgresStore;
  const flaky = new Map<string, number>();

  before(async () => {
    server = await startServer((req, res) => {
      if (req.path.startsWith("/ok")) return void res.writeHead(204).end();
      if (req.path.startsWith("/gone")) return void res.writeHead(410).end("gone");
      if (req.path.startsWith("/down")) return void res.writeHead(503).end("down");
      const seen = (flaky.get(req.path) ?? 0) + 1; // /flaky: 503 once, then 204
      flaky.set(req.path, seen);
      res.writeHead(seen === 1 ? 503 : 204).end();
    });
    for (const sql of statements(docBlock("as superuser"), roles, schema, db)) {
      await admin.unsafe(sql);
    }
    const owner = storeAs(roles.owner);
    assert.equal(await owner.migrate(), SCHEMA_VERSION);
    const ownerSql = sqlAs(roles.owner);
    for (const sql of statements(docBlock("as owner, after migrate"), roles, schema, db)) {
      await ownerSql.unsafe(sql);
    }
    worker = storeAs(roles.worker);
    app = storeAs(roles.app);
    operator = storeAs(roles.operator);
  });

  after(async () => {
    await Promise.all(opened.map((o) => o.close()));
    await server?.close();
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    for (const role of Object.values(roles)) {
      const [exists] = await admin`SELECT 1 FROM pg_roles WHERE rolname = ${role}`;
      if (!exists) continue;
      await admin.unsafe(`DROP OWNED BY "${role}" CASCADE`);
      await admin.unsafe(`DROP ROLE "${role}"`);
    }
    await admin.end({ timeout: 5 });
  });

  const hook = (path: string) => ({ channel: "webhook", destination: `${server.url}${path}` });
  const channels = { webhook: webhookChannel({ allowHosts: ["127.0.0.1"], timeoutMs: 5_000 }) };

  it("the docs' roles exist and only the owner owns anything", async () => {
    const owners = await admin`
      SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema}`;
    assert.deepEqual(owners.map((r) => r["owner"]), [roles.owner]);
  });

  it("the worker's migrate() returns at once: it needs no CREATE", async () => {
    assert.equal(await worker.migrate(), SCHEMA_VERSION);
    const [can] = await admin`
      SELECT has_schema_privilege(${roles.worker}, ${schema}, 'CREATE') AS schema_create,
             has_database_privilege(${roles.worker}, current_database(), 'CREATE') AS db_create`;
    assert.deepEqual({ ...can }, { schema_create: false, db_create: false });
  });

  it("the app enqueues (idempotency key included) but cannot read, claim or list", async () => {
    const first = await app.enqueue({ kind: "lp.app", idempotencyKey: `k-${suffix}` }, [
      hook("/ok/a"),
      hook("/ok/b"),
    ]);
    const again = await app.enqueue({ kind: "lp.app", idempotencyKey: `k-${suffix}` }, [
      hook("/ok/c"),
    ]);
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.routeIds, first.routeIds);
    const appSql = sqlAs(roles.app);
    const s = appSql(schema);
    await assert.rejects(appSql`SELECT destination FROM ${s}.notification_routes`, DENIED);
    await assert.rejects(appSql`SELECT payload FROM ${s}.notifications`, DENIED);
    await assert.rejects(app.transaction((tx) => tx.claimDue({ limit: 1, exclude: [] })), DENIED);
    await assert.rejects(app.listRoutes(), DENIED);
    await assert.rejects(appSql`DELETE FROM ${s}.notification_routes`, DENIED);
    await assert.rejects(appSql`CREATE TABLE ${s}.sneaky (i int)`, DENIED);
  });

  it("the worker sends, retries and fails routes", async () => {
    const { routeIds } = await app.enqueue({ kind: "lp.work", payload: { n: 1 } }, [
      hook("/ok/1"),
      hook("/flaky/1"),
      hook("/gone/1"),
      { ...hook("/down/1"), maxAttempts: 1 },
      { channel: "pigeon", destination: "coop" },
    ]);
    const w = new Worker({
      store: worker,
      channels,
      logger: silentLogger,
      retry: { baseMs: 0, maxMs: 0 },
    });
    const events: string[] = [];
    for (const name of ["sent", "retry", "failed"]) {
      w.addEventListener(name, () => events.push(name));
    }
    while (await w.tick() > 0) { /* drain: each tick excludes what it already handled */ }
    const [ok, flakyRoute, gone, down, pigeon] = await Promise.all(
      routeIds.map((id) => operator.getRoute(id)),
    );
    assert.equal(ok?.status, "sent");
    assert.equal(flakyRoute?.status, "sent");
    assert.equal(flakyRoute?.attempts, 2);
    assert.equal(gone?.status, "failed");
    assert.match(gone?.lastError ?? "", /HTTP 410/);
    assert.equal(down?.status, "failed");
    assert.match(down?.lastError ?? "", /gave up after 1 attempts: .*HTTP 503/);
    assert.equal(pigeon?.status, "queued", "no worker has 'pigeon': it waits for one that has");
    assert.ok(events.includes("retry"), "a retry was recorded");
    const log = await operator.attempts(routeIds[1]!);
    assert.deepEqual(log.map((a) => [a.outcome, a.httpStatus]), [["retry", 503], ["sent", 204]]);
  });

  it("the worker wakes on LISTEN/NOTIFY from the app's enqueue", async () => {
    let notified = 0;
    let connected!: () => void;
    const listening = new Promise<void>((resolve) => (connected = resolve));
    const store: Store = {
      migrate: () => worker.migrate(),
      transaction: (fn, options) => worker.transaction(fn, options),
      enqueue: (n, r) => worker.enqueue(n, r),
      getRoute: (id) => worker.getRoute(id),
      attempts: (id) => worker.attempts(id),
      salvage: (routes) => worker.salvage(routes),
      close: () => Promise.resolve(),
      listen: (handlers) =>
        worker.listen({
          onNotify: () => {
            notified++;
            handlers.onNotify();
          },
          onConnect: () => {
            connected();
            handlers.onConnect();
          },
        }),
    };
    // Sleeps until woken or stopped: the interval poll never fires.
    const sleep = (_ms: number, signal: AbortSignal): Promise<void> =>
      new Promise((resolve) => {
        if (signal.aborted) return resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    const w = new Worker({ store, channels, logger: silentLogger, interval: 600_000, sleep });
    const stop = new AbortController();
    const running = w.run(stop.signal);
    try {
      await listening;
      const { routeIds: [id] } = await app.enqueue({ kind: "lp.wake" }, [hook("/ok/wake")]);
      await new Promise<void>((resolve) => {
        const onSent = (e: unknown): void => {
          if ((e as CustomEvent).detail.routeId !== id) return;
          w.removeEventListener("sent", onSent);
          resolve();
        };
        w.addEventListener("sent", onSent);
        void operator.getRoute(id!).then((r) => r?.status === "sent" && resolve());
      });
      assert.ok(notified >= 1, "the worker role received the NOTIFY");
    } finally {
      stop.abort();
      await running;
    }
  });

  it("the worker cannot enqueue, delete, truncate, prune or create tables", async () => {
    await assert.rejects(worker.enqueue({ kind: "nope" }, [hook("/ok/x")]), DENIED);
    await assert.rejects(worker.prune({ olderThanMs: 0 }), DENIED);
    const sql = sqlAs(roles.worker);
    const s = sql(schema);
    await assert.rejects(sql`DELETE FROM ${s}.notification_routes`, DENIED);
    await assert.rejects(sql`DELETE FROM ${s}.route_attempts`, DENIED);
    await assert.rejects(sql`TRUNCATE ${s}.notifications CASCADE`, DENIED);
    await assert.rejects(sql`CREATE TABLE ${s}.sneaky (i int)`, DENIED);
    await assert.rejects(sql`UPDATE ${s}.route_attempts SET error = 'x'`, DENIED);
    await assert.rejects(sql`ALTER TABLE ${s}.notification_routes ADD COLUMN x int`, DENIED);
  });

  it("the program runs as the worker role: run --once migrates as a no-op and delivers", async () => {
    const { routeIds: [id] } = await app.enqueue({ kind: "lp.cli" }, [hook("/ok/cli")]);
    const ran = await runProgramWithin(["run", "--once"], {
      DATABASE_URL: urlOf(roles.worker),
      HERALD_SCHEMA: schema,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
    }, 60_000);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal((await operator.getRoute(id!))?.status, "sent");
  });

  it("the operator runs stats, routes, show, retry, cancel and prune, but cannot enqueue", async () => {
    const stats = await operator.stats();
    assert.ok(stats.byStatus.sent >= 3);
    assert.ok(stats.byStatus.failed >= 2);
    assert.ok(stats.byStatus.queued >= 1, "the route no worker has a channel for");
    assert.ok((await operator.listRoutes({ status: "failed" })).length >= 2);
    const retried = await operator.retry({ failed: true, channel: "webhook" });
    assert.ok(retried.changed >= 2);
    const queued = await operator.listRoutes({ status: "queued" });
    const cancelled = await operator.cancel(queued.map((r) => r.id));
    assert.equal(cancelled.changed, queued.length);
    const attemptsBefore = await admin`SELECT count(*)::int AS n FROM ${
      admin(schema)
    }.route_attempts`;
    assert.ok(attemptsBefore[0]!["n"] > 0);
    const pruned = await operator.prune({ olderThanMs: 0 });
    assert.ok(pruned > 0);
    const [left] = await admin`
      SELECT (SELECT count(*)::int FROM ${admin(schema)}.notification_routes) AS routes,
             (SELECT count(*)::int FROM ${admin(schema)}.route_attempts) AS attempts`;
    assert.deepEqual({ ...left }, { routes: 0, attempts: 0 }, "attempts went with their routes");
    await assert.rejects(operator.enqueue({ kind: "nope" }, [hook("/ok/x")]), DENIED);
    const sql = sqlAs(roles.operator);
    await assert.rejects(sql`CREATE TABLE ${sql(schema)}.sneaky (i int)`, DENIED);
  });
});
