/**
 * The contract, enqueue area: migrations, what enqueue writes, idempotency keys, refused input.
 *
 * @module
 */
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../core/errors.ts";
import { SCHEMA_VERSION } from "../../../store.ts";
import { claimAll, type ContractArea } from "./fixtures.ts";

/** Migrating, enqueueing, and reading a route back. */
export const ENQUEUE: ContractArea = {
  name: "enqueue",
  cases: [
    {
      name: "migrate is idempotent and reports the schema version",
      run: async ({ store }) => {
        assert.equal(await store.migrate(), SCHEMA_VERSION);
        assert.equal(await store.migrate(), SCHEMA_VERSION);
      },
    },
    {
      name: "enqueue writes one queued route per destination",
      run: async ({ store }) => {
        const res = await store.enqueue({ kind: "order.shipped", payload: { order: 42 } }, [
          { channel: "webhook", destination: "https://example.com/a" },
          { channel: "log", destination: "ops" },
        ]);
        assert.equal(res.routeIds.length, 2);
        assert.equal(res.duplicate, false);
        const route = await store.getRoute(res.routeIds[0]!);
        assert.ok(route);
        assert.equal(route.status, "queued");
        assert.equal(route.attempts, 0);
        assert.equal(route.channel, "webhook");
        assert.equal(route.notificationId, res.notificationId);
        assert.equal(route.maxAttempts, null);
        assert.equal(route.sentAt, null);
      },
    },
    {
      name: "an idempotency key makes enqueue write once",
      run: async ({ store }) => {
        const first = await store.enqueue({ kind: "k", idempotencyKey: "order-42-shipped" }, [
          { channel: "log", destination: "1" },
          { channel: "log", destination: "2" },
        ]);
        const second = await store.enqueue({ kind: "k", idempotencyKey: "order-42-shipped" }, [
          { channel: "log", destination: "3" },
        ]);
        assert.equal(second.duplicate, true);
        assert.equal(second.notificationId, first.notificationId);
        assert.deepEqual(second.routeIds, first.routeIds);
        assert.equal((await claimAll(store)).length, 2);
      },
    },
    {
      name: "a payload key named __proto__ is kept as data, not made the payload's prototype",
      run: async ({ store }) => {
        const payload = JSON.parse('{"__proto__": {"isAdmin": true}, "a": 2}');
        await store.enqueue({ kind: "k", payload }, [{ channel: "log", destination: "ops" }]);
        const [route] = await claimAll(store);
        const kept = route!.payload as Record<string, unknown>;
        assert.equal(Object.getPrototypeOf(kept), Object.prototype);
        assert.deepEqual(Object.keys(kept).sort(), ["__proto__", "a"]);
        assert.deepEqual(JSON.parse(JSON.stringify(kept)), payload);
        assert.equal(({} as Record<string, unknown>)["isAdmin"], undefined);
      },
    },
    {
      name: "bad enqueue input is refused with a typed error naming the field; nothing is written",
      run: async ({ store }) => {
        await store.enqueue({ kind: "k" }, [{ channel: "log", destination: "keep" }]);
        const cases: [unknown, unknown, string][] = [
          [{ kind: "" }, [{ channel: "log", destination: "x" }], "notification.kind"],
          [{ kind: "k" }, [], "routes"],
          [{ kind: "k" }, [{ channel: "Bad Name", destination: "x" }], "routes[0].channel"],
          [{ kind: "k" }, [{ channel: "log", destination: "" }], "routes[0].destination"],
          [
            { kind: "k", payload: { n: 1n } },
            [{ channel: "log", destination: "x" }],
            "notification.payload.n",
          ],
          [
            { kind: "k" },
            [{ channel: "log", destination: "x" }, { channel: "", destination: "y" }],
            "routes[1].channel",
          ],
        ];
        for (const [n, r, field] of cases) {
          await assert.rejects(
            // deno-lint-ignore no-explicit-any
            store.enqueue(n as any, r as any),
            (err: unknown) => err instanceof InvalidArgumentError && err.field === field,
            `expected a typed error naming ${field}`,
          );
        }
        assert.equal((await claimAll(store)).length, 1);
      },
    },
    {
      name: "getRoute returns undefined for an unknown id",
      run: async ({ store }) => {
        assert.equal(await store.getRoute(crypto.randomUUID()), undefined);
      },
    },
  ],
};
