/**
 * Hostile input, strings full of SQL: each reaches Postgres only as a
 * parameter. One row per SQL-laden string (stored verbatim as kind, payload
 * key and value, destination and idempotency key), and one row per operator
 * call given such a string.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Enqueued } from "../../store.ts";
import { type Any, type HostileEnv, NO_ID, OK_ROUTE, refused, sum, unchanged } from "./_hostile.ts";

/** Strings an attacker would type into any text field. */
export const SQLISH: readonly string[] = [
  "'); DROP TABLE notifications; --",
  "x' OR '1'='1",
  "$$; DELETE FROM notification_routes; $$",
  "\\'; SELECT pg_sleep(10); --",
  "Robert'); DROP TABLE route_attempts;--",
];

/** Enqueues, then checks the stored text is exactly what was given and nothing else moved. */
export async function storedVerbatim(
  env: HostileEnv,
  kind: string,
  destination: string,
  payload: Any,
  key?: string,
): Promise<Enqueued> {
  const { store, sql, schema } = env;
  const others = await sum(env, [NO_ID]);
  const res = await store.enqueue(
    { kind, payload, ...(key === undefined ? {} : { idempotencyKey: key }) },
    [{ channel: "log", destination, deliverAt: new Date(Date.now() + 365 * 86_400_000) }],
  );
  const [row] = await sql`
    SELECT n.kind, n.payload, n.idempotency_key, r.destination
    FROM ${sql(schema)}.notifications n
    JOIN ${sql(schema)}.notification_routes r ON r.notification_id = n.id
    WHERE n.id = ${res.notificationId}`;
  assert.deepEqual(
    {
      kind: row?.["kind"],
      payload: row?.["payload"],
      key: row?.["idempotency_key"],
      destination: row?.["destination"],
    },
    { kind, payload, key: key ?? null, destination },
  );
  assert.equal(await sum(env, [res.notificationId]), others, "no other row changed");
  return res;
}

/** One SQL-laden call and what must come of it. */
export interface SqlCase {
  readonly name: string;
  run(env: HostileEnv): Promise<void>;
}

/** Operator calls given SQL-laden strings. */
export const SQL_CALLS: readonly SqlCase[] = [
  {
    name: "an SQL-laden idempotency key still deduplicates",
    run: async (env) => {
      const key = "k' OR 1=1; --";
      const first = await storedVerbatim(env, "dup", "x", {}, key);
      const again = await env.store.enqueue({ kind: "dup", idempotencyKey: key }, [OK_ROUTE]);
      assert.equal(again.duplicate, true);
      assert.deepEqual(again.routeIds, first.routeIds);
    },
  },
  {
    name: "listRoutes with an SQL-laden channel filter finds nothing",
    run: async ({ store }) => {
      assert.deepEqual(await store.listRoutes({ channel: "log' OR '1'='1" }), []);
    },
  },
  {
    name: "listRoutes refuses an SQL-laden status",
    run: (env) =>
      unchanged(
        env,
        () => refused(() => env.store.listRoutes({ status: "queued' OR 1=1 --" as Any }), "status"),
      ),
  },
  {
    name: "getRoute and attempts treat an SQL-laden id as unknown",
    run: async ({ store }) => {
      assert.equal(await store.getRoute("' OR 1=1 --"), undefined);
      assert.deepEqual(await store.attempts("1' OR '1'='1"), []);
    },
  },
  {
    name: "cancel refuses SQL-laden ids",
    run: (env) =>
      unchanged(env, () => refused(() => env.store.cancel(["x' OR 1=1 --"]), "routeIds")),
  },
  {
    name: "retry refuses an id with SQL after a UUID",
    run: (env) =>
      unchanged(env, () =>
        refused(
          () => env.store.retry({ ids: ["00000000-0000-0000-0000-000000000000'; --"] }),
          "routeIds",
        )),
  },
  {
    name: "retry --failed with an SQL-laden channel changes nothing",
    run: async (env) => {
      const before = await sum(env);
      const res = await env.store.retry({ failed: true, channel: "log' OR '1'='1" });
      assert.equal(res.changed, 0);
      assert.equal(await sum(env), before);
    },
  },
];
