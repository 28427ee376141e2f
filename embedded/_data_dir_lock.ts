/**
 * An exclusive lock on the embedded database's data directory, so two
 * processes never open the same PGlite files (each would overwrite the
 * other's pages).
 *
 * The lock is a file next to the directory (`<dataDir>.lock`), not inside
 * it, so it never mixes with the database's own files. It names its holder
 * (pid, host, since) for the refusal message. A lock left by a crash is taken
 * over: on the same host when its pid is gone or now belongs to another
 * process (a pid alone is no proof: after a container restart an unrelated
 * process may have it, so the lock also records the process's start, read
 * from /proc, and compares it), and from another host (a shared volume), or
 * where the start cannot be read, when its heartbeat has stopped.
 *
 * @module
 */
import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { clearInterval, setInterval } from "node:timers";
import { HeraldError } from "../core/errors.ts";
import { fsError } from "./_fs_errors.ts";

/** A held lock. */
export interface DataDirLock {
  /** The lock file, as the caller spelled the data directory. */
  readonly path: string;
  /**
   * Names, in the lock file, the socket where this process serves the
   * database (see _share.ts); false when the file could not be rewritten.
   */
  advertise(socket: string): boolean;
  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

/** A live holder on this host that serves the database on a socket. */
export interface SharingHolder {
  readonly pid: number;
  readonly socket: string;
}

/** Who holds a lock, as written in the lock file. */
interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  readonly token: string;
  /** The process's start (boot id and start time), where the system tells it. */
  readonly started?: string;
  /** Where the holder serves the database to other processes of its user. */
  readonly socket?: string;
}

/** The holder refreshes the file's mtime this often, so other hosts can tell it is alive. */
const HEARTBEAT_MS = 10_000;
/** A lock from another host whose mtime is older than this is abandoned. */
const STALE_MS = 60_000;
/** A take-over lock older than this belongs to a process that died mid-take-over. */
const TAKEOVER_STALE_MS = 10_000;

/** Lock files this process holds (absolute path → token): the same pid is not proof of a crash. */
const held = new Map<string, string>();

/**
 * Takes the lock on `dataDir`, creating its parent directory if needed, or
 * throws `HERALD_LOCKED` naming the holder and the lock file.
 */
export async function acquireDataDirLock(dataDir: string): Promise<DataDirLock> {
  try {
    return await acquire(dataDir);
  } catch (err) {
    if (err instanceof HeraldError) throw err;
    throw fsError(err, { dataDir, action: "take the lock on the embedded database" });
  }
}

