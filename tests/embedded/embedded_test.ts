/**
 * The embedded database: the store contract on PGlite, LISTEN/NOTIFY through
 * the virtual connections, the one session, open and close, persistence, and
 * the data-directory lock held by this process, by another, and by one that
 * was killed. One database is created for the whole file (see _fixture.ts).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { InvalidArgumentError } from "../../core/errors.ts";
import { openEmbedded } from "../../embedded.ts";
import type { EmbeddedDatabase } from "../../embedded.ts";
import { PostgresStore } from "../../store.ts";
import { rec, storeContract } from "../_helpers/store_contract.ts";
import type { ContractTarget } from "../_helpers/store_contract.ts";
import { uniqueSchema } from "../_helpers/pg.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { driver, embeddedFixture, isLocked, startHolder, useOpenDatabase } from "./_fixture.ts";

checkLeaks();
const fx = embeddedFixture();

/**
 * Each contract test gets a schema of its own on the one database. PGlite
 * has one session, so the tests that hold two transactions open at once
 * would wait for ever: `concurrentTransactions: false` skips them.
 */
function contractTarget(db: () => EmbeddedDatabase): ContractTarget {
  return {
    name: "PostgresStore on embedded PGlite",
    concurrentTransactions: false,
    open() {
      const schema = uniqueSchema("herald_e");
      return Promise.resolve({
        store: new PostgresStore({ sql: db().sql, schema }),
        async cleanup() {
          await driver(db()).unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        },
      });
    },
  };
}

/** LISTEN/NOTIFY through the virtual connections. */
function wakeUpTests(db: () => EmbeddedDatabase): void {
  it("a committed enqueue wakes a store listener (LISTEN/NOTIFY on its own connection)", async () => {
    let connected!: () => void;
    let notified!: () => void;
    const onConnect = new Promise<void>((resolve) => (connected = resolve));
    const onNotify = new Promise<void>((resolve) => (notified = resolve));
    const sub = await db().store.listen({
      onNotify: () => notified(),
      onConnect: () => connected(),
    });
    try {
      await onConnect;
      await db().store.enqueue({ kind: "wake" }, [{ channel: "log", destination: "x" }]);
      await onNotify;
    } finally {
      await sub.close();
    }
  });

  it("sql.listen receives a NOTIFY only once its transaction commits", async () => {
    const got: string[] = [];
    let arrived!: () => void;
    const delivered = new Promise<void>((resolve) => (arrived = resolve));
    const sub = await driver(db()).listen("embedded_test", (payload) => {
      got.push(payload);
      arrived();
    });
    try {
      await driver(db()).begin(async (tx) => {
        await tx`SELECT pg_notify('embedded_test', 'in-tx')`;
        await tx`SELECT 1`;
        assert.deepEqual(got, [], "not delivered before commit");
      });
      await delivered;
      assert.deepEqual(got, ["in-tx"]);
    } finally {
      await sub.unlisten();
    }
  });
}

/** One session: queries queue behind a transaction, and survive what PGlite cannot do. */
function sessionTests(db: () => EmbeddedDatabase): void {
  it("a query waits for an open transaction instead of interleaving with it", async () => {
    await db().store.enqueue({ kind: "k" }, [{ channel: "log", destination: "x" }]);
    const order: string[] = [];
    let waiting: Promise<unknown> | undefined;
    await db().store.transaction(async (tx) => {
      const [route] = await tx.claimDue({ limit: 1, exclude: [] });
      waiting = db().store.enqueue({ kind: "during" }, [{ channel: "log", destination: "y" }])
        .then(() => order.push("enqueue"));
      await tx.finalise([rec(route!.id, { status: "sent", attempts: 1 })]);
      order.push("transaction");
    });
    await waiting;
    assert.deepEqual(order, ["transaction", "enqueue"]);
  });

  it("COPY FROM STDIN is refused with SQLSTATE 0A000 and the database lives on", async () => {
    await driver(db())`CREATE TEMP TABLE copy_target (n int)`;
    await assert.rejects(
      driver(db())`COPY copy_target FROM STDIN`.writable(),
      (err: unknown) => (err as { code?: string }).code === "0A000",
    );
    const [row] = await driver(db())`SELECT 42 AS n`;
    assert.equal(row?.["n"], 42);
  });

  it("a failed transaction rolls back and the session is usable again", async () => {
    await assert.rejects(
      driver(db()).begin(async (tx) => {
        await tx`CREATE TABLE rolled_back (n int)`;
        await tx`SELECT 1/0`;
      }),
      (err: unknown) => (err as { code?: string }).code === "22012",
    );
    const [row] = await driver(db())`SELECT to_regclass('rolled_back') IS NULL AS gone`;
    assert.equal(row?.["gone"], true);
  });
}

describe("embedded database: one open database", () => {
  const db = useOpenDatabase(fx);
  storeContract(contractTarget(db));
  wakeUpTests(db);
  sessionTests(db);
});

