/**
 * What went wrong with the disk, in words: a file system error (ours or the
 * one Postgres wrote to its standard error) turned into a HeraldError that
 * names the cause, the path, and what to do. Never `[object Object]`, never
 * a bare `EACCES`.
 *
 * @module
 */
import { statfsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import process from "node:process";
import { userInfo } from "node:os";
import { HeraldError, InvalidArgumentError } from "../core/errors.ts";
import { describeError } from "../core/_redact.ts";

/** What the caller was doing, for the message. */
export interface FsContext {
  /** The data directory as the user spelled it. */
  readonly dataDir: string;
  /** "open the embedded database", "take the lock", ... */
  readonly action: string;
  /** How much free space the action needs, when known. */
  readonly needBytes?: number;
  /** The path to name instead of the one in the error (a scratch path means nothing to the user). */
  readonly at?: string;
}

const PERMISSION = new Set(["EACCES", "EPERM", "EROFS"]);
const NO_SPACE = new Set(["ENOSPC", "EDQUOT"]);

/** A file system error as a HeraldError (or the InvalidArgumentError of a path that is a file). */
export function fsError(err: unknown, ctx: FsContext): Error {
  const code = (err as { code?: unknown } | null)?.code;
  const path = (err as { path?: unknown } | null)?.path;
  const at = ctx.at ?? (typeof path === "string" ? path : ctx.dataDir);
  if (typeof code === "string" && PERMISSION.has(code)) {
    return permissionDenied(ctx, at, code === "EROFS", err);
  }
  if (typeof code === "string" && NO_SPACE.has(code)) return noSpace(ctx, at, err);
  if (code === "EFBIG") {
    return new HeraldError(
      "HERALD_NO_SPACE",
      `Cannot ${ctx.action} at ${ctx.dataDir}: writing ${at} passed this process's file size ` +
        "limit (ulimit -f); raise it (ulimit -f unlimited) or run Herald without one",
      { cause: err },
    );
  }
  if (code === "ENOTDIR" || code === "EEXIST") return notADirectory(ctx.dataDir, at);
  return new HeraldError(
    "HERALD_STORE",
    `Cannot ${ctx.action} at ${ctx.dataDir}: ${describeError(err)}`,
    { cause: err },
  );
}

/** `HERALD_PERMISSION_DENIED`, naming the path, its owner and mode, and who we are. */
export function permissionDenied(
  ctx: FsContext,
  path: string,
  readOnlyFs = false,
  cause?: unknown,
): HeraldError {
  const owner = ownerOf(path);
  const mine = owner !== undefined && owner.uid === currentUid();
  const why = readOnlyFs
    ? `${path} is on a read-only file system`
    : `${whoAmI()} may not write to ${path}${owner === undefined ? "" : ` (${owner.text})`}`;
  const fix = readOnlyFs
    ? "choose a --data-dir (HERALD_DATA_DIR) on a writable file system"
    : mine
    ? `make it writable (chmod -R u+w ${ctx.dataDir}), or choose another --data-dir ` +
      "(HERALD_DATA_DIR)"
    : "run Herald as its owner, give this user write access (chown or chmod), " +
      "or choose another --data-dir (HERALD_DATA_DIR)";
  return new HeraldError(
    "HERALD_PERMISSION_DENIED",
    `Cannot ${ctx.action} at ${ctx.dataDir}: permission denied: ${why}; ${fix}`,
    cause === undefined ? undefined : { cause },
  );
}

/** `HERALD_NO_SPACE`: how much is free on the device, and how much is needed where that is known. */
export function noSpace(ctx: FsContext, path: string, cause?: unknown): HeraldError {
  const free = freeBytes(existingDir(path));
  const facts: string[] = [];
  if (free !== undefined) {
    const inodes = ctx.needBytes !== undefined && free >= ctx.needBytes
      ? " but no free inodes, or a quota reached"
      : "";
    facts.push(`${mb(free)} free${inodes}`);
  }
  if (ctx.needBytes !== undefined) facts.push(`it needs about ${mb(ctx.needBytes)}`);
  const shown = facts.length > 0 ? ` (${facts.join("; ")})` : "";
  return new HeraldError(
    "HERALD_NO_SPACE",
    `Cannot ${ctx.action} at ${ctx.dataDir}: no space left on the device holding ${path}` +
      `${shown}; free some space or choose another --data-dir (HERALD_DATA_DIR)`,
    cause === undefined ? undefined : { cause },
  );
}

/** Bytes free for this user on the filesystem holding `dir`, where the runtime tells. */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

/** A size for messages: `31.2 MB`. */
export function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** `path` if it is a directory, else its nearest existing ancestor. */
function existingDir(path: string): string {
  for (let dir = path;; dir = dirname(dir)) {
    try {
      if (statSync(dir).isDirectory()) return dir;
    } catch {
      // Missing: look higher.
    }
    if (dirname(dir) === dir) return dir;
  }
}

/** The InvalidArgumentError of a data directory that is a file, or lies under one. */
export function notADirectory(dataDir: string, file: string): InvalidArgumentError {
  const where = file === dataDir ? `${dataDir} is a file` : `${file} is a file, not a directory`;
  return new InvalidArgumentError(
    "dataDir",
    `${where}; give the path of a directory (created if missing), ` +
      "e.g. --data-dir ./.herald/data",
  );
}

/** "user nobody (uid 65534)", as far as the system tells. */
export function whoAmI(): string {
  const uid = currentUid();
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    name = undefined;
  }
  if (name === "unknown") name = undefined; // Bun, for root
  if (uid === undefined) return name ? `user ${name}` : "this user";
  return name ? `user ${name} (uid ${uid})` : `uid ${uid}`;
}

function currentUid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

function ownerOf(path: string): { uid: number; text: string } | undefined {
  try {
    const s = statSync(path);
    const mode = (s.mode & 0o777).toString(8).padStart(4, "0");
    return { uid: s.uid, text: `owned by uid ${s.uid}, mode ${mode}` };
  } catch {
    return undefined;
  }
}
