/**
 * Looks before PGlite leaps: the data directory is checked before it is
 * opened (a file in its place, a directory of other things, no write access,
 * a database of another PostgreSQL), and when PGlite fails anyway the lines
 * Postgres wrote to its standard error say why.
 *
 * @module
 */
import { accessSync, constants, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { HeraldError, InvalidArgumentError } from "../core/errors.ts";
import { describeError } from "../core/_redact.ts";
import { fsError, noSpace, notADirectory, permissionDenied } from "./_fs_errors.ts";
import type { FsContext } from "./_fs_errors.ts";
import { PG_FILE, TEMPLATE } from "./_template.ts";

/** What is at the data directory's path. */
export type DirState = "new" | "database";

/**
 * Checks the data directory before the lock is taken, so a mistaken path
 * leaves nothing behind: throws the error that names the problem and the fix.
 */
export function checkDataDir(dataDir: string, absolute: string): DirState {
  const ctx = { dataDir, action: "open the embedded database" };
  let isDir: boolean;
  try {
    isDir = statSync(absolute).isDirectory();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ENOTDIR") throw notADirectory(dataDir, fileAbove(absolute));
    if (code !== "ENOENT") throw fsError(err, ctx);
    checkCreatable(dataDir, absolute);
    return "new";
  }
  if (!isDir) throw notADirectory(dataDir, dataDir);
  writable(ctx, absolute);
  writable(ctx, dirname(absolute)); // the lock file goes beside the directory
  let version: string;
  try {
    version = readFileSync(join(absolute, "PG_VERSION"), "utf8").trim();
  } catch {
    checkEmptyOrPartial(dataDir, absolute);
    return "new";
  }
  checkVersion(dataDir, absolute, version);
  writable(ctx, join(absolute, "global", "pg_control"));
  writable(ctx, join(absolute, "pg_wal"));
  return "database";
}

/** The segment size of the database's WAL (1 MB from the template, 16 MB before it). */
export function walSegmentBytes(absolute: string): number {
  try {
    const segment = readdirSync(join(absolute, "pg_wal")).find((n) => /^[0-9A-F]{24}$/.test(n));
    if (segment !== undefined) return statSync(join(absolute, "pg_wal", segment)).size;
  } catch {
    // Unreadable: the open will say so.
  }
  return 16 * 1024 * 1024;
}

/**
 * Why PGlite failed to open the database, from the lines Postgres wrote to
 * its standard error (PGlite itself only says "failed to initialize").
 */
export function openFailure(
  err: unknown,
  stderr: readonly string[],
  dataDir: string,
  absolute: string,
): Error {
  const ctx: FsContext = { dataDir, action: "open the embedded database" };
  const line = (pattern: RegExp): string | undefined => stderr.find((l) => pattern.test(l));
  const fileIn = (l: string): string => {
    const quoted = /"([^"]+)"/.exec(l)?.[1];
    return quoted === undefined ? dataDir : quoted.startsWith("/") ? quoted : join(dataDir, quoted);
  };
  const full = line(/No space left on device|Disk quota exceeded/i);
  if (full !== undefined) {
    const segment = walSegmentBytes(absolute);
    // Opening may have to make a new WAL segment (and a few small files).
    return noSpace({ ...ctx, needBytes: segment + (1 << 20) }, fileIn(full), err);
  }
  const readOnly = line(/Read-only file system/i);
  if (readOnly !== undefined) return permissionDenied(ctx, fileIn(readOnly), true, err);
  const denied = line(/Permission denied/i);
  if (denied !== undefined) return permissionDenied(ctx, fileIn(denied), false, err);
  if (line(/incompatible with server|initialized by PostgreSQL version/i) !== undefined) {
    return incompatible(dataDir, (stderr.find((l) => /DETAIL/.test(l)) ?? "").trim(), err);
  }
  const fatal = stderr.filter((l) => /\b(FATAL|PANIC|ERROR)\b/.test(l)).pop();
  const cause = fatal === undefined
    ? describeError(err)
    : fatal.replace(/^.*?\b(FATAL|PANIC|ERROR):\s*/, "$1: ").replace(/\s+/g, " ").trim();
  return new HeraldError(
    "HERALD_STORE",
    `Cannot open the embedded database at ${dataDir}: ${cause}`,
    { cause: err },
  );
}

function checkVersion(dataDir: string, absolute: string, major: string): void {
  if (major !== TEMPLATE.postgresMajor) {
    const newer = Number(major) > Number(TEMPLATE.postgresMajor);
    throw incompatible(dataDir, `it was written by PostgreSQL ${major}${newer ? " (newer)" : ""}`);
  }
  let catalog: number;
  try {
    const control = readFileSync(join(absolute, "global", "pg_control"));
    catalog = new DataView(control.buffer, control.byteOffset, control.byteLength)
      .getUint32(12, true);
  } catch {
    return; // unreadable: PGlite will say why
  }
  if (catalog !== TEMPLATE.catalogVersion) {
    const newer = catalog > TEMPLATE.catalogVersion;
    throw incompatible(
      dataDir,
      `its catalog version is ${catalog}${newer ? " (newer)" : " (older)"}`,
    );
  }
}

/** `HERALD_INCOMPATIBLE`: a database written by another PostgreSQL or PGlite. */
function incompatible(dataDir: string, detail: string, cause?: unknown): HeraldError {
  return new HeraldError(
    "HERALD_INCOMPATIBLE",
    `Cannot open the embedded database at ${dataDir}: ${
      detail || "it was written by another " +
        "PostgreSQL"
    }; this Herald runs PGlite ${TEMPLATE.pglite} (PostgreSQL ` +
      `${TEMPLATE.postgresMajor}, catalog version ${TEMPLATE.catalogVersion}). Open it with the ` +
      "Herald that wrote it (export with 'herald routes --json'), or start afresh in another " +
      "--data-dir (HERALD_DATA_DIR)",
    cause === undefined ? undefined : { cause },
  );
}

/** Refuses to create the database in a directory that holds other things: a wrong `dataDir`. */
function checkEmptyOrPartial(dataDir: string, absolute: string): void {
  const foreign = readdirSync(absolute).find((name) => !PG_FILE.test(name));
  if (foreign !== undefined) {
    throw new InvalidArgumentError(
      "dataDir",
      `${dataDir} is not an embedded database (it holds ${JSON.stringify(foreign)}); ` +
        "give an empty or new directory",
    );
  }
}

/** A new directory: its nearest existing ancestor must be a directory we may write to. */
function checkCreatable(dataDir: string, absolute: string): void {
  const ctx = { dataDir, action: "create the embedded database" };
  for (let dir = dirname(absolute);; dir = dirname(dir)) {
    let isDir: boolean;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      if (dirname(dir) === dir) return;
      continue;
    }
    if (!isDir) throw notADirectory(dataDir, dir);
    writable(ctx, dir);
    return;
  }
}

function writable(ctx: FsContext, path: string): void {
  try {
    accessSync(path, constants.W_OK);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ENOENT") return;
    throw fsError(Object.assign(err as object, { path }), ctx);
  }
}

/** The first ancestor of `absolute` that is a file. */
function fileAbove(absolute: string): string {
  for (let dir = dirname(absolute); dirname(dir) !== dir; dir = dirname(dir)) {
    try {
      if (!statSync(dir).isDirectory()) return dir;
    } catch {
      // Missing: look higher.
    }
  }
  return absolute;
}