describe("embedded database: open and close", () => {
  it("creates the directory and its parents, reporting it; a reopen reports opening", async () => {
    const progress = await fx.ensureCreated();
    assert.deepEqual(progress, [
      `creating the embedded database in ${fx.dataDir} (first run)…`,
    ]);
    assert.ok(existsSync(join(fx.dataDir, "PG_VERSION")));
    assert.ok(!existsSync(`${fx.dataDir}.lock`), "the lock file is removed on close");
    const messages: string[] = [];
    const db = await fx.open({ dataDir: fx.dataDir, onProgress: (m) => messages.push(m) });
    await db.close();
    assert.deepEqual(messages, [`opening the embedded database in ${fx.dataDir}…`]);
  });

  it("keeps data across close and reopen", async () => {
    await fx.ensureCreated();
    let db = await fx.open({ dataDir: fx.dataDir, schema: "herald_persist" });
    await db.store.migrate();
    const { routeIds } = await db.store.enqueue({ kind: "k", payload: { n: 1 } }, [
      { channel: "log", destination: "x" },
    ]);
    await db.close();
    db = await fx.open({ dataDir: fx.dataDir, schema: "herald_persist" });
    try {
      assert.equal((await db.store.getRoute(routeIds[0]!))?.status, "queued");
    } finally {
      await db.close();
    }
  });

  it("close is safe to call twice, and queries after it are refused", async () => {
    await fx.ensureCreated();
    const db = await fx.open({ dataDir: fx.dataDir });
    await driver(db)`SELECT 1`;
    await Promise.all([db.close(), db.close()]);
    await db.close();
    await assert.rejects(db.store.getRoute(crypto.randomUUID()));
  });
});

describe("embedded database: open and close, refused", () => {
  it("an abort during the open closes what it opened and releases the lock", async () => {
    await fx.ensureCreated();
    const stop = new AbortController();
    const reason = new Error("stop opening");
    await assert.rejects(
      openEmbedded({
        dataDir: fx.dataDir,
        signal: stop.signal,
        onProgress: () => stop.abort(reason),
      }),
      (err: unknown) => err === reason,
    );
    assert.ok(!existsSync(`${fx.dataDir}.lock`));
    const db = await fx.open({ dataDir: fx.dataDir });
    await db.close();
  });

  it("refuses a directory that holds something other than a database", async () => {
    const dir = join(fx.root, "project");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), "{}");
    await assert.rejects(
      openEmbedded({ dataDir: dir }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "dataDir",
    );
    assert.ok(!existsSync(`${dir}.lock`), "the lock is released after a refusal");
  });

  it("refuses bad options before touching the disk", async () => {
    await assert.rejects(
      openEmbedded({ dataDir: "" }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "dataDir",
    );
    await assert.rejects(
      openEmbedded({ dataDir: join(fx.root, "never", "data"), schema: "Bad-Name" }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "schema",
    );
    const reason = new Error("aborted before");
    await assert.rejects(
      openEmbedded({ dataDir: join(fx.root, "never", "data"), signal: AbortSignal.abort(reason) }),
      (err: unknown) => err === reason,
    );
    assert.ok(!existsSync(join(fx.root, "never")));
  });
});

describe("embedded database: the data directory lock", () => {
  it("refuses a second open in the same process, naming this process", async () => {
    await fx.ensureCreated();
    const db = await fx.open({ dataDir: fx.dataDir });
    try {
      await assert.rejects(
        openEmbedded({ dataDir: fx.dataDir }),
        isLocked(new RegExp(`in use by process ${process.pid} \\(this process\\) on host `)),
      );
    } finally {
      await db.close();
    }
    const again = await fx.open({ dataDir: fx.dataDir });
    await again.close();
  });

  it("refuses a second process, naming its pid, until it closes", async () => {
    await fx.ensureCreated();
    const holder = startHolder(fx.dataDir);
    try {
      const [, pid] = (await holder.ready).split(" ");
      await assert.rejects(
        openEmbedded({ dataDir: fx.dataDir }),
        isLocked(new RegExp(`in use by process ${pid} on host .* since \\d{4}-.*\\.lock\\)`)),
      );
      holder.child.stdin!.end();
      await holder.line(/^closed$/);
    } finally {
      await holder.exited;
    }
    const db = await fx.open({ dataDir: fx.dataDir });
    await db.close();
  });

  it("takes over the lock of a process that was killed, and its committed data is there", async () => {
    const dir = await fx.copyOfDatabase("killed");
    const holder = startHolder(dir);
    let routeId: string | undefined;
    try {
      routeId = (await holder.ready).split(" ")[2];
      holder.child.kill("SIGKILL");
    } finally {
      await holder.exited;
    }
    assert.ok(existsSync(`${dir}.lock`), "a killed process leaves its lock behind");
    const db = await fx.open({ dataDir: dir });
    try {
      assert.equal((await db.store.getRoute(routeId!))?.status, "queued");
    } finally {
      await db.close();
    }
  });
});
