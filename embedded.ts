/**
 * An embedded Postgres (PGlite, Postgres compiled to WebAssembly) in a local
 * directory, so Herald runs with nothing installed: `herald run` without
 * `DATABASE_URL` keeps its routes in `./.herald/data`.
 *
 * It is for development, tests, demos and small single-box setups. PGlite has
 * one session, so the embedded database runs one transaction at a time: a
 * worker concurrency above 1 gains nothing (its claim loops take turns), your
 * own queries wait while a route's transaction is open, and code that holds a
 * transaction open while it waits on another query of the same database
 * waits for ever. Only one process opens a data directory; other processes of
 * the same user reach it through that one (`whenInUse: "connect"`).
 * `statement_timeout` and `idle_in_transaction_session_timeout` are accepted
 * but not enforced, so `lockTimeoutMs` cannot end a stuck transaction;
 * `COPY ... FROM STDIN` is refused with SQLSTATE 0A000. Commits are on the
 * disk when they return (fsync on) unless `fsync: false`. For a real
 * deployment, point `DATABASE_URL` at a Postgres server. docs/embedded.md
 * has the figures, the durability of each setting and the errors.
 *
 * @example
 * ```ts
 * import { openEmbedded } from "./embedded.ts";
 *
 * export async function enqueueLocally(): Promise<void> {
 *   const db = await openEmbedded({ onProgress: (m) => console.error(m) });
 *   try {
 *     await db.store.migrate();
 *     await db.store.enqueue({ kind: "order.shipped" }, [{ channel: "log", destination: "ops" }]);
 *   } finally {
 *     await db.close();
 *   }
 * }
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { InvalidArgumentError } from "./core/errors.ts";
import { checkSchema, PostgresStore } from "./store.ts";
import type { SqlHandle } from "./store.ts";
import { acquireDataDirLock, sharingHolder } from "./embedded/_data_dir_lock.ts";
import { pgliteSocketFactory } from "./embedded/_pglite_socket.ts";
import { durableNodeFs, startParams, StderrTail } from "./embedded/_settings.ts";
import { createFromTemplate, readTemplate } from "./embedded/_template.ts";
import { checkDataDir, openFailure } from "./embedded/_preflight.ts";
import { startMaintenance } from "./embedded/_checkpoint.ts";
import { embeddedSql, shareLocally } from "./embedded/_share.ts";
import type postgres from "postgres";

/** Where the embedded database lives when no `dataDir` is given (relative to the working directory). */
export const DEFAULT_DATA_DIR = "./.herald/data";

