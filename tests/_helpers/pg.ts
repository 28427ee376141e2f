/**
 * Real-Postgres test helpers. Each test gets its own schema (dropped after),
 * so files can run in parallel against one database.
 */
import { after, before } from "node:test";
import postgres from "postgres";
import { PostgresStore } from "../../store.ts";
import { trackClose, trackEnd } from "./leaks.ts";

/** The test database; `scripts/test-all` sets it, this is the local default. */
export const DATABASE_URL: string = globalThis.process?.env?.["DATABASE_URL"] ??
  "postgres://postgres@127.0.0.1:5432/test";

/** A unique, valid schema name for one test. */
export function uniqueSchema(prefix = "herald_t"): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** Opens a driver handle for test setup and assertions. */
export function testSql(max = 4): postgres.Sql {
  return postgres(DATABASE_URL, { max, onnotice: () => {} });
}

/** The database's clock (`clock_timestamp()`) in milliseconds, microseconds kept as fractions. */
export async function dbClock(sql: postgres.Sql): Promise<number> {
  const [row] = await sql`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms`;
  return row!["ms"] as number;
}

/** Waits until the database's clock has moved on by `ms`: a wait on its clock, not a sleep. */
export async function dbElapse(sql: postgres.Sql, ms: number): Promise<void> {
  const from = await dbClock(sql);
  while (await dbClock(sql) < from + ms) { /* each reading is a round trip */ }
}

/** A store on a fresh schema, plus a cleanup that drops it and closes everything. */
export function freshStore(
  options: { max?: number } = {},
): Promise<{
  store: PostgresStore;
  schema: string;
  sql: postgres.Sql;
  cleanup(): Promise<void>;
  clock(): Promise<number>;
  elapse(ms: number): Promise<void>;
}> {
  const schema = uniqueSchema();
  // Tracked: a test file that forgets cleanup() fails its leak check.
  const store = trackClose(
    `PostgresStore ${schema}`,
    new PostgresStore({ url: DATABASE_URL, schema, max: options.max ?? 4 }),
  );
  const sql = trackEnd(`driver handle of ${schema}`, testSql(2));
  return Promise.resolve({
    store,
    schema,
    sql,
    clock: () => dbClock(sql),
    elapse: (ms) => dbElapse(sql, ms),
    async cleanup() {
      await store.close();
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end({ timeout: 5 });
    },
  });
}

/**
 * Registers `before`/`after` hooks giving the enclosing `describe` a migrated
 * store on a fresh schema; call the returned function inside tests.
 */
export function useFreshStore(): () => Awaited<ReturnType<typeof freshStore>> {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;
  before(async () => {
    env = await freshStore();
    await env.store.migrate();
  });
  after(async () => {
    await env?.cleanup();
  });
  return () => env!;
}
