import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HeraldError, InvalidArgumentError } from "../../core/errors.ts";
import { enqueue, PostgresStore } from "../../store.ts";
import { Worker } from "../../worker.ts";
import { silentLogger } from "../../observe/logger.ts";
import { rec, storeContract } from "../_helpers/store_contract.ts";
import { DATABASE_URL, freshStore, testSql, useFreshStore } from "../_helpers/pg.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

storeContract({ name: "PostgresStore", open: () => freshStore() });

describe("PostgresStore on a real database", () => {
  const env = useFreshStore();

  it("enqueue inside an application transaction that rolls back leaves nothing", async () => {
    const app = testSql(1);
    try {
      await assert.rejects(
        app.begin(async (tx) => {
          await enqueue(tx, { kind: "order.shipped" }, [{ channel: "log", destination: "x" }], {
            schema: env().schema,
          });
          throw new Error("application rolled back");
        }),
        /application rolled back/,
      );
      const [row] = await env().sql`
        SELECT (SELECT count(*) FROM ${env().sql(env().schema)}.notifications)::int AS n,
               (SELECT count(*) FROM ${env().sql(env().schema)}.notification_routes)::int AS r`;
      assert.deepEqual({ n: row?.["n"], r: row?.["r"] }, { n: 0, r: 0 });

      const committed = await app.begin((tx) =>
        enqueue(tx, { kind: "order.shipped" }, [{ channel: "log", destination: "x" }], {
          schema: env().schema,
        })
      );
      assert.equal((await env().store.getRoute(committed.routeIds[0]!))?.status, "queued");
      // Out of the later tests' way (they share this schema).
      assert.equal((await env().store.cancel(committed.routeIds)).changed, 1);
    } finally {
      await app.end({ timeout: 5 });
    }
  });

  it("concurrent migrations from many stores are safe", async () => {
    const stores = Array.from(
      { length: 4 },
      () => new PostgresStore({ url: DATABASE_URL, schema: env().schema, max: 1 }),
    );
    try {
      const versions = await Promise.all(stores.map((s) => s.migrate()));
      assert.deepEqual(new Set(versions).size, 1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("the lock timeout ends a transaction that sits idle too long", async () => {
    const { routeIds } = await env().store.enqueue({ kind: "k" }, [{
      channel: "log",
      destination: "x",
    }]);
    const id = routeIds[0]!;
    let release!: () => void;
    const wedged = new Promise<void>((resolve) => (release = resolve));
    const stalled = env().store.transaction(async (tx) => {
      await tx.claimDue({ limit: 1, exclude: [] });
      await wedged; // a send that never returns
      await tx.finalise([rec(id, { status: "sent", attempts: 1 })]);
    }, { lockTimeoutMs: 200 });
    // Postgres ends the idle session; the driver rejects the transaction.
    await assert.rejects(stalled, /CONNECTION_CLOSED|idle-in-transaction|terminating/i);
    release();
    const route = await env().store.getRoute(id);
    assert.equal(route?.status, "queued");
    assert.equal(route?.attempts, 0);
    const again = await env().store.transaction((tx) => tx.claimDue({ limit: 100, exclude: [] }));
    assert.ok(again.some((r) => r.id === id), "the route is claimable again");
    assert.equal((await env().store.cancel([id])).changed, 1, "out of the later tests' way");
  });

  it("an error text Postgres would refuse (NUL, half an emoji) still records the attempt", async () => {
    const reasons = ["bad\u0000byte", `${"x".repeat(498)}\u{1F600}tail`];
    for (const reason of reasons) {
      const { routeIds } = await env().store.enqueue({ kind: "k" }, [{
        channel: "odd",
        destination: "x",
      }]);
      const worker = new Worker({
        store: env().store,
        channels: { odd: { send: () => Promise.reject(new Error(reason)) } },
        logger: silentLogger,
      });
      await worker.tick();
      const route = await env().store.getRoute(routeIds[0]!);
      assert.equal(route?.attempts, 1, "the attempt was recorded, not rolled back");
      assert.equal(route?.status, "queued");
      assert.ok(route?.lastError?.isWellFormed());
      assert.equal(route?.lastError?.includes("\u0000"), false);
      // Out of the way of the tests after it: its retry would come due in a second
      // (claiming it now finds nothing: it is not due yet).
      assert.equal((await env().store.cancel(routeIds)).changed, 1);
    }
  });

  it("two workers with different channel sets on one table deliver every route; none fails", async () => {
    const second = new PostgresStore({ url: DATABASE_URL, schema: env().schema, max: 2 });
    try {
      const calls = { alpha: 0, beta: 0 };
      const counting = (name: "alpha" | "beta") => ({
        send: () => Promise.resolve(void calls[name]++),
      });
      const alphaOnly = new Worker({
        store: env().store,
        channels: { alpha: counting("alpha") },
        logger: silentLogger,
      });
      const betaOnly = new Worker({
        store: second,
        channels: { beta: counting("beta") },
        logger: silentLogger,
      });
      const { routeIds } = await env().store.enqueue(
        { kind: "deploy.rolling" },
        Array.from({ length: 20 }, (_, i) => ({
          channel: i % 2 ? "beta" : "alpha",
          destination: `d${i}`,
        })),
      );
      // The alpha-only worker goes first and drains all it can: the beta routes wait.
      while (await alphaOnly.tick() > 0) { /* drain */ }
      const stats = await env().store.stats();
      assert.deepEqual(stats.oldestDueByChannel.map((d) => d.channel), ["beta"]);
      while (await betaOnly.tick() > 0) { /* drain */ }
      const routes = await Promise.all(routeIds.map((id) => env().store.getRoute(id)));
      assert.deepEqual(
        routes.map((r) => [r?.status, r?.attempts]),
        routeIds.map(() => ["sent", 1]),
      );
      assert.deepEqual(calls, { alpha: 10, beta: 10 });
    } finally {
      await second.close();
    }
  });

  it("enqueue into a schema that was never migrated says to migrate, naming the schema", async () => {
    const schema = `${env().schema}_none`; // never created
    await assert.rejects(
      enqueue(env().sql, { kind: "k" }, [{ channel: "log", destination: "x" }], { schema }),
      (err: unknown) =>
        err instanceof HeraldError && err.code === "HERALD_STORE" &&
        err.message.includes(`schema ${schema} has no Herald tables: run the migrations first`),
    );
  });

  it("refuses a bad schema name before touching the database", () => {
    for (const schema of ["", "Herald", "1abc", 'x"; DROP TABLE y; --', "a".repeat(57), "pg_x"]) {
      assert.throws(
        () => new PostgresStore({ url: DATABASE_URL, schema }),
        (err: unknown) => err instanceof InvalidArgumentError && err.field === "schema",
      );
    }
  });
});

describe("PostgresStore row versions", () => {
  // A row locked by the transaction and updated by a savepoint's
  // subtransaction gets a MultiXact as its old version's remover; index scans
  // never mark such a version dead, so every claim would fetch every route
  // finalised since the last VACUUM from the heap. Read with pageinspect.
  it("a finalised route's old row version has a plain remover (no MultiXact)", async (t) => {
    const env = await freshStore();
    try {
      const [available] = await env.sql`
        SELECT 1 FROM pg_available_extensions WHERE name = 'pageinspect'`;
      if (!available) return void t.skip("pageinspect (Postgres contrib) is not installed");
      await env.store.migrate();
      await env.sql.unsafe(`CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA "${env.schema}"`);
      const [ext] = await env.sql`
        SELECT extnamespace::regnamespace::text AS schema FROM pg_extension
        WHERE extname = 'pageinspect'`;
      const outcomes = [
        { status: "sent", attempts: 1 },
        { status: "retry", attempts: 1, delayMs: 60_000, error: "later" },
        { status: "failed", attempts: 1, error: "no" },
      ] as const;
      await env.store.enqueue(
        { kind: "k" },
        outcomes.map((_, i) => ({
          channel: "log",
          destination: `d${i}`,
        })),
      );
      for (const outcome of outcomes) {
        await env.store.transaction(async (tx) => {
          const [route] = await tx.claimDue({ limit: 1, exclude: [] });
          const record = rec(route!.id, outcome);
          // With fallbacks: the path whose savepoint made the MultiXact.
          await tx.finalise([record], [{ record, claimedAttempts: 0, holdMs: 0, poison: true }]);
        });
      }
      const x = env.sql(ext!["schema"] as string);
      const table = `"${env.schema}".notification_routes`;
      const [versions] = await env.sql`
        SELECT count(*) FILTER (WHERE t_infomask & 4096 <> 0)::int AS multi,
               count(*) FILTER (WHERE t_xmax <> '0' AND t_infomask & 128 = 0)::int AS replaced
        FROM generate_series(0, (pg_relation_size(${table}) / 8192)::int - 1) AS b,
             LATERAL ${x}.heap_page_items(${x}.get_raw_page(${table}, b))
        WHERE lp_flags = 1`;
      assert.equal(versions!["replaced"], outcomes.length, "each route's claimed version replaced");
      assert.equal(versions!["multi"], 0, "no version has a MultiXact for its remover");
    } finally {
      await env.cleanup();
    }
  });
});
