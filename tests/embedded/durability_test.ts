/**
 * What the embedded database promises about the disk: fsync on by default,
 * with commits that really call fsync (Emscripten's NODEFS has none of its
 * own: Herald adds it), off when asked; server settings that keep it light;
 * and vacuums and checkpoints, which single-user Postgres never runs by
 * itself, by the WAL written.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PGlite } from "@electric-sql/pglite";
import { durableNodeFs, startParams } from "../../embedded/_settings.ts";
import { startMaintenance, walPosition } from "../../embedded/_checkpoint.ts";
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

  it("vacuums every 1 MB of WAL and at close; checkpoints (after VACUUM ANALYZE) every 16 MB", async () => {
    const dir = await fx.copyOfDatabase("maintenance");
    const db = await fx.open({ dataDir: dir });
    try {
      const sql = driver(db);
      const vacuums = async (): Promise<number> => {
        await sql`SELECT pg_stat_force_next_flush()`;
        const [row] = await sql`SELECT vacuum_count::int AS n FROM pg_stat_user_tables
          WHERE relname = 'wal_filler'`;
        return row?.["n"] ?? 0;
      };
      const m = await startMaintenance(sql, { everyMs: 0 });
      await sql`CREATE TABLE wal_filler (n int, pad text)`;
      assert.equal(await m.run(), "nothing");
      await sql`INSERT INTO wal_filler SELECT g, repeat('x', 100) FROM generate_series(1, 12000) g`;
      const { sinceCheckpoint } = await walPosition(sql);
      assert.ok(sinceCheckpoint > 2 << 20 && sinceCheckpoint < 16 << 20, `${sinceCheckpoint}`);
      assert.equal(await m.run(), "vacuum");
      assert.equal(await vacuums(), 1);
      assert.equal(await m.run(), "nothing");
      await sql`UPDATE wal_filler SET pad = repeat('y', 100)`; // over 1 MB more, under 16 in all
      await m.stop();
      assert.equal(await vacuums(), 2, "vacuumed at close");
      await sql`INSERT INTO wal_filler SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g`;
      const big = await startMaintenance(sql, { everyMs: 0 });
      assert.equal(await big.run(), "checkpoint");
      assert.ok((await walPosition(sql)).sinceCheckpoint < 1 << 20);
      await big.stop();
    } finally {
      await db.close();
    }
  });
});