async function acquire(dataDir: string): Promise<DataDirLock> {
  const path = `${dataDir.replace(/[\\/]+$/, "")}.lock`;
  const file = `${resolve(dataDir)}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  const started = processStart(process.pid);
  const me: Holder = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    token: crypto.randomUUID(),
    ...(started === undefined ? {} : { started }),
  };
  for (let attempt = 0; attempt < 100; attempt++) {
    if (tryCreate(file, me)) return hold(path, file, me);
    const holder = readHolder(file);
    if (holder === "gone") continue; // released meanwhile
    // Lock files appear whole (hard link), so an unreadable one is debris, not a lock being taken
    // (but for the instant between create and write where hard links are missing).
    if (holder !== undefined && !isAbandoned(file, holder)) {
      throw lockedError(dataDir, path, holder);
    }
    if (!takeOver(file, holder)) await new Promise((r) => setTimeout(r, 20));
  }
  throw new HeraldError(
    "HERALD_LOCKED",
    `Cannot open the embedded database at ${dataDir}: could not take the lock ${path}; ` +
      "another process keeps taking it",
  );
}

/**
 * Creates the lock file atomically and complete: written aside, then
 * hard-linked into place, so no one ever reads a half-written lock. Where the
 * filesystem has no hard links, an exclusive create has to do.
 */
function tryCreate(file: string, me: Holder): boolean {
  const scratch = `${file}.${me.token}.tmp`;
  writeFileSync(scratch, JSON.stringify(me), { flag: "wx" });
  try {
    linkSync(scratch, file);
    return true;
  } catch (err) {
    const code = errorCode(err);
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "ENOSYS") throw err;
  } finally {
    unlinkSync(scratch);
  }
  try {
    writeFileSync(file, JSON.stringify(me), { flag: "wx" });
    return true;
  } catch (err) {
    if (errorCode(err) === "EEXIST") return false;
    throw err;
  }
}

/**
 * The holder of `dataDir`'s lock, if it is alive on this host and serves the
 * database on a socket; `undefined` otherwise (free, abandoned, remote, private).
 */
export function sharingHolder(dataDir: string): SharingHolder | undefined {
  const file = `${resolve(dataDir)}.lock`;
  let holder: Holder | undefined | "gone";
  try {
    holder = readHolder(file);
  } catch {
    return undefined;
  }
  if (typeof holder !== "object" || holder.socket === undefined) return undefined;
  if (holder.host !== hostname() || isAbandoned(file, holder)) return undefined;
  return { pid: holder.pid, socket: holder.socket };
}

function hold(path: string, file: string, me: Holder): DataDirLock {
  const { token } = me;
  held.set(file, token);
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(file, now, now);
    } catch {
      // Deleted by hand: nothing to keep alive.
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();
  let released = false;
  return {
    path,
    advertise(socket: string): boolean {
      if (released) return false;
      // Written aside and renamed over the lock, so a reader sees the old or the new whole.
      const scratch = `${file}.${token}.tmp`;
      try {
        writeFileSync(scratch, JSON.stringify({ ...me, socket }), { flag: "w" });
        renameSync(scratch, file);
        return true;
      } catch {
        rmSync(scratch, { force: true });
        return false;
      }
    },
    release(): Promise<void> {
      if (released) return Promise.resolve();
      released = true;
      clearInterval(heartbeat);
      held.delete(file);
      const holder = readHolder(file);
      if (typeof holder === "object" && holder?.token === token) unlinkSync(file);
      return Promise.resolve();
    },
  };
}

/** The holder, `undefined` for a file that is not a lock we wrote, or "gone". */
function readHolder(file: string): Holder | undefined | "gone" {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (errorCode(err) === "ENOENT") return "gone";
    throw err;
  }
  try {
    const h = JSON.parse(text);
    const valid = Number.isInteger(h?.pid) && typeof h.host === "string" &&
      typeof h.since === "string" && typeof h.token === "string" &&
      (h.started === undefined || typeof h.started === "string") &&
      (h.socket === undefined || typeof h.socket === "string");
    return valid ? h as Holder : undefined;
  } catch {
    return undefined;
  }
}

function isAbandoned(file: string, holder: Holder): boolean {
  if (holder.host !== hostname()) return heartbeatStopped(file);
  if (holder.pid === process.pid) {
    // Ours only if this process took it; otherwise a recycled pid (PID 1 in a restarted container).
    return held.get(file) !== holder.token;
  }
  if (!isAlive(holder.pid)) return true;
  // The pid is taken. By the holder only if it is the same process: its start
  // must match; where either start is unknown, a live holder's heartbeat tells.
  const now = processStart(holder.pid);
  if (holder.started !== undefined && now !== undefined) return now !== holder.started;
  return heartbeatStopped(file);
}

function heartbeatStopped(file: string): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs > STALE_MS;
  } catch {
    return true;
  }
}

/**
 * A process's start, unique across reboots and pid reuse: the boot id and
 * its start time in clock ticks since boot (/proc/PID/stat, field 22).
 * `undefined` where /proc does not tell (not Linux, or no access).
 */
export function processStart(pid: number): string | undefined {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = fields[19];
    return ticks === undefined || !/^\d+$/.test(ticks) ? undefined : `${boot}:${ticks}`;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === "EPERM"; // it exists, it just is not ours to signal
  }
}

/**
 * Deletes an abandoned lock under a short-lived take-over lock, so that two
 * processes that both found it abandoned cannot have one delete the lock the
 * other has just taken. Returns false when someone else is taking over.
 */
function takeOver(file: string, abandoned: Holder | undefined): boolean {
  const takeover = `${file}.takeover`;
  try {
    closeSync(openSync(takeover, "wx"));
  } catch (err) {
    if (errorCode(err) !== "EEXIST") throw err;
    try {
      if (Date.now() - statSync(takeover).mtimeMs > TAKEOVER_STALE_MS) unlinkSync(takeover);
    } catch {
      // Finished meanwhile.
    }
    return false;
  }
  try {
    const current = readHolder(file);
    const same = current === undefined
      ? abandoned === undefined
      : current !== "gone" && current.token === abandoned?.token;
    if (same) unlinkSync(file);
  } finally {
    unlinkSync(takeover);
  }
  return true;
}

function lockedError(dataDir: string, path: string, holder: Holder): HeraldError {
  const self = holder.pid === process.pid && holder.host === hostname() ? " (this process)" : "";
  const remote = holder.host === hostname()
    ? ""
    : `; if that host is gone, the lock is taken over ${
      STALE_MS / 1000
    } s after its last heartbeat`;
  const shared = holder.socket !== undefined && remote === ""
    ? "; operator commands (herald stats, routes, show, enqueue, retry, cancel, prune, " +
      "destinations, dashboard) reach the database through it"
    : "";
  return new HeraldError(
    "HERALD_LOCKED",
    `Cannot open the embedded database at ${dataDir}: it is in use by process ${holder.pid}${self} ` +
      `on host ${holder.host} since ${holder.since} (lock file ${path}); ` +
      `stop that process or set DATABASE_URL to use a Postgres server${remote}${shared}`,
  );
}

function errorCode(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}
