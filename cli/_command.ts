/**
 * The plumbing every command shares: what a command is, where it reads and
 * writes, and the database it opens (the Postgres at `DATABASE_URL`, or the
 * embedded one when none is given).
 *
 * @module
 */
import { checkRouteIds as checkIds } from "../core/_validate.ts";
import { PostgresStore } from "../store.ts";
import { openEmbedded } from "../embedded.ts";
import type { Common, Env, Values } from "./_flags.ts";

/** Where the program reads and writes; tests pass their own. */
export interface Io {
  readonly env: Env;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** One subcommand of the program. */
export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Readonly<Record<string, { type: "string" | "boolean"; multiple?: boolean }>>;
  /** Positional arguments allowed (`Infinity` for a list). */
  readonly positionals: number;
  run(values: Values, positionals: readonly string[], common: Common, io: Io): Promise<number>;
}

/** An open database: a store, whether it is embedded, and how to close it. */
export interface Database {
  readonly store: PostgresStore;
  readonly embedded: boolean;
  close(): Promise<void>;
}

/**
 * Opens the configured database. `connections` sizes the Postgres pool; the
 * embedded database has one session whatever is asked.
 */
export async function openDatabase(common: Common, io: Io, connections = 1): Promise<Database> {
  if (common.databaseUrl) {
    const store = new PostgresStore({
      url: common.databaseUrl,
      schema: common.schema,
      max: connections,
      prepare: common.prepare,
      ...(common.listenUrl ? { listenUrl: common.listenUrl } : {}),
    });
    return { store, embedded: false, close: () => store.close() };
  }
  const db = await openEmbedded({
    dataDir: common.dataDir,
    schema: common.schema,
    onProgress: (message) => io.err(`herald: ${message}`),
  });
  return { store: db.store, embedded: true, close: () => db.close() };
}

/**
 * Runs `fn` on the configured database, migrated, and closes it.
 */
export async function withDatabase(
  common: Common,
  io: Io,
  fn: (db: Database) => Promise<number>,
): Promise<number> {
  const db = await openDatabase(common, io);
  try {
    await db.store.migrate();
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Refuses a malformed route id before anything touches the database. */
export function checkRouteIds(ids: readonly string[]): void {
  checkIds("ROUTE_ID", ids);
}
