/**
 * A new embedded database is a copy of a prepared one. Running initdb under
 * PGlite takes 10-20 s and up to 1 GB of memory (a second PGlite instance,
 * then a tar of the result in memory); unpacking `template.tar.gz` (made by
 * tests/embedded/make_template.ts with the pinned PGlite, 1 MB WAL segments)
 * takes a fraction of a second. It is unpacked beside the data directory and
 * renamed into place, so an interrupted first run never leaves half a
 * database behind.
 *
 * @module
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { HeraldError } from "../core/errors.ts";
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
 * Unpacks the template into `absolute` (which must not hold a database):
 * into a sibling directory first, then renamed into place. Throws
 * `HERALD_NO_SPACE` before writing when the disk cannot hold it.
 */
export async function createFromTemplate(
  template: Uint8Array,
  dataDir: string,
  absolute: string,
): Promise<void> {
  const entries = readTar(gunzipSync(template));
  const size = entries.reduce((n, e) => n + e.data.length, 0);
  checkSpace(dataDir, dirname(absolute), size + HEADROOM);
  const scratch = `${absolute}.creating-${crypto.randomUUID().slice(0, 8)}`;
  try {
    mkdirSync(scratch, { mode: 0o700 });
    const files = entries.filter((e) => !e.directory);
    for (const dir of new Set(files.map((e) => dirname(join(scratch, e.path))))) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    for (const e of entries.filter((e) => e.directory)) {
      mkdirSync(join(scratch, e.path), { recursive: true, mode: 0o700 });
    }
    // A few at a time: creating a file costs about a millisecond on some
    // disks, and the runtime's thread pool overlaps them.
    for (let i = 0; i < files.length; i += WRITES_AT_ONCE) {
      // All settled before a failure is thrown: the scratch directory goes next.
      const results = await Promise.allSettled(
        files.slice(i, i + WRITES_AT_ONCE)
          .map((e) => writeFile(join(scratch, e.path), e.data, { mode: 0o600 })),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    }
    // Only PostgreSQL's own names can be here (checked before): an empty
    // directory, or what a crashed first run of an older Herald left.
    rmSync(absolute, { recursive: true, force: true });
    renameSync(scratch, absolute);
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    if (err instanceof HeraldError) throw err;
    throw fsError(err, {
      dataDir,
      action: "create the embedded database",
      needBytes: size,
      at: dirname(absolute),
    });
  }
}

/** Removes what an interrupted creation left beside `absolute` (the caller holds the lock). */
export function removeDebris(absolute: string): void {
  const prefix = `${basename(absolute)}.creating-`;
  let names: string[];
  try {
    names = readdirSync(dirname(absolute));
  } catch {
    return;
  }
  for (const name of names.filter((n) => n.startsWith(prefix))) {
    rmSync(join(dirname(absolute), name), { recursive: true, force: true });
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
