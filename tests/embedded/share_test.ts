/**
 * The embedded database reached from another process while this one holds
 * it (a worker running, `herald stats` in another terminal): the other
 * process goes through this one's socket, its writes wake this process's
 * listener, a transaction it leaves open is rolled back when it dies, and
 * `share: false` keeps the database to this process.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { openEmbedded } from "../../embedded.ts";
import type { EmbeddedDatabase } from "../../embedded.ts";
import { checkLeaks, track } from "../_helpers/leaks.ts";
import { scriptArgs } from "../_helpers/spawn.ts";
import { waitForLine } from "../_helpers/spawn.ts";
import { driver, embeddedFixture, isLocked } from "./_fixture.ts";

checkLeaks();
const fx = embeddedFixture();

interface Connected {
  readonly child: ReturnType<typeof spawn>;
  /** The first line of its output, parsed. */
  readonly first: Promise<unknown>;
  readonly exited: Promise<void>;
}

/** Runs tests/embedded/_connect_child.ts on `dataDir` under this runtime. */
function connectChild(dataDir: string, mode: "enqueue" | "hold"): Connected {
  const script = fileURLToPath(new URL("./_connect_child.ts", import.meta.url));
  const [exe, args] = scriptArgs(script, [dataDir, mode]);
  const child = spawn(exe, args, { stdio: ["ignore", "pipe", "pipe"] });
  let gone = false;
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  exited.then(() => void (gone = true));
  track("a connect child", () => gone ? undefined : `pid ${child.pid} still running`);
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const first = waitForLine(child.stdout!, /./).then(
    (line) => JSON.parse(line),
    (err) => Promise.reject(new Error(`${err}; stderr: ${stderr}`)),
  );
  return { child, first, exited };
}

async function openShared(dataDir: string): Promise<EmbeddedDatabase> {
  const db = await fx.open({ dataDir, schema: "herald_share" });
  await db.store.migrate();
  await driver(db)`CREATE TABLE IF NOT EXISTS herald_share_leftover (n int)`;
  return db;
}

describe("embedded database: reached through the process that holds it", () => {
  it("another process enqueues through this one, and the enqueue wakes our listener", async () => {
    const dir = await fx.copyOfDatabase("shared");
    const db = await openShared(dir);
    try {
      const lock = JSON.parse(readFileSync(`${dir}.lock`, "utf8"));
      assert.ok(existsSync(lock.socket), "the lock file names the socket");
      let notified!: () => void;
      let connected!: () => void;
      const onNotify = new Promise<void>((resolve) => (notified = resolve));
      const onConnect = new Promise<void>((resolve) => (connected = resolve));
      const sub = await db.store.listen({
        onNotify: () => notified(),
        onConnect: () => connected(),
      });
      try {
        await onConnect;
        const other = connectChild(dir, "enqueue");
        const said = await other.first as { through: number; routeId: string; queued: number };
        await other.exited;
        assert.equal(said.through, process.pid);
        assert.equal(said.queued, 1);
        await onNotify;
        assert.equal((await db.store.getRoute(said.routeId))?.status, "queued");
      } finally {
        await sub.close();
      }
    } finally {
      await db.close();
    }
    assert.ok(!existsSync(`${dir}.lock`));
  });

  it("a transaction left open by a process that dies is rolled back; ours go on", async () => {
    const dir = await fx.copyOfDatabase("killed-client");
    const db = await openShared(dir);
    try {
      const other = connectChild(dir, "hold");
      assert.equal(await other.first, "in-tx");
      other.child.kill("SIGKILL");
      await other.exited;
      const [row] = await driver(db)`SELECT count(*)::int AS n FROM herald_share_leftover`;
      assert.equal(row?.["n"], 0);
    } finally {
      await db.close();
    }
  });

  it("share: false keeps it to this process: another is refused, naming it", async () => {
    const dir = await fx.copyOfDatabase("private");
    const db = await fx.open({ dataDir: dir, share: false });
    try {
      const other = connectChild(dir, "enqueue");
      const said = await other.first as { code: string; message: string };
      await other.exited;
      assert.equal(said.code, "HERALD_LOCKED");
      assert.match(said.message, new RegExp(`in use by process ${process.pid} `));
      assert.doesNotMatch(said.message, /operator commands/);
    } finally {
      await db.close();
    }
  });

  it("in the holding process itself, connect is refused like any second open", async () => {
    await fx.ensureCreated();
    const db = await fx.open({ dataDir: fx.dataDir });
    try {
      await assert.rejects(
        openEmbedded({ dataDir: fx.dataDir, whenInUse: "connect" }),
        isLocked(/\(this process\)/),
      );
    } finally {
      await db.close();
    }
  });
});