/** Options of {@link openEmbedded}. */
export interface EmbeddedOptions {
  /** The database directory; created on first use. Default `./.herald/data`. */
  readonly dataDir?: string;
  /** The Postgres schema holding Herald's tables; default `herald`. */
  readonly schema?: string;
  /**
   * Whether a commit waits until its WAL is on the disk (default `true`).
   * `false` is faster, and a crash of the process still loses nothing, but a
   * power loss or an operating-system crash can lose the last commits or
   * leave the database unreadable.
   */
  readonly fsync?: boolean;
  /**
   * When another process of this user on this host has the directory open:
   * `"refuse"` (default) throws `HERALD_LOCKED`; `"connect"` goes through
   * that process (it serves the database while it has it open, see `share`).
   */
  readonly whenInUse?: "refuse" | "connect";
  /**
   * Serve the database, while open, to other processes of the same user on
   * a Unix socket in a private directory (default `true`), so `herald stats`
   * works while a worker runs.
   */
  readonly share?: boolean;
  /** Told, in a sentence, what is happening (creating, opening, going through another process). */
  readonly onProgress?: (message: string) => void;
  /** Aborts the open; the rejection is `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** An open embedded database. Close it: the data directory stays locked until then. */
export interface EmbeddedDatabase {
  /** Herald's store on the embedded database. */
  readonly store: PostgresStore;
  /**
   * The driver handle, for your own tables and for `enqueue(tx, ...)` inside
   * your transactions. One session: queries run one transaction at a time.
   */
  readonly sql: SqlHandle;
  /** The data directory, as given. */
  readonly dataDir: string;
  /** The process this handle reaches the database through (`whenInUse: "connect"`), else `undefined`. */
  readonly throughProcess: number | undefined;
  /** Ends the driver, closes the database and releases the lock. Safe to call twice. */
  close(): Promise<void>;
  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Opens (on first use, creates) the embedded database in `dataDir` and
 * returns a store on it. Only one process may have a directory open at a
 * time; another is refused with `HERALD_LOCKED`, naming the holder, or with
 * `whenInUse: "connect"` goes through it. Failures name their cause and fix:
 * `HERALD_NO_SPACE`, `HERALD_PERMISSION_DENIED`, `HERALD_INCOMPATIBLE`, and
 * `HERALD_INVALID_ARGUMENT` for a path that is a file or a directory of other
 * things. PGlite is loaded on demand, so `DATABASE_URL` users never load it.
 *
 * @example
 * ```ts
 * import { openEmbedded } from "./embedded.ts";
 *
 * export async function migrateLocally(): Promise<number> {
 *   await using db = await openEmbedded({ dataDir: "./.herald/data" });
 *   return await db.store.migrate();
 * }
 * ```
 */
export async function openEmbedded(options: EmbeddedOptions = {}): Promise<EmbeddedDatabase> {
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  if (typeof dataDir !== "string" || dataDir.trim() === "") {
    throw new InvalidArgumentError("dataDir", "must be a non-empty path", dataDir);
  }
  const schema = checkSchema(options.schema ?? "herald");
  const { onProgress, signal, fsync = true, whenInUse = "refuse", share = true } = options;
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new InvalidArgumentError("onProgress", "must be a function", onProgress);
  }
  if (typeof fsync !== "boolean") {
    throw new InvalidArgumentError("fsync", "must be a boolean", fsync);
  }
  if (whenInUse !== "refuse" && whenInUse !== "connect") {
    throw new InvalidArgumentError("whenInUse", 'must be "refuse" or "connect"', whenInUse);
  }
  signal?.throwIfAborted();

