/**
 * An embedded Postgres (PGlite, Postgres compiled to WebAssembly) in a local
 * directory, so Herald runs with nothing installed: `herald run` without
 * `DATABASE_URL` keeps its routes in `./.herald/data`.
 *
 * It is for development, tests and demos. PGlite has one session, so the
 * embedded database runs one transaction at a time: a worker concurrency
 * above 1 gains nothing (its claim loops take turns), your own queries wait
 * while a route's transaction is open, and code that holds a transaction
 * open while it waits on another query of the same database waits for ever.
 * Only one process may open a data directory. `statement_timeout` and
 * `idle_in_transaction_session_timeout` are accepted but not enforced, so
 * `lockTimeoutMs` cannot end a stuck transaction; `COPY ... FROM STDIN` is
 * refused with SQLSTATE 0A000. For a real deployment, point `DATABASE_URL` at
 * a Postgres server.
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
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { HeraldError, InvalidArgumentError } from "./core/errors.ts";
import { checkSchema, PostgresStore } from "./store.ts";
import type { SqlHandle } from "./store.ts";
import { acquireDataDirLock } from "./embedded/_data_dir_lock.ts";
import type { DataDirLock } from "./embedded/_data_dir_lock.ts";
import { pgliteSocketFactory } from "./embedded/_pglite_socket.ts";
import { describeError } from "./core/_redact.ts";

/** Where the embedded database lives when no `dataDir` is given (relative to the working directory). */
export const DEFAULT_DATA_DIR = "./.herald/data";

/** Options of {@link openEmbedded}. */
export interface EmbeddedOptions {
  /** The database directory; created on first use. Default `./.herald/data`. */
  readonly dataDir?: string;
  /** The Postgres schema holding Herald's tables; default `herald`. */
  readonly schema?: string;
  /**
   * Told, in a sentence, what is happening, because the first open takes a
   * few seconds (the database is created) and a silent pause looks like a hang.
   */
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
  /** Ends the driver, closes the database and releases the lock. Safe to call twice. */
  close(): Promise<void>;
  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Opens (on first use, creates) the embedded database in `dataDir` and
 * returns a store on it. Only one process may have a directory open at a
 * time; a second is refused with `HERALD_LOCKED`, naming the holder. PGlite is
 * loaded on demand, so programs that use `DATABASE_URL` never load it.
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
  const { onProgress, signal } = options;
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new InvalidArgumentError("onProgress", "must be a function", onProgress);
  }
  signal?.throwIfAborted();

  const absolute = resolve(dataDir);
  const version = join(absolute, "PG_VERSION");
  // Before the lock, so a mistaken `dataDir` leaves no lock file behind either.
  if (!existsSync(version)) checkEmptyOrPartial(dataDir, absolute);
  const lock = await acquireDataDirLock(dataDir);
  let db: { close(): Promise<void> } | undefined;
  try {
    const created = !existsSync(version);
    onProgress?.(
      created
        ? `creating the embedded database in ${dataDir} (first run, takes a few seconds)…`
        : `opening the embedded database in ${dataDir}…`,
    );
    // Loaded here, not at the top: 27 MB that DATABASE_URL users never need.
    const { PGlite } = await import("@electric-sql/pglite");
    const pglite = await PGlite.create({ dataDir: absolute }).catch((err: unknown) => {
      throw new HeraldError(
        "HERALD_STORE",
        `Cannot open the embedded database at ${dataDir}: ${describeError(err)}`,
        { cause: err },
      );
    });
    db = pglite;
    signal?.throwIfAborted();
    const sql = postgres({
      socket: pgliteSocketFactory(pglite),
      // One connection: PGlite has one session anyway, and the driver's own
      // queue is where waiting queries belong. `sql.listen` adds a second.
      max: 1,
      // Pinned, so PG* variables meant for a real server do not leak in.
      user: "postgres",
      database: "postgres",
      ssl: false,
      max_lifetime: null, // recycling an in-process connection buys nothing
      fetch_types: false, // no array columns are read; one query less per open
      onnotice: () => {},
      connection: { application_name: "herald" },
    } as postgres.Options<Record<string, never>>); // `socket` works, but the driver's types omit it
    return new Embedded(new PostgresStore({ sql, schema }), sql, dataDir, pglite, lock);
  } catch (err) {
    try {
      await db?.close();
    } finally {
      await lock.release();
    }
    throw err;
  }
}

class Embedded implements EmbeddedDatabase {
  readonly store: PostgresStore;
  readonly sql: postgres.Sql;
  readonly dataDir: string;
  readonly #db: { close(): Promise<void> };
  readonly #lock: DataDirLock;
  #closing: Promise<void> | undefined;

  constructor(
    store: PostgresStore,
    sql: postgres.Sql,
    dataDir: string,
    db: { close(): Promise<void> },
    lock: DataDirLock,
  ) {
    this.store = store;
    this.sql = sql;
    this.dataDir = dataDir;
    this.#db = db;
    this.#lock = lock;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    try {
      await this.sql.end({ timeout: 5 });
    } finally {
      try {
        await this.#db.close();
      } finally {
        // Last: the files are quiet only once PGlite has closed them.
        await this.#lock.release();
      }
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Names of the files a Postgres data directory holds (a crashed first run leaves some). */
const PG_FILE = /^(PG_VERSION|base|global|pg_\w+|postgresql(\.auto)?\.conf|postmaster\.\w+)$/;

/** Refuses to create the database in a directory that holds other things: a wrong `dataDir`. */
function checkEmptyOrPartial(dataDir: string, absolute: string): void {
  let entries: string[];
  try {
    entries = readdirSync(absolute);
  } catch {
    return; // does not exist yet: PGlite creates it
  }
  const foreign = entries.find((name) => !PG_FILE.test(name));
  if (foreign !== undefined) {
    throw new InvalidArgumentError(
      "dataDir",
      `${dataDir} is not an embedded database (it holds ${JSON.stringify(foreign)}); ` +
        "give an empty or new directory",
    );
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
