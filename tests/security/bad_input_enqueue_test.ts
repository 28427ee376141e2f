/**
 * Hostile `enqueue` arguments and schema names: every row of _cases_enqueue.ts
 * is refused by `store.enqueue` and `enqueue(tx)` alike, every row of
 * _cases_schemas.ts before any SQL, naming the field and changing no row.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { enqueue, PostgresStore } from "../../store.ts";
import { DATABASE_URL } from "../_helpers/pg.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import { type Any, OK_NOTE, OK_ROUTE, refused, unchanged, useHostileDb } from "./_hostile.ts";
import { ENQUEUE } from "./_cases_enqueue.ts";
import { SCHEMAS } from "./_cases_schemas.ts";

checkLeaks();

describe(`hostile input on ${RUNTIME}`, () => {
  const env = useHostileDb();

  describe("enqueue arguments (store.enqueue and enqueue(tx) alike)", () => {
    for (const [name, notification, routes, field, todo] of ENQUEUE) {
      it(name, todo ? { todo } : {}, () => {
        const { store, sql, schema } = env();
        return unchanged(env(), async () => {
          await refused(() => store.enqueue(notification as Any, routes as Any), field);
          await refused(
            () => sql.begin((tx) => enqueue(tx, notification as Any, routes as Any, { schema })),
            field,
          );
        });
      });
    }
  });

  describe("schema names are validated before any SQL", () => {
    for (const [name, value, todo] of SCHEMAS) {
      it(name, todo ? { todo } : {}, () => {
        const { sql } = env();
        return unchanged(env(), async () => {
          await refused(
            () => new PostgresStore({ url: DATABASE_URL, schema: value as Any }),
            "schema",
          );
          await refused(
            () => enqueue(sql, OK_NOTE, [OK_ROUTE], { schema: value as Any }),
            "schema",
          );
          const [row] = await sql`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${
            String(value).replaceAll("\u0000", "")
          }`;
          if (value !== "pg_catalog") assert.equal(row?.["n"], 0, "no such schema was created");
        });
      });
    }
  });
});
