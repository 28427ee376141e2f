/**
 * The embedded database when the disk says no: each condition is made for
 * real (a file in the directory's place, a directory of another user, a full
 * tmpfs, a database of a newer PostgreSQL) and each refusal is a HeraldError
 * with a stable code whose message names the cause and the fix; never
 * `[object Object]`, never a bare `EACCES`. Opens that must be refused for an
 * unprivileged user run in a child process as `nobody`; a condition that
 * cannot be made here is skipped, saying why.
 */
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { HeraldError, InvalidArgumentError } from "../../core/errors.ts";
import { openEmbedded } from "../../embedded.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import { embeddedFixture } from "./_fixture.ts";
import {
  fill,
  giveToNobody,
  mountTmpfs,
  noOtherUser,
  openInChild,
  traversable,
} from "./_conditions.ts";
import type { ChildOutcome } from "./_conditions.ts";

checkLeaks();
const fx = embeddedFixture();

/** A rejection that is a HeraldError with `code`, its message matching every pattern. */
function refused(code: string, ...patterns: RegExp[]): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof HeraldError, `expected a HeraldError, got ${err}`);
    checkOutcome({ code: err.code, message: err.message }, code, ...patterns);
    return true;
  };
}

function checkOutcome(outcome: ChildOutcome, code: string, ...patterns: RegExp[]): void {
  assert.equal(outcome.code, code, outcome.message ?? JSON.stringify(outcome));
  for (const p of patterns) assert.match(outcome.message ?? "", p);
  assert.doesNotMatch(outcome.message ?? "", /\[object Object\]|^E[A-Z]+:/);
}

/** A copy of the shared database in a directory of its own, its parents open to other users. */
async function copy(name: string): Promise<string> {
  const dir = await fx.copyOfDatabase(name);
  traversable(fx.root, join(fx.root, name));
  return dir;
}

function skipWithout(t: TestContext, reason: string | undefined): boolean {
  if (reason === undefined) return false;
  t.skip(reason);
  return true;
}

describe("embedded database: a path that is not a directory", () => {
  it("refuses a file in the directory's place, and a file above it, leaving no lock", async () => {
    const file = join(fx.root, "afile");
    writeFileSync(file, "not a database");
    await assert.rejects(openEmbedded({ dataDir: file }), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError);
      assert.equal(err.field, "dataDir");
      assert.match(err.message, /afile is a file; give the path of a directory/);
      return true;
    });
    await assert.rejects(openEmbedded({ dataDir: join(file, "data") }), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError);
      assert.match(err.message, /afile is a file, not a directory/);
      return true;
    });
    assert.ok(!existsSync(`${file}.lock`));
    assert.equal(readFileSync(file, "utf8"), "not a database");
  });
});

