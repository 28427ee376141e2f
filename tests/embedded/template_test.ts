/**
 * A new embedded database is a copy of embedded/template.tar.gz, made by
 * tests/embedded/make_template.ts with the pinned PGlite: it must be what
 * that PGlite would have made (same catalog), with 1 MB WAL segments and the
 * one database Herald uses; and an interrupted creation leaves nothing a
 * later open trips on.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TEMPLATE } from "../../embedded/_template.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { driver, embeddedFixture } from "./_fixture.ts";

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

  it("an interrupted creation leaves nothing a later open trips on", async () => {
    const parent = join(fx.root, "interrupted");
    const dir = join(parent, "data");
    // What a first run killed halfway leaves: its scratch copy beside the directory.
    mkdirSync(join(parent, "data.creating-0badf00d", "base"), { recursive: true });
    writeFileSync(join(parent, "data.creating-0badf00d", "PG_VERSION"), "18\n");
    const progress: string[] = [];
    const db = await fx.open({ dataDir: dir, onProgress: (m) => progress.push(m) });
    await db.close();
    assert.deepEqual(progress, [`creating the embedded database in ${dir} (first run)…`]);
    assert.deepEqual(readdirSync(parent).sort(), ["data"]);
    assert.ok(existsSync(join(dir, "PG_VERSION")));
  });
});
