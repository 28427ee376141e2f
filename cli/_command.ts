/**
 * The plumbing every command shares: what a command is, where it reads and
 * writes, and the database it opens (the Postgres at `DATABASE_URL`, or the
 * embedded one when none is given).
 *
 * On Node, opening the embedded database first sets V8 for a small machine
 * (process-wide settings, so they are made here, in the program, never in
 * the library): WebAssembly compiled by the baseline tier only, since
 * optimising PGlite's hot functions in the background took 400-500 MB for a
 * second and bought nothing a command or a small worker notices; and a heap
 * sized for memory, not speed (docs/embedded.md).
 *
 * @module
 */
import v8 from "node:v8";
import { checkRouteIds as checkIds } from "../core/_validate.ts";
import { runtimeKey } from "../core/_runtime.ts";
import { PostgresStore, SCHEMA_VERSION } from "../store.ts";
import { openEmbedded } from "../embedded.ts";
import type { Common, Env, Values } from "./_flags.ts";

/** Where the program reads and writes; tests pass their own. */
export interface Io {
  readonly env: Env;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** A line rewritten in place, where standard error is a terminal. */
  readonly progress?: { readonly update: (text: string) => void; readonly end: () => void };
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
 * embedded database has one session whatever is asked. With `whenInUse:
 * "connect"` (the operator commands), an embedded database another `herald`
 * of this user has open is reached through that process.
 */
export async function openDatabase(
  common: Common,
  io: Io,
  connections = 1,
  whenInUse: "refuse" | "connect" = "refuse",
): Promise<Database> {
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
  lightV8OnNode();
  const db = await openEmbedded({
    dataDir: common.dataDir,
    schema: common.schema,
    fsync: common.embeddedFsync,
    whenInUse,
    onProgress: (message) => io.err(`herald: ${message}`),
  });
  return { store: db.store, embedded: true, close: () => db.close() };
}

/**
 * Runs `fn` on the configured database and closes it. Only `migrate` and
 * `run` change the schema: here a schema without Herald's tables, or at
 * another version than this Herald's, exits 1 saying so (a mistyped
 * `--schema` must not quietly create an empty one). An embedded database a
 * running worker holds is reached through that worker.
 */
export async function withDatabase(
  common: Common,
  io: Io,
  fn: (db: Database) => Promise<number>,
): Promise<number> {
  const db = await openDatabase(common, io, 1, "connect");
  try {
    const version = await db.store.schemaVersion();
    if (version !== SCHEMA_VERSION) {
      io.err(
        version === 0
          ? `herald: no Herald tables in schema ${common.schema}; run herald migrate`
          : version < SCHEMA_VERSION
          ? `herald: schema ${common.schema} is at version ${version}, this Herald needs ` +
            `${SCHEMA_VERSION}; run herald migrate`
          : `herald: schema ${common.schema} is at version ${version}, newer than this ` +
            `Herald (${SCHEMA_VERSION}); upgrade Herald`,
      );
      return 1;
    }
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** The V8 flags of {@link lightV8OnNode}, also for Deno's `--v8-flags` (docs/embedded.md). */
export const LIGHT_V8_FLAGS: readonly string[] = [
  "--liftoff-only",
  "--no-wasm-tier-up",
  "--no-wasm-dynamic-tiering",
  "--optimize-for-size",
];

/**
 * Sets {@link LIGHT_V8_FLAGS} before PGlite's module is compiled. Measured on
 * Node 24 (bench/embedded.ts): peak RSS of `herald stats` 650 MB with tier-up,
 * under 200 MB without, and opens faster on a small machine, where the
 * optimising compiler competes for the CPU; a worker's heap grew to 360 MB
 * over 4,000 routes, and stays near 180 MB with `--optimize-for-size`. Deno
 * takes V8 flags only on its command line and Bun has no V8: see docs/embedded.md.
 */
function lightV8OnNode(): void {
  if (runtimeKey() !== "node") return;
  for (const flag of LIGHT_V8_FLAGS) v8.setFlagsFromString(flag);
}

/** Refuses a malformed route id before anything touches the database. */
export function checkRouteIds(ids: readonly string[]): void {
  checkIds("ROUTE_ID", ids);
}