  if (whenInUse === "connect") {
    const through = await connectToHolder(dataDir, schema, onProgress);
    if (through) return through;
  }
  const absolute = resolve(dataDir);
  // Before the lock, so a mistaken `dataDir` leaves no lock file behind either.
  checkDataDir(dataDir, absolute);
  const lock = await acquireDataDirLock(dataDir);
  const closers: Closer[] = [lock.release];
  try {
    await createIfMissing(dataDir, absolute, fsync, onProgress);
    signal?.throwIfAborted();
    // Loaded here, not at the top: 27 MB that DATABASE_URL users never need.
    const { PGlite } = await import("@electric-sql/pglite");
    const stderr = new StderrTail();
    const pglite = await PGlite.create({
      dataDir: absolute,
      startParams: startParams(PGlite.defaultStartParams, fsync),
      initDbStartParams: ["--wal-segsize=1"], // only when no template was shipped
      extensions: fsync ? { heraldFsync: durableNodeFs() } : {},
      onStderr: stderr.push,
    }).catch((err: unknown) => {
      throw openFailure(err, stderr.lines(), dataDir, absolute);
    });
    closers.unshift(() => pglite.close());
    signal?.throwIfAborted();
    const socket = pgliteSocketFactory(pglite);
    const sql = embeddedSql({ socket });
    closers.unshift(() => sql.end({ timeout: 5 }));
    const maintenance = await startMaintenance(sql);
    closers.unshift(() => maintenance.stop());
    const shared = share ? await shareLocally(socket.forAnotherProcess) : undefined;
    if (shared) {
      closers.unshift(shared.close);
      // Best effort: a full disk may refuse the lock file's rewrite; the database works without it.
      if (!lock.advertise(shared.path)) await shared.close();
    }
    const store = new PostgresStore({ sql, schema });
    return new Embedded({ store, sql, dataDir, throughProcess: undefined, closers });
  } catch (err) {
    await closeAll(closers);
    throw err;
  }
}

/** Creates the database from the shipped template; without one, PGlite's initdb will. */
async function createIfMissing(
  dataDir: string,
  absolute: string,
  durable: boolean,
  onProgress: ((message: string) => void) | undefined,
): Promise<void> {
  if (existsSync(join(absolute, "PG_VERSION"))) {
    onProgress?.(`opening the embedded database in ${dataDir}…`);
    return;
  }
  const template = await readTemplate();
  if (template === undefined) {
    onProgress?.(
      `creating the embedded database in ${dataDir} with initdb (no template shipped with ` +
        "this build: 10-20 s and up to 1 GB of memory, once)…",
    );
    return;
  }
  onProgress?.(`creating the embedded database in ${dataDir} (first run)…`);
  await createFromTemplate(template, { dataDir, absolute, durable });
}

/**
 * With `whenInUse: "connect"`: the store through the process that holds the
 * directory and serves it, or `undefined` when none does (or it does not answer).
 */
async function connectToHolder(
  dataDir: string,
  schema: string,
  onProgress: ((message: string) => void) | undefined,
): Promise<EmbeddedDatabase | undefined> {
  const holder = sharingHolder(dataDir);
  if (holder === undefined || holder.pid === process.pid) return undefined;
  const sql = embeddedSql({ path: holder.socket });
  try {
    await sql`SELECT 1`;
  } catch {
    await sql.end({ timeout: 0 });
    return undefined; // gone meanwhile: the lock decides
  }
  onProgress?.(
    `the embedded database in ${dataDir} is open in process ${holder.pid}; going through it…`,
  );
  return new Embedded({
    store: new PostgresStore({ sql, schema }),
    sql,
    dataDir,
    throughProcess: holder.pid,
    closers: [() => sql.end({ timeout: 5 })],
  });
}

/** Something to undo on close, newest first. */
type Closer = () => Promise<unknown>;

/** Runs every closer, even after one fails; rethrows the first failure. */
async function closeAll(closers: readonly Closer[]): Promise<void> {
  let failure: { err: unknown } | undefined;
  for (const close of closers) {
    try {
      await close();
    } catch (err) {
      failure ??= { err };
    }
  }
  if (failure) throw failure.err;
}

class Embedded implements EmbeddedDatabase {
  readonly store: PostgresStore;
  readonly sql: postgres.Sql;
  readonly dataDir: string;
  readonly throughProcess: number | undefined;
  /** Last is the lock: the files are quiet only once PGlite has closed them. */
  readonly #closers: readonly Closer[];
  #closing: Promise<void> | undefined;

  constructor(parts: {
    store: PostgresStore;
    sql: postgres.Sql;
    dataDir: string;
    throughProcess: number | undefined;
    closers: readonly Closer[];
  }) {
    this.store = parts.store;
    this.sql = parts.sql;
    this.dataDir = parts.dataDir;
    this.throughProcess = parts.throughProcess;
    this.#closers = parts.closers;
  }

  close(): Promise<void> {
    this.#closing ??= closeAll(this.#closers);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

// The types the API mentions, so this entry point documents them all.
export type {
  AttemptRecord,
  ChangeResult,
  Enqueued,
  NotificationInput,
  PostgresStore,
  PruneOptions,
  QueueStats,
  RetrySelection,
  RouteFilter,
  RouteInput,
  RouteRecord,
  RouteTransaction,
  SqlHandle,
  Store,
  Subscription,
  TransactionOptions,
  WakeHandlers,
} from "./store.ts";
export type { Finalisation, JsonValue, Outcome, Route, RouteStatus } from "./core/route.ts";
