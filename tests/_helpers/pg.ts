/**
 * Real-Postgres test helpers. Each test gets its own schema (dropped after),
 * so files can run in parallel against one database.
 */
import postgres from "postgres";
import { PostgresStore } from "../../store.ts";

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

/** A store on a fresh schema, plus a cleanup that drops it and closes everything. */
export function freshStore(
  options: { max?: number } = {},
): Promise<{ store: PostgresStore; schema: string; sql: postgres.Sql; cleanup(): Promise<void> }> {
  const schema = uniqueSchema();
  const store = new PostgresStore({ url: DATABASE_URL, schema, max: options.max ?? 4 });
  const sql = testSql(2);
  return Promise.resolve({
    store,
    schema,
    sql,
    async cleanup() {
      await store.close();
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end({ timeout: 5 });
    },
  });
}