describe("embedded database: permission denied", () => {
  it("names the directory, its owner and the user when the data directory is not theirs", async (t) => {
    if (skipWithout(t, noOtherUser())) return;
    const dir = await copy("others");
    chmodSync(dir, 0o755);
    checkOutcome(
      await openInChild(dir, true),
      "HERALD_PERMISSION_DENIED",
      /user nobody \(uid \d+\) may not write to .*others\/data \(owned by uid 0, mode 0755\)/,
      /run Herald as its owner, give this user write access/,
    );
  });

  it("a read-only directory of their own: says to make it writable", async (t) => {
    if (skipWithout(t, noOtherUser())) return;
    const dir = await copy("readonly");
    giveToNobody(join(fx.root, "readonly"));
    chmodSync(dir, 0o555);
    checkOutcome(
      await openInChild(dir, true),
      "HERALD_PERMISSION_DENIED",
      /may not write to .*readonly\/data \(owned by uid 65534, mode 0555\)/,
      /make it writable \(chmod -R u\+w /,
    );
  });

  it("a read-only parent, where the lock file goes: names the parent, no bare EACCES", async (t) => {
    if (skipWithout(t, noOtherUser())) return;
    const dir = await copy("lockless");
    giveToNobody(dir); // the database is theirs, its parent (root's, 0755) is not
    checkOutcome(
      await openInChild(dir, true),
      "HERALD_PERMISSION_DENIED",
      /may not write to .*lockless \(owned by uid 0, mode 0755\)/,
    );
    assert.deepEqual(readdirSync(join(fx.root, "lockless")), ["data"]);
  });

  it("a read-only file inside: the file Postgres could not open, from its own error", async (t) => {
    if (skipWithout(t, noOtherUser())) return;
    const dir = await copy("onefile");
    giveToNobody(join(fx.root, "onefile"));
    chmodSync(join(dir, "global", "1262"), 0o444); // pg_database, read at every start
    checkOutcome(
      await openInChild(dir, true),
      "HERALD_PERMISSION_DENIED",
      /may not write to .*onefile\/data\/global\/1262 \(owned by uid 65534, mode 0444\)/,
    );
  });
});

describe("embedded database: no space left", () => {
  it("on the first open: says how much it needs, and leaves nothing behind", async (t) => {
    const disk = mountTmpfs(join(fx.root, "small"), "size=4m");
    if (skipWithout(t, typeof disk === "string" ? disk : undefined)) return;
    const { path, close } = disk as Exclude<typeof disk, string>;
    try {
      await assert.rejects(
        openEmbedded({ dataDir: join(path, "data") }),
        refused("HERALD_NO_SPACE", /small \(4\.0 MB free; it needs about \d+\.\d MB\)/),
      );
      assert.deepEqual(readdirSync(path), []);
    } finally {
      close();
    }
  });

  it("out of inodes halfway through creating it: no half-made database", async (t) => {
    const disk = mountTmpfs(join(fx.root, "inodes"), "size=64m,nr_inodes=100");
    if (skipWithout(t, typeof disk === "string" ? disk : undefined)) return;
    const { path, close } = disk as Exclude<typeof disk, string>;
    try {
      await assert.rejects(
        openEmbedded({ dataDir: join(path, "data") }),
        refused("HERALD_NO_SPACE", /MB free but no free inodes, or a quota reached/),
      );
      assert.deepEqual(readdirSync(path), []);
    } finally {
      close();
    }
  });

  it("under an existing database: Postgres's own failure, named; it opens once there is room", async (t) => {
    const disk = mountTmpfs(join(fx.root, "full", "data"), "size=16m");
    if (skipWithout(t, typeof disk === "string" ? disk : undefined)) return;
    const { path, close } = disk as Exclude<typeof disk, string>;
    try {
      await fx.ensureCreated();
      cpSync(fx.dataDir, path, { recursive: true });
      const filler = fill(path);
      await assert.rejects(
        openEmbedded({ dataDir: path }),
        refused(
          "HERALD_NO_SPACE",
          /no space left on the device holding .*full\/data\//,
          /\(0\.0 MB free; it needs about 2\.0 MB\)/,
        ),
      );
      rmSync(filler);
      const db = await fx.open({ dataDir: path });
      await db.close();
    } finally {
      close();
    }
  });
});

describe("embedded database: a file size limit", () => {
  it("ulimit -f: names the limit; Deno is killed by SIGXFSZ instead, and the next open cleans up", async () => {
    const parent = join(fx.root, "ulimit");
    mkdirSync(parent);
    const dir = join(parent, "data");
    const outcome = await openInChild(dir, false, 500); // the template's WAL segment is 1 MB
    if (RUNTIME === "deno") {
      // Deno does not ignore SIGXFSZ, and a library may not install a handler for it.
      assert.ok(outcome.exit !== undefined, JSON.stringify(outcome));
    } else {
      checkOutcome(
        outcome,
        "HERALD_NO_SPACE",
        /passed this process's file size limit \(ulimit -f\)/,
      );
    }
    const db = await fx.open({ dataDir: dir });
    await db.close();
    assert.deepEqual(readdirSync(parent).sort(), ["data"]);
  });
});

describe("embedded database: written by another PostgreSQL", () => {
  it("a newer PostgreSQL major version is refused before PGlite starts", async () => {
    const dir = await copy("major");
    writeFileSync(join(dir, "PG_VERSION"), "19\n");
    await assert.rejects(
      openEmbedded({ dataDir: dir }),
      refused("HERALD_INCOMPATIBLE", /written by PostgreSQL 19 \(newer\)/, /runs PGlite \d/),
    );
    assert.ok(!existsSync(`${dir}.lock`));
  });

  it("a newer PGlite (catalog version) is refused, naming both versions", async () => {
    const dir = await copy("catalog");
    const file = join(dir, "global", "pg_control");
    const control = readFileSync(file);
    const view = new DataView(control.buffer, control.byteOffset, control.byteLength);
    view.setUint32(12, view.getUint32(12, true) + 1, true);
    writeFileSync(file, control);
    await assert.rejects(
      openEmbedded({ dataDir: dir }),
      refused("HERALD_INCOMPATIBLE", /catalog version is \d+ \(newer\).*catalog version \d+\)/),
    );
  });

  it("any other failure carries Postgres's own words", async () => {
    const dir = await copy("corrupt");
    const file = join(dir, "global", "pg_control");
    const control = readFileSync(file);
    control[100] = control[100]! ^ 0xff;
    writeFileSync(file, control);
    await assert.rejects(
      openEmbedded({ dataDir: dir }),
      refused("HERALD_STORE", /: FATAL: incorrect checksum in control file$/),
    );
  });
});

describe("embedded database: the data directory's parent", () => {
  it("creates missing parents for a new database", async () => {
    const dir = join(fx.root, "fresh", "a", "b", "data");
    mkdirSync(join(fx.root, "fresh"));
    const db = await fx.open({ dataDir: dir });
    await db.close();
    assert.ok(existsSync(join(dir, "PG_VERSION")));
  });
});
