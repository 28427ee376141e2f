/**
 * The embedded database: the store contract on PGlite, LISTEN/NOTIFY through
 * the virtual connections, persistence, and the data-directory lock (in this
 * process, across processes, after a crash).
 *
 * Creating a database costs seconds, so the file creates one, shares it
 * (a schema per contract test), and copies it for the test that kills its
 * holder.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { HeraldError, InvalidArgumentError } from "../../core/errors.ts";
import { openEmbedded } from "../../embedded.ts";
import { PostgresStore } from "../../store.ts";
import type { EmbeddedDatabase } from "../../embedded.ts";
import { acquireDataDirLock, processStart } from "../../embedded/_data_dir_lock.ts";
import { rec, storeContract } from "../_helpers/store_contract.ts";
import type { ContractTarget } from "../_helpers/store_contract.ts";
import { uniqueSchema } from "../_helpers/pg.ts";
import type postgres from "postgres";

/** The embedded handle with the driver's own type (the public API types it structurally). */
function driver(db: EmbeddedDatabase): postgres.Sql {
  return db.sql as postgres.Sql;
}
import { RUNTIME } from "../_helpers/spawn.ts";

const root = mkdtempSync(join(tmpdir(), "herald-embedded-"));
/** Nested, so the first open also shows that missing parents are created. */
const dataDir = join(root, "nested", "dirs", "data");
let created: Promise<string[]> | undefined;

/** Creates the database once; resolves to the progress messages of that first open. */
function ensureCreated(): Promise<string[]> {
  created ??= (async () => {
    const progress: string[] = [];
    const db = await openEmbedded({ dataDir, onProgress: (m) => progress.push(m) });
    await driver(db)`SELECT 1`;
    await db.close();
    return progress;
  })();
  return created;
}

/** A copy of the database in a directory of its own, for a test that may break it. */
async function copyOfDatabase(name: string): Promise<string> {
  await ensureCreated();
  const dir = join(root, name, "data");
  cpSync(dataDir, dir, { recursive: true });
  return dir;
}

function isLocked(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof HeraldError, `expected a HeraldError, got ${err}`);
    assert.equal(err.code, "HERALD_LOCKED");
    assert.match(err.message, pattern);
    return true;
  };
}

