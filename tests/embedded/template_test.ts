/**
 * A new embedded database is a copy of embedded/template.tar.gz, made by
 * tests/embedded/make_template.ts with the pinned PGlite: it must be what
 * that PGlite would have made (same catalog), with 1 MB WAL segments and the
 * one database Herald uses; a creation killed halfway is cleared and redone;
 * and a data directory that is a mount point works.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TEMPLATE } from "../../embedded/_template.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { driver, embeddedFixture } from "./_fixture.ts";
import { mountTmpfs } from "./_conditions.ts";

checkLeaks();
const fx = embeddedFixture();

describe("embedded database: the template", () => {
  it("was made by the pinned PGlite: its catalog, 1 MB WAL segments, one database", async () => {
    const pinned = JSON.parse(
      readFileSync(
        new URL("../../node_modules/@electric-sql/pglite/package.json", import.meta.url),
        "utf8",
      ),
    ).version;
    assert.equal(TEMPLATE.pglite, pinned, "run tests/embedded/make_template.ts after an upgrade");
    await fx.ensureCreated();
    assert.equal(
      readFileSync(join(fx.dataDir, "PG_VERSION"), "utf8").trim(),
      TEMPLATE.postgresMajor,
    );
    const db = await fx.open({ dataDir: fx.dataDir });
    try {
      const [system] = await driver(db)`SELECT catalog_version_no FROM pg_control_system()`;
      assert.equal(system?.["catalog_version_no"], TEMPLATE.catalogVersion);
      const [segment] = await driver(db)`SELECT setting::int AS bytes FROM pg_settings
        WHERE name = 'wal_segment_size'`;
      assert.equal(segment?.["bytes"], TEMPLATE.walSegmentBytes);
      const names = await driver(db)`SELECT datname FROM pg_database ORDER BY 1`;
      assert.deepEqual(names.map((r) => r["datname"]), ["postgres"]);
    } finally {
      await db.close();
    }
  });

  it("a first run killed halfway leaves no database: the next open clears it and starts again", async () => {
    const dir = join(fx.root, "interrupted", "data");
    // What a first run killed halfway leaves: Postgres's files, no PG_VERSION.
    mkdirSync(join(dir, "base", "5"), { recursive: true });
    writeFileSync(join(dir, "base", "5", "1259"), "half");
    writeFileSync(join(dir, "postgresql.conf"), "half");
    const progress: string[] = [];
    const db = await fx.open({ dataDir: dir, onProgress: (m) => progress.push(m) });
    try {
      const [row] = await driver(db)`SELECT count(*)::int AS n FROM pg_class`;
      assert.ok((row?.["n"] ?? 0) > 100);
    } finally {
      await db.close();
    }
    assert.deepEqual(progress, [`creating the embedded database in ${dir} (first run)…`]);
    assert.ok(existsSync(join(dir, "PG_VERSION")));
  });

  it("a data directory that is a mount point (a container's volume) is created in place", async (t) => {
    const disk = mountTmpfs(join(fx.root, "volume", "data"), "size=64m");
    if (typeof disk === "string") return t.skip(disk);
    try {
      const db = await fx.open({ dataDir: disk.path });
      await db.close();
      assert.ok(existsSync(join(disk.path, "PG_VERSION")));
    } finally {
      disk.close();
    }
  });
});
