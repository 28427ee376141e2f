/**
 * The data-directory lock file on its own (no database): a fresh lock from
 * another host holds, a stale one is taken over, a pid alone proves nothing,
 * and an unreadable lock file is debris.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { acquireDataDirLock, processStart } from "../../embedded/_data_dir_lock.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { embeddedFixture, isLocked } from "./_fixture.ts";

checkLeaks();
const fx = embeddedFixture();

describe("the data directory lock: lock files", () => {
  it("respects a fresh lock from another host and takes over one whose heartbeat stopped", async () => {
    const dir = join(fx.root, "remote", "data");
    const lockFile = `${dir}.lock`;
    mkdirSync(join(fx.root, "remote"), { recursive: true });
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
    const dir = join(fx.root, "recycled", "data");
    const lockFile = `${dir}.lock`;
    mkdirSync(join(fx.root, "recycled"), { recursive: true });
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
    const dir = join(fx.root, "debris", "data");
    const lockFile = `${dir}.lock`;
    mkdirSync(join(fx.root, "debris"), { recursive: true });
    writeFileSync(lockFile, "not json");
    const lock = await acquireDataDirLock(dir);
    const theirs = JSON.stringify({ pid: 1, host: hostname(), since: "x", token: "theirs" });
    writeFileSync(lockFile, theirs);
    await lock.release();
    assert.equal(readFileSync(lockFile, "utf8"), theirs);
  });
});
