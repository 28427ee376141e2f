/**
 * The embedded-database tests' fixture. Creating a database costs seconds,
 * so a test file creates one (on first use), shares it, and copies it for a
 * test that may break it. Everything lives under a temporary directory of the
 * file's own, made before its tests and removed after; every database opened through
 * {@link EmbeddedFixture.open} and every holder process is leak-checked.
 *
 * @module
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type postgres from "postgres";
import { HeraldError } from "../../core/errors.ts";
import { openEmbedded } from "../../embedded.ts";
import type { EmbeddedDatabase, EmbeddedOptions } from "../../embedded.ts";
import { track, trackClose } from "../_helpers/leaks.ts";
import { scriptArgs } from "../_helpers/spawn.ts";

/** A test file's databases. */
export interface EmbeddedFixture {
  /** The file's temporary directory (removed when the file ends). */
  readonly root: string;
  /** The shared database; nested, so the first open also shows that parents are created. */
  readonly dataDir: string;
  /** Creates the database once; resolves to the progress messages of that first open. */
  ensureCreated(): Promise<string[]>;
  /** A copy of the database in a directory of its own, for a test that may break it. */
  copyOfDatabase(name: string): Promise<string>;
  /** `openEmbedded(options)`, leak-checked. */
  open(options: EmbeddedOptions): Promise<EmbeddedDatabase>;
}

/**
 * Registers the file's fixture: its directory is made before the file's
 * tests and removed after them (nothing touches the disk at import).
 */
export function embeddedFixture(): EmbeddedFixture {
  let root: string | undefined;
  before(() => void (root = mkdtempSync(join(tmpdir(), "herald-embedded-"))));
  after(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });
  const rootDir = (): string => {
    if (root === undefined) throw new Error("the embedded fixture is used before its before() ran");
    return root;
  };
  const dataDir = (): string => join(rootDir(), "nested", "dirs", "data");
  const open = async (options: EmbeddedOptions): Promise<EmbeddedDatabase> =>
    trackClose("an embedded database", await openEmbedded(options));
  let created: Promise<string[]> | undefined;
  const ensureCreated = (): Promise<string[]> => {
    created ??= (async () => {
      const progress: string[] = [];
      const db = await open({ dataDir: dataDir(), onProgress: (m) => progress.push(m) });
      await driver(db)`SELECT 1`;
      await db.close();
      return progress;
    })();
    return created;
  };
  return {
    get root() {
      return rootDir();
    },
    get dataDir() {
      return dataDir();
    },
    ensureCreated,
    open,
    async copyOfDatabase(name) {
      await ensureCreated();
      const dir = join(rootDir(), name, "data");
      cpSync(dataDir(), dir, { recursive: true });
      return dir;
    },
  };
}

/**
 * Registers hooks giving the enclosing `describe` the shared database, open
 * (schema `herald_session`, migrated) for its tests; call the result inside them.
 */
export function useOpenDatabase(fixture: EmbeddedFixture): () => EmbeddedDatabase {
  let db: EmbeddedDatabase | undefined;
  before(async () => {
    await fixture.ensureCreated();
    db = await fixture.open({ dataDir: fixture.dataDir, schema: "herald_session" });
    await db.store.migrate();
  });
  after(async () => {
    await db?.close();
  });
  return () => db!;
}

/** The embedded handle with the driver's own type (the public API types it structurally). */
export function driver(db: EmbeddedDatabase): postgres.Sql {
  return db.sql as postgres.Sql;
}

/** Checks a rejection is `HERALD_LOCKED` with a message matching `pattern`. */
export function isLocked(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof HeraldError, `expected a HeraldError, got ${err}`);
    assert.equal(err.code, "HERALD_LOCKED");
    assert.match(err.message, pattern);
    return true;
  };
}

/** A second process holding a database (tests/_helpers/embedded_holder.ts). */
export interface Holder {
  readonly child: ChildProcess;
  /** Its `ready <pid> <routeId>` line. */
  readonly ready: Promise<string>;
  /** Resolves with the first line of its output matching `pattern`. */
  line(pattern: RegExp): Promise<string>;
  readonly exited: Promise<void>;
}

/** Runs tests/_helpers/embedded_holder.ts on `dataDir` under the runtime running this test. */
export function startHolder(dataDir: string): Holder {
  const script = fileURLToPath(new URL("../_helpers/embedded_holder.ts", import.meta.url));
  const [exe, args] = scriptArgs(script, [dataDir]);
  const child = spawn(exe, args, { stdio: ["pipe", "pipe", "pipe"] });
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
  let gone = false;
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  exited.then(() => void (gone = true));
  track("a holder process", () => gone ? undefined : `pid ${child.pid} still running`);
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
