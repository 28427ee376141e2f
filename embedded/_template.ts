/**
 * A new embedded database is a copy of a prepared one. Running initdb under
 * PGlite takes 10-20 s and up to 1 GB of memory (a second PGlite instance,
 * then a tar of the result in memory); unpacking `template.tar.gz` (made by
 * tests/embedded/make_template.ts with the pinned PGlite, 1 MB WAL segments)
 * takes a fraction of a second. `PG_VERSION` is written last, so an
 * interrupted first run never leaves what looks like a database.
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { InvalidArgumentError } from "../core/errors.ts";
import { freeBytes, fsError, noSpace } from "./_fs_errors.ts";

/** What the template was made with; a test checks them against a database opened from it. */
export const TEMPLATE = {
  pglite: "0.5.17",
  postgresMajor: "18",
  catalogVersion: 202506291,
  walSegmentBytes: 1024 * 1024,
} as const;

/** Free space asked for beyond the unpacked files: the first WAL segments and the lock file. */
const HEADROOM = 4 * 1024 * 1024;

/** Files written at once while unpacking. */
const WRITES_AT_ONCE = 16;

/** One entry of the tarball. */
interface Entry {
  readonly path: string;
  readonly directory: boolean;
  readonly data: Uint8Array;
}

/** The template's bytes, or `undefined` where it was not shipped (a bundle that dropped it). */
export async function readTemplate(): Promise<Uint8Array | undefined> {
  const url = new URL("./template.tar.gz", import.meta.url);
  try {
    if (url.protocol === "file:") return readFileSync(fileURLToPath(url));
    const response = await fetch(url);
    return response.ok ? new Uint8Array(await response.arrayBuffer()) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Unpacks the template into `absolute` (which holds no database): in place,
 * so a directory that is a mount point (a container's volume) works, with
 * `PG_VERSION` written last, since its presence is what says "a database is
 * here": a failed first run removes what it wrote, and one killed halfway
 * leaves only Postgres's file names, which the next open clears. With `durable`, every file and
 * directory is synced before `PG_VERSION` is written, and it after. Throws
 * `HERALD_NO_SPACE` before writing when the disk cannot hold it.
 */
export async function createFromTemplate(
  template: Uint8Array,
  { dataDir, absolute, durable }: { dataDir: string; absolute: string; durable: boolean },
): Promise<void> {
  const entries = readTar(gunzipSync(template));
  const size = entries.reduce((n, e) => n + e.data.length, 0);
  checkSpace(dataDir, existingParent(absolute), size + HEADROOM);
  const existed = existsSync(absolute);
  clearPartial(dataDir, absolute);
  try {
    const dirs = new Set([absolute]);
    for (const e of entries) {
      dirs.add(e.directory ? join(absolute, e.path) : dirname(join(absolute, e.path)));
    }
    for (const dir of dirs) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files = entries.filter((e) => !e.directory && e.path !== "PG_VERSION");
    const version = entries.find((e) => e.path === "PG_VERSION");
    if (version === undefined) throw new Error("the embedded database template has no PG_VERSION");
    // A few at a time: creating a file costs about a millisecond on some
    // disks, and the runtime's thread pool overlaps them.
    for (let i = 0; i < files.length; i += WRITES_AT_ONCE) {
      // All settled before a failure is thrown: nothing may still be writing when it is.
      const results = await Promise.allSettled(
        files.slice(i, i + WRITES_AT_ONCE).map((e) => put(join(absolute, e.path), e.data, durable)),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    }
    if (durable) { for (const dir of dirs) await syncDir(dir); }
    await put(join(absolute, "PG_VERSION"), version.data, durable);
    if (durable) await syncDir(absolute);
  } catch (err) {
    try {
      // Leave things as they were: no half database for anyone to trip on.
      clearPartial(dataDir, absolute);
      if (!existed) rmSync(absolute, { recursive: true, force: true });
    } catch {
      // What is left has no PG_VERSION: the next open clears it.
    }
    throw fsError(err, {
      dataDir,
      action: "create the embedded database",
      needBytes: size,
      at: existingParent(absolute),
    });
  }
}

/** Names of the files a Postgres data directory holds (a crashed first run leaves some). */
export const PG_FILE =
  /^(PG_VERSION|base|global|pg_\w+|postgresql(\.auto)?\.conf|postmaster\.\w+)$/;

/** Removes what an interrupted first run left, refusing anything that is not Postgres's own. */
function clearPartial(dataDir: string, absolute: string): void {
  let names: string[];
  try {
    names = readdirSync(absolute);
  } catch {
    return; // not there yet
  }
  const foreign = names.find((name) => !PG_FILE.test(name));
  if (foreign !== undefined) {
    throw new InvalidArgumentError(
      "dataDir",
      `${dataDir} is not an embedded database (it holds ${JSON.stringify(foreign)}); ` +
        "give an empty or new directory",
    );
  }
  for (const name of names) rmSync(join(absolute, name), { recursive: true, force: true });
}

async function put(path: string, data: Uint8Array, durable: boolean): Promise<void> {
  const file = await open(path, "w", 0o600);
  try {
    await file.writeFile(data);
    if (durable) await file.sync();
  } finally {
    await file.close();
  }
}

/** Syncs a directory's entries, where the system can (not on Windows). */
async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch {
    // Directories cannot be synced here.
  } finally {
    await handle.close();
  }
}

/** `path`, or its nearest existing ancestor: where free space is counted. */
function existingParent(path: string): string {
  for (let dir = path;; dir = dirname(dir)) {
    try {
      if (statSync(dir).isDirectory()) return dir;
    } catch {
      // Missing: look higher.
    }
    if (dirname(dir) === dir) return dir;
  }
}

function checkSpace(dataDir: string, parent: string, need: number): void {
  const free = freeBytes(parent);
  if (free === undefined || free >= need) return;
  throw noSpace({ dataDir, action: "create the embedded database", needBytes: need }, parent);
}

/** Reads a ustar archive of plain files and directories (what make_template.ts writes). */
function readTar(tar: Uint8Array): Entry[] {
  const entries: Entry[] = [];
  const text = (from: number, length: number): string => {
    const raw = tar.subarray(from, from + length);
    const end = raw.indexOf(0);
    return new TextDecoder().decode(end < 0 ? raw : raw.subarray(0, end));
  };
  for (let pos = 0; pos + 512 <= tar.length;) {
    const name = text(pos, 100);
    if (name === "") break; // the two zero blocks that end the archive
    const size = parseInt(text(pos + 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(tar[pos + 156] ?? 0);
    const prefix = text(pos + 345, 155);
    const path = prefix ? `${prefix}/${name}` : name;
    if (path.split("/").includes("..") || path.startsWith("/")) {
      throw new Error(`the embedded database template holds an unsafe path: ${path}`);
    }
    const data = tar.subarray(pos + 512, pos + 512 + size);
    if (type === "5") entries.push({ path, directory: true, data: new Uint8Array(0) });
    else if (type === "0" || type === "\0") entries.push({ path, directory: false, data });
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}