describe("embedded database", () => {
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  describe("one open database", () => {
    let db: EmbeddedDatabase;
    before(async () => {
      await ensureCreated();
      db = await openEmbedded({ dataDir, schema: "herald_session" });
      await db.store.migrate();
    });
    after(async () => {
      await db.close();
    });

    // Each contract test gets a schema of its own on the one database. PGlite
    // has one session, so the tests that hold two transactions open at once
    // would wait for ever: `concurrentTransactions: false` skips them.
    const target: ContractTarget = {
      name: "PostgresStore on embedded PGlite",
      concurrentTransactions: false,
      open() {
        const schema = uniqueSchema("herald_e");
        return Promise.resolve({
          store: new PostgresStore({ sql: db.sql, schema }),
          async cleanup() {
            await driver(db).unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          },
        });
      },
    };
    storeContract(target);

    it("a committed enqueue wakes a store listener (LISTEN/NOTIFY on its own connection)", async () => {
      let connected!: () => void;
      let notified!: () => void;
      const onConnect = new Promise<void>((resolve) => (connected = resolve));
      const onNotify = new Promise<void>((resolve) => (notified = resolve));
      const sub = await db.store.listen({
        onNotify: () => notified(),
        onConnect: () => connected(),
      });
      try {
        await onConnect;
        await db.store.enqueue({ kind: "wake" }, [{ channel: "log", destination: "x" }]);
        await onNotify;
      } finally {
        await sub.close();
      }
    });

    it("sql.listen receives a NOTIFY only once its transaction commits", async () => {
      const got: string[] = [];
      let arrived!: () => void;
      const delivered = new Promise<void>((resolve) => (arrived = resolve));
      const sub = await driver(db).listen("embedded_test", (payload) => {
        got.push(payload);
        arrived();
      });
      try {
        await driver(db).begin(async (tx) => {
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

    it("a query waits for an open transaction instead of interleaving with it", async () => {
      await db.store.enqueue({ kind: "k" }, [{ channel: "log", destination: "x" }]);
      const order: string[] = [];
      let waiting: Promise<unknown> | undefined;
      await db.store.transaction(async (tx) => {
        const [route] = await tx.claimDue({ limit: 1, exclude: [] });
        waiting = db.store.enqueue({ kind: "during" }, [{ channel: "log", destination: "y" }])
          .then(() => order.push("enqueue"));
        await tx.finalise([rec(route!.id, { status: "sent", attempts: 1 })]);
        order.push("transaction");
      });
      await waiting;
      assert.deepEqual(order, ["transaction", "enqueue"]);
    });

    it("COPY FROM STDIN is refused with SQLSTATE 0A000 and the database lives on", async () => {
      await driver(db)`CREATE TEMP TABLE copy_target (n int)`;
      await assert.rejects(
        driver(db)`COPY copy_target FROM STDIN`.writable(),
        (err: unknown) => (err as { code?: string }).code === "0A000",
      );
      const [row] = await driver(db)`SELECT 42 AS n`;
      assert.equal(row?.["n"], 42);
    });

    it("a failed transaction rolls back and the session is usable again", async () => {
      await assert.rejects(
        driver(db).begin(async (tx) => {
          await tx`CREATE TABLE rolled_back (n int)`;
          await tx`SELECT 1/0`;
        }),
        (err: unknown) => (err as { code?: string }).code === "22012",
      );
      const [row] = await driver(db)`SELECT to_regclass('rolled_back') IS NULL AS gone`;
      assert.equal(row?.["gone"], true);
    });
  });

  describe("open and close", () => {
    it("creates the directory and its parents, reporting it; a reopen reports opening", async () => {
      const progress = await ensureCreated();
      assert.deepEqual(progress, [
        `creating the embedded database in ${dataDir} (first run, takes a few seconds)…`,
      ]);
      assert.ok(existsSync(join(dataDir, "PG_VERSION")));
      assert.ok(!existsSync(`${dataDir}.lock`), "the lock file is removed on close");
      const messages: string[] = [];
      const db = await openEmbedded({ dataDir, onProgress: (m) => messages.push(m) });
      await db.close();
      assert.deepEqual(messages, [`opening the embedded database in ${dataDir}…`]);
    });

    it("keeps data across close and reopen", async () => {
      await ensureCreated();
      let db = await openEmbedded({ dataDir, schema: "herald_persist" });
      await db.store.migrate();
      const { routeIds } = await db.store.enqueue({ kind: "k", payload: { n: 1 } }, [
        { channel: "log", destination: "x" },
      ]);
      await db.close();
      db = await openEmbedded({ dataDir, schema: "herald_persist" });
      try {
        assert.equal((await db.store.getRoute(routeIds[0]!))?.status, "queued");
      } finally {
        await db.close();
      }
    });

    it("close is safe to call twice, and queries after it are refused", async () => {
      await ensureCreated();
      const db = await openEmbedded({ dataDir });
      await driver(db)`SELECT 1`;
      await Promise.all([db.close(), db.close()]);
      await db.close();
      await assert.rejects(db.store.getRoute(crypto.randomUUID()));
    });

    it("an abort during the open closes what it opened and releases the lock", async () => {
      await ensureCreated();
      const stop = new AbortController();
      const reason = new Error("stop opening");
      await assert.rejects(
        openEmbedded({ dataDir, signal: stop.signal, onProgress: () => stop.abort(reason) }),
        (err: unknown) => err === reason,
      );
      assert.ok(!existsSync(`${dataDir}.lock`));
      const db = await openEmbedded({ dataDir });
      await db.close();
    });

    it("refuses a directory that holds something other than a database", async () => {
      const dir = join(root, "project");
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
        openEmbedded({ dataDir: join(root, "never", "data"), schema: "Bad-Name" }),
        (err: unknown) => err instanceof InvalidArgumentError && err.field === "schema",
      );
      const reason = new Error("aborted before");
      await assert.rejects(
        openEmbedded({ dataDir: join(root, "never", "data"), signal: AbortSignal.abort(reason) }),
        (err: unknown) => err === reason,
      );
      assert.ok(!existsSync(join(root, "never")));
    });
  });

  describe("the data directory lock", () => {
    it("refuses a second open in the same process, naming this process", async () => {
      await ensureCreated();
      const db = await openEmbedded({ dataDir });
      try {
        await assert.rejects(
          openEmbedded({ dataDir }),
          isLocked(new RegExp(`in use by process ${process.pid} \\(this process\\) on host `)),
        );
      } finally {
        await db.close();
      }
      const again = await openEmbedded({ dataDir });
      await again.close();
    });

    it("refuses a second process, naming its pid, until it closes", async () => {
      await ensureCreated();
      const holder = startHolder(dataDir);
      try {
        const [, pid] = (await holder.ready).split(" ");
        await assert.rejects(
          openEmbedded({ dataDir }),
          isLocked(new RegExp(`in use by process ${pid} on host .* since \\d{4}-.*\\.lock\\)`)),
        );
        holder.child.stdin!.end();
        await holder.line(/^closed$/);
      } finally {
        await holder.exited;
      }
      const db = await openEmbedded({ dataDir });
      await db.close();
    });

    it("takes over the lock of a process that was killed, and its committed data is there", async () => {
      const dir = await copyOfDatabase("killed");
      const holder = startHolder(dir);
      let routeId: string | undefined;
      try {
        routeId = (await holder.ready).split(" ")[2];
        holder.child.kill("SIGKILL");
      } finally {
        await holder.exited;
      }
      assert.ok(existsSync(`${dir}.lock`), "a killed process leaves its lock behind");
      const db = await openEmbedded({ dataDir: dir });
      try {
        assert.equal((await db.store.getRoute(routeId!))?.status, "queued");
      } finally {
        await db.close();
      }
    });

    it("respects a fresh lock from another host and takes over one whose heartbeat stopped", async () => {
      const dir = join(root, "remote", "data");
      const lockFile = `${dir}.lock`;
      mkdirSync(join(root, "remote"), { recursive: true });
      const since = "2026-01-01T00:00:00.000Z";
      writeFileSync(lockFile, JSON.stringify({ pid: 1, host: "elsewhere", since, token: "t" }));
      await assert.rejects(
        acquireDataDirLock(dir),
        isLocked(/in use by process 1 on host elsewhere since 2026-01-01T00:00:00.000Z/),
      );
      const old = new Date(Date.now() - 5 * 60_000);
      utimesSync(lockFile, old, old);
      const lock = await acquireDataDirLock(dir);
      assert.equal(JSON.parse(readFileSync(lockFile, "utf8")).pid, process.pid);
      await lock.release();
      await lock.release();
      assert.ok(!existsSync(lockFile));
    });

    it("a pid alone is no proof: a live process that is not the holder does not keep the lock", async (t) => {
      const parent = process.ppid; // alive, on this host, and never the holder of this lock
      const started = processStart(parent);
      if (started === undefined) return t.skip("no /proc: process starts cannot be read here");
      const dir = join(root, "recycled", "data");
      const lockFile = `${dir}.lock`;
      mkdirSync(join(root, "recycled"), { recursive: true });
      const since = "2026-01-01T00:00:00.000Z";
      const lockOf = (fields: object) =>
        JSON.stringify({ pid: parent, host: hostname(), since, token: "t", ...fields });
      // The holder as recorded is the process with that pid now: the lock holds.
      writeFileSync(lockFile, lockOf({ started }));
      await assert.rejects(acquireDataDirLock(dir), isLocked(new RegExp(`process ${parent}`)));
      // Same pid, another start (a restarted container's recycled pid): taken over.
      writeFileSync(lockFile, lockOf({ started: `${started}0` }));
      const lock = await acquireDataDirLock(dir);
      assert.equal(JSON.parse(readFileSync(lockFile, "utf8")).started, processStart(process.pid));
      await lock.release();
      // A lock of an older Herald (no start recorded) on a live pid: its heartbeat decides.
      writeFileSync(lockFile, lockOf({}));
      await assert.rejects(acquireDataDirLock(dir), isLocked(new RegExp(`process ${parent}`)));
      const old = new Date(Date.now() - 5 * 60_000);
      utimesSync(lockFile, old, old);
      await (await acquireDataDirLock(dir)).release();
      assert.ok(!existsSync(lockFile));
    });

    it("takes over an unreadable lock file, and release leaves another holder's lock alone", async () => {
      const dir = join(root, "debris", "data");
      const lockFile = `${dir}.lock`;
      mkdirSync(join(root, "debris"), { recursive: true });
      writeFileSync(lockFile, "not json");
      const lock = await acquireDataDirLock(dir);
      const theirs = JSON.stringify({ pid: 1, host: hostname(), since: "x", token: "theirs" });
      writeFileSync(lockFile, theirs);
      await lock.release();
      assert.equal(readFileSync(lockFile, "utf8"), theirs);
    });
  });
});

/** Runs tests/_helpers/embedded_holder.ts under the runtime running this test. */
function startHolder(dataDir: string): {
  child: ChildProcess;
  ready: Promise<string>;
  line(pattern: RegExp): Promise<string>;
  exited: Promise<void>;
} {
  const script = fileURLToPath(new URL("../_helpers/embedded_holder.ts", import.meta.url));
  const args = RUNTIME === "deno" ? ["run", "-A", script, dataDir] : [script, dataDir];
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve(line: string): void }[] = [];
  let stderr = "";
  let buffer = "";
  child.stderr!.on("data", (d) => (stderr += d));
  child.stdout!.on("data", (d) => {
    buffer += d.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    for (const l of parts) {
      lines.push(l);
      for (const w of waiters.filter((w) => w.pattern.test(l))) w.resolve(l);
    }
  });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const line = (pattern: RegExp): Promise<string> => {
    const seen = lines.find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiters.push({ pattern, resolve });
      exited.then(() => reject(new Error(`holder exited before ${pattern}; stderr: ${stderr}`)));
    });
  };
  return { child, ready: line(/^ready /), line, exited };
}
