/**
 * Least privilege, on the real Postgres: the roles and grants of
 * docs/security.md (its SQL blocks are executed as written, with unique role
 * and schema names) are enough for each job and no more. The owner migrates;
 * the worker role migrates as a no-op, claims, sends, retries, fails routes
 * and wakes on LISTEN, in process and as the `herald run --once` program, but
 * cannot enqueue, delete or create tables; the application role can only
 * enqueue; the operator role runs stats, routes, show, retry, cancel and
 * prune but cannot enqueue. The tests run in order on one schema: the
 * operator's counts include what the worker's tests left.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SCHEMA_VERSION } from "../../store.ts";
import type { Store } from "../../store.ts";
import { Worker } from "../../worker.ts";
import type { RouteEventDetail } from "../../core/events.ts";
import { silentLogger } from "../../observe/logger.ts";
import { runProgramWithin } from "../_helpers/hostile_http.ts";
import { checkLeaks, trackWorker } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import { DENIED, type LeastPrivilege, useLeastPrivilege } from "./_roles.ts";

checkLeaks();

/** The docs' roles, and what the application role may and may not do. */
function roleTests(lp: () => LeastPrivilege): void {
  it("the docs' roles exist and only the owner owns anything", async () => {
    const { admin, schema, roles } = lp();
    const owners = await admin`
      SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema}`;
    assert.deepEqual(owners.map((r) => r["owner"]), [roles.owner]);
  });

  it("the worker's migrate() returns at once: it needs no CREATE", async () => {
    const { admin, schema, roles, worker } = lp();
    assert.equal(await worker.migrate(), SCHEMA_VERSION);
    const [can] = await admin`
      SELECT has_schema_privilege(${roles.worker}, ${schema}, 'CREATE') AS schema_create,
             has_database_privilege(${roles.worker}, current_database(), 'CREATE') AS db_create`;
    assert.deepEqual({ ...can }, { schema_create: false, db_create: false });
  });

  it("the app enqueues (idempotency key included) but cannot read, claim or list", async () => {
    const { app, hook, suffix, sqlAs, roles, schema } = lp();
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
}

/** The worker role's store, with `onNotify` counted and the first `onConnect` announced. */
function listeningAsWorker(
  worker: LeastPrivilege["worker"],
  heard: { notified: number; connected(): void },
): Store {
  return {
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
          heard.notified++;
          handlers.onNotify();
        },
        onConnect: () => {
          heard.connected();
          handlers.onConnect();
        },
      }),
  };
}

/** Sleeps until woken or stopped: the interval poll never fires. */
function sleepUntilWoken(_ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * Resolves once route `id` is sent: its `sent` event, or already sent in the
 * store. Rejects at once, with the reason, if its send is retried or fails:
 * the worker here sleeps until woken, so a retry would wait for ever.
 */
function sentRoute(w: Worker, id: string, operator: LeastPrivilege["operator"]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const names = ["sent", "retry", "failed", "poisoned"] as const;
    const onEvent = (e: CustomEvent<RouteEventDetail>): void => {
      if (e.detail.routeId !== id) return;
      for (const name of names) w.removeEventListener(name, onEvent);
      if (e.type === "sent") resolve();
      else reject(new Error(`route ${id}: ${e.type}: ${e.detail.error ?? "no reason"}`));
    };
    for (const name of names) w.addEventListener(name, onEvent);
    void operator.getRoute(id).then((r) => r?.status === "sent" && resolve());
  });
}

/** The worker role at work: sends, retries and fails routes. */
function workerTests(lp: () => LeastPrivilege): void {
  it("the worker sends, retries and fails routes", async () => {
    const { app, hook, worker, channels, operator } = lp();
    const { routeIds } = await app.enqueue({ kind: "lp.work", payload: { n: 1 } }, [
      hook("/ok/1"),
      hook("/flaky/1"),
      hook("/gone/1"),
      { ...hook("/down/1"), maxAttempts: 1 },
      { channel: "pigeon", destination: "coop" },
    ]);
    const w = trackWorker(
      new Worker({ store: worker, channels, logger: silentLogger, retry: { baseMs: 0, maxMs: 0 } }),
    );
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
}

/** The worker role wakes on the application role's enqueue. */
function wakeTests(lp: () => LeastPrivilege): void {
  it("the worker wakes on LISTEN/NOTIFY from the app's enqueue", async () => {
    const { app, hook, worker, channels, operator } = lp();
    let connected!: () => void;
    const listening = new Promise<void>((resolve) => (connected = resolve));
    const heard = { notified: 0, connected: () => connected() };
    const store = listeningAsWorker(worker, heard);
    const w = trackWorker(
      new Worker({
        store,
        channels,
        logger: silentLogger,
        interval: 600_000,
        sleep: sleepUntilWoken,
      }),
    );
    const stop = new AbortController();
    const running = w.run(stop.signal);
    try {
      await listening;
      const { routeIds: [id] } = await app.enqueue({ kind: "lp.wake" }, [hook("/ok/wake")]);
      await sentRoute(w, id!, operator);
      assert.ok(heard.notified >= 1, "the worker role received the NOTIFY");
    } finally {
      stop.abort();
      await running;
    }
  });
}

/** What the worker and the operator roles are refused, the program as the worker, the operator's tools. */
function refusalAndOperatorTests(lp: () => LeastPrivilege): void {
  it("the worker cannot enqueue, delete, truncate, prune or create tables", async () => {
    const { worker, hook, sqlAs, roles, schema } = lp();
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
    const { app, hook, urlOf, roles, schema, operator } = lp();
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
    const { operator, admin, schema, hook, sqlAs, roles } = lp();
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
}

describe(`least privilege on ${RUNTIME}`, () => {
  const lp = useLeastPrivilege();
  roleTests(lp);
  workerTests(lp);
  wakeTests(lp);
  refusalAndOperatorTests(lp);
});
