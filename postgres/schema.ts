/**
 * The driver handles Herald accepts, and the schema rules every piece of its
 * SQL relies on.
 *
 * @module
 */
import type postgres from "postgres";
import { InvalidArgumentError } from "../core/errors.ts";
import { SCHEMA_NAME } from "../core/_validate.ts";

/**
 * A handle of the `postgres` driver (porsager/postgres): a client made by
 * `postgres(url)`, or the `tx` of `sql.begin((tx) => ...)`. Typed by the one
 * method every handle has, so Herald's API does not tie you to the driver's
 * type declarations; anything else is refused at run time.
 */
export interface SqlHandle {
  /** Runs a query. */
  unsafe(query: string, parameters?: never[]): PromiseLike<unknown>;
}

/** Checks that `value` is a `postgres` driver handle; returns it with the driver's type. */
export function driverHandle(field: string, value: unknown): postgres.Sql {
  if (typeof value !== "function" || typeof (value as Partial<SqlHandle>).unsafe !== "function") {
    throw new InvalidArgumentError(field, "must be a postgres.js client or transaction handle");
  }
  return value as postgres.Sql;
}

/** Checks a schema name; returns it. */
export function checkSchema(schema: unknown): string {
  if (
    typeof schema !== "string" || !SCHEMA_NAME.test(schema) || schema.startsWith("pg_") ||
    schema === "information_schema"
  ) {
    throw new InvalidArgumentError(
      "schema",
      "must be 1-56 characters of a-z, 0-9 and '_', not starting with a digit or 'pg_', " +
        "and not a system schema",
      schema,
    );
  }
  return schema;
}

/** The `LISTEN`/`NOTIFY` channel of a schema's workers. */
export function wakeChannel(schema: string): string {
  return `herald:${schema}`;
}
