/**
 * What the hostile-input runners share: the seeded database every case runs
 * against (built in `before()`, never at import), the shape of a refusal
 * case, and the checks that a refusal is typed, names its field, echoes no
 * secret and leaves every row of Herald's tables as it was.
 *
 * Every refusal must be a typed `InvalidArgumentError` whose `field` (and
 * message) names the culprit; a checksum of the three tables, seeded first,
 * is compared before and after each case on the real Postgres.
 *
 * @module
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import type postgres from "postgres";
import { InvalidArgumentError } from "../../core/errors.ts";
import { PostgresStore } from "../../store.ts";
import { freshStore } from "../_helpers/pg.ts";
import { checksum, seed } from "../_helpers/hostile_db.ts";
import { trackClose, trackEnd } from "../_helpers/leaks.ts";

// deno-lint-ignore no-explicit-any
export type Any = any;

/** Planted in destinations and configuration; must never be echoed. */
export const SECRET = "Zq7SECRETtokenVw3";
/** A well-formed route id that names no route. */
export const NO_ID = "00000000-0000-0000-0000-000000000000";
/** A route and a notification that are fine, for cases where the other half is bad. */
export const OK_ROUTE = { channel: "log", destination: "ops" };
export const OK_NOTE = { kind: "k" };
/** A well-formed Twilio account SID. */
export const SID = `AC${"0".repeat(32)}`;

/** What a case runs against. */
export interface HostileEnv {
  /** A migrated store on a fresh, seeded schema. */
  readonly store: PostgresStore;
  /** A driver handle on the same database. */
  readonly sql: postgres.Sql;
  readonly schema: string;
  /** A store whose database cannot be reached: building a Worker must not need one. */
  readonly noStore: PostgresStore;
}

/** A refusal: `run` must throw an InvalidArgumentError naming `field`. */
export interface Refusal {
  readonly name: string;
  readonly field: string;
  readonly run: (env: HostileEnv) => unknown;
  /** Extra check on the message. */
  readonly message?: RegExp;
  /** A known Herald bug: the case is reported, not enforced, until fixed. */
  readonly todo?: string;
}

/**
 * Registers `before`/`after` hooks giving the enclosing `describe` a seeded
 * database; call the returned function inside tests.
 */
export function useHostileDb(): () => HostileEnv {
  let env: HostileEnv | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  before(async () => {
    const fresh = await freshStore();
    cleanup = fresh.cleanup;
    const store = trackClose("the hostile-input store", fresh.store);
    const sql = trackEnd("the hostile-input driver handle", fresh.sql);
    const noStore = trackClose(
      "the unreachable store",
      new PostgresStore({ url: "postgres://nobody@127.0.0.1:1/none" }),
    );
    env = { store, sql, schema: fresh.schema, noStore };
    await store.migrate();
    await seed(store, sql);
  });
  after(async () => {
    await cleanup?.();
    await env?.noStore.close();
  });
  return () => env!;
}

/** The tables' checksum, leaving out the rows of `notificationIds`. */
export function sum(env: HostileEnv, notificationIds?: readonly string[]): Promise<string> {
  return checksum(env.sql, env.schema, notificationIds ? { notificationIds } : {});
}

/** Runs `body`, then checks that no row of any table changed. */
export async function unchanged(env: HostileEnv, body: () => Promise<void>): Promise<void> {
  const before = await sum(env);
  await body();
  assert.equal(await sum(env), before, "the tables' rows are unchanged");
}

function isRefusal(err: unknown, field: string): err is InvalidArgumentError {
  return err instanceof InvalidArgumentError && err.code === "HERALD_INVALID_ARGUMENT" &&
    err.field === field && err.message.includes(`'${field}'`);
}

/** Runs `run`, expecting a short, secret-free InvalidArgumentError naming `field`. */
export async function refused(run: () => unknown, field: string, message?: RegExp): Promise<void> {
  let thrown: unknown;
  try {
    await run();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, `expected a refusal naming '${field}', got success`);
  assert.ok(
    isRefusal(thrown, field),
    `expected InvalidArgumentError naming '${field}', got ${String(thrown).slice(0, 300)}`,
  );
  if (message) assert.match(thrown.message, message);
  assert.ok(thrown.message.length < 400, "messages stay short");
  assert.equal(thrown.message.includes(SECRET), false, "the message echoes no secret");
}

/** Registers one test per refusal: refused, and nothing changed. */
export function refusalTests(env: () => HostileEnv, cases: readonly Refusal[]): void {
  for (const c of cases) {
    it(
      c.name,
      c.todo ? { todo: c.todo } : {},
      () => unchanged(env(), () => refused(() => c.run(env()), c.field, c.message)),
    );
  }
}
