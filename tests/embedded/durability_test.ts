/**
 * What the embedded database promises about the disk: fsync on by default,
 * with commits that really call fsync (Emscripten's NODEFS has none of its
 * own: Herald adds it), off when asked; server settings that keep it light;
 * and vacuums and checkpoints, which single-user Postgres never runs by
 * itself, once the WAL since the last checkpoint passes a limit.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PGlite } from "@electric-sql/pglite";
import { durableNodeFs, startParams } from "../../embedded/_settings.ts";
import { checkpointIfDue, walSinceCheckpoint } from "../../embedded/_checkpoint.ts";
import { checkLeaks, trackClose } from "../_helpers/leaks.ts";
import { driver, embeddedFixture } from "./_fixture.ts";

checkLeaks();
const fx = embeddedFixture();

async function settings(fsync: boolean | undefined): Promise<Record<string, string>> {
  const dir = await fx.copyOfDatabase(`settings-${fsync}`);
  const db = await fx.open({ dataDir: dir, ...(fsync === undefined ? {} : { fsync }) });
  try {
    const rows = await driver(db)`
      SELECT name, setting FROM pg_settings
      WHERE name IN ('fsync', 'wal_sync_method', 'shared_buffers', 'synchronous_commit')`;
    return Object.fromEntries(rows.map((r) => [r["name"], r["setting"]]));
  } finally {
    await db.close();
  }
}

describe("embedded database: durability", () => {
  it("fsync is on by default, through fsync(); off when asked, commits still synchronous", async () => {
    assert.deepEqual(await settings(undefined), {
      fsync: "on",
      wal_sync_method: "fsync",
      shared_buffers: "2048", // 8 kB pages: 16 MB
      synchronous_commit: "on",
    });
    const off = await settings(false);
    assert.equal(off["fsync"], "off");
    assert.equal(off["synchronous_commit"], "on", "a killed process still loses nothing");
  });

  it("a commit calls the real fsync before it returns; a read does not", async () => {
    const dir = await fx.copyOfDatabase("fsync-calls");
    let calls = 0;
    const db = trackClose(
      "a PGlite",
      await PGlite.create({
        dataDir: dir,
        startParams: startParams(PGlite.defaultStartParams, true),
        extensions: { heraldFsync: durableNodeFs(() => void calls++) },
      }),
    );
    try {
      await db.exec("CREATE TABLE IF NOT EXISTS synced (n int)");
      const before = calls;
      await db.query("INSERT INTO synced VALUES (1)");
      assert.ok(calls > before, `fsync calls: ${before} before the commit, ${calls} after`);
      const afterCommit = calls;
      await db.query("SELECT count(*) FROM synced");
      assert.equal(calls, afterCommit);
    } finally {
      await db.close();
    }
  });

  it("vacuums and checkpoints once the WAL since the last checkpoint passes the limit", async () => {
    const dir = await fx.copyOfDatabase("checkpoint");
    const db = await fx.open({ dataDir: dir });
    try {
      const sql = driver(db);
      await sql`CREATE TABLE wal_filler (n int, pad text)`;
      await sql`INSERT INTO wal_filler SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`;
      const written = await walSinceCheckpoint(sql);
      assert.ok(written > 2 * 1024 * 1024, `${written} bytes of WAL`);
      assert.equal(await checkpointIfDue(sql, written + 1), false, "under the limit");
      assert.equal(await checkpointIfDue(sql, 1024 * 1024), true);
      assert.ok(await walSinceCheckpoint(sql) < 1024 * 1024);
      await sql`SELECT pg_stat_force_next_flush()`;
      const [stats] = await sql`SELECT vacuum_count::int AS n FROM pg_stat_user_tables
        WHERE relname = 'wal_filler'`;
      assert.equal(stats?.["n"], 1, "vacuumed first");
    } finally {
      await db.close();
    }
  });
});
