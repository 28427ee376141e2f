/**
 * The contract, claim area: which routes `claimDue` returns, in which order, and what another
 * open transaction holds back.
 *
 * @module
 */
import assert from "node:assert/strict";
import { claimAll, type ContractArea, HOUR, needsTwoSessions } from "./fixtures.ts";

/** Due-ness, order, exclusions, limits, channels and row locks. */
export const CLAIM: ContractArea = {
  name: "claimDue",
  cases: [
    {
      name: "claimDue returns due routes with kind and payload, lowest priority first",
      run: async ({ store }) => {
        const low = await store.enqueue({ kind: "a", payload: { n: 1 } }, [
          { channel: "log", destination: "x", priority: 5 },
        ]);
        const high = await store.enqueue({ kind: "b", payload: { n: [1, "two", null] } }, [
          { channel: "log", destination: "y", priority: -1 },
        ]);
        const claimed = await claimAll(store);
        assert.deepEqual(claimed.map((r) => r.id), [high.routeIds[0], low.routeIds[0]]);
        const first = claimed[0]!;
        assert.equal(first.kind, "b");
        assert.deepEqual(first.payload, { n: [1, "two", null] });
        assert.equal(first.attempts, 0);
        assert.equal(first.priority, -1);
        assert.ok(first.createdAt instanceof Date);
      },
    },
    {
      name: "a route scheduled for later is not due; one scheduled in the past is",
      run: async ({ store }) => {
        await store.enqueue({ kind: "later" }, [
          { channel: "log", destination: "x", deliverAt: new Date(Date.now() + HOUR) },
        ]);
        const past = await store.enqueue({ kind: "past" }, [
          { channel: "log", destination: "x", deliverAt: new Date(Date.now() - HOUR) },
        ]);
        assert.deepEqual((await claimAll(store)).map((r) => r.id), past.routeIds);
      },
    },
    {
      name: "equal priority and due time go in enqueue order, across notifications and within one",
      run: async ({ store }) => {
        const at = new Date(Date.now() - HOUR);
        const ids: string[] = [];
        for (let n = 0; n < 4; n++) {
          const { routeIds } = await store.enqueue({ kind: `n${n}` }, [
            { channel: "log", destination: `${n}a`, deliverAt: at },
            { channel: "log", destination: `${n}b`, deliverAt: at },
          ]);
          ids.push(...routeIds);
        }
        assert.deepEqual((await claimAll(store)).map((r) => r.id), ids, "one claim, in order");
        // Route by route too, as per-route mode claims them.
        const one: string[] = [];
        for (let i = 0; i < ids.length; i++) {
          const [r] = await store.transaction((tx) => tx.claimDue({ limit: 1, exclude: one }));
          one.push(r!.id);
        }
        assert.deepEqual(one, ids);
      },
    },
    {
      name: "a due route is found behind many not yet due, at its own priority or another",
      run: async ({ store }) => {
        const later = new Date(Date.now() + HOUR);
        for (const priority of [-5, 0, 3]) {
          await store.enqueue(
            { kind: "later" },
            Array.from({ length: 20 }, (_, i) => ({
              channel: "log",
              destination: String(i),
              priority,
              deliverAt: later,
            })),
          );
        }
        const three = await store.enqueue({ kind: "due" }, [
          { channel: "log", destination: "p3", priority: 3 },
        ]);
        const zero = await store.enqueue({ kind: "due" }, [
          { channel: "log", destination: "p0", priority: 0 },
        ]);
        assert.deepEqual(
          (await claimAll(store)).map((r) => r.id),
          [zero.routeIds[0], three.routeIds[0]],
          "the due ones, lowest priority first; nothing not yet due",
        );
      },
    },
    {
      name: "claimDue skips excluded ids and honours the limit",
      run: async ({ store }) => {
        const { routeIds } = await store.enqueue({ kind: "k" }, [
          { channel: "log", destination: "1" },
          { channel: "log", destination: "2" },
          { channel: "log", destination: "3" },
        ]);
        const got = await store.transaction((tx) =>
          tx.claimDue({ limit: 1, exclude: [routeIds[0]!] })
        );
        assert.equal(got.length, 1);
        assert.notEqual(got[0]!.id, routeIds[0]);
        const rest = await claimAll(store, [routeIds[0]!, routeIds[1]!]);
        assert.deepEqual(rest.map((r) => r.id), [routeIds[2]]);
      },
    },
    {
      name: "a route locked by an open transaction is skipped by another",
      skip: needsTwoSessions,
      run: async ({ store }) => {
        const { routeIds } = await store.enqueue({ kind: "k" }, [
          { channel: "log", destination: "1" },
          { channel: "log", destination: "2" },
        ]);
        await store.transaction(async (tx1) => {
          const [mine] = await tx1.claimDue({ limit: 1, exclude: [] });
          assert.equal(mine?.id, routeIds[0]);
          const other = await store.transaction((tx2) => tx2.claimDue({ limit: 10, exclude: [] }));
          assert.deepEqual(other.map((r) => r.id), [routeIds[1]]);
        });
      },
    },
    {
      name: "two open transactions never claim the same route",
      skip: needsTwoSessions,
      run: async ({ store }) => {
        await store.enqueue(
          { kind: "k" },
          Array.from({ length: 6 }, (_, i) => ({ channel: "log", destination: String(i) })),
        );
        const ids: string[] = [];
        await store.transaction(async (tx1) => {
          ids.push(...(await tx1.claimDue({ limit: 4, exclude: [] })).map((r) => r.id));
          await store.transaction(async (tx2) => {
            ids.push(...(await tx2.claimDue({ limit: 4, exclude: [] })).map((r) => r.id));
          });
        });
        assert.equal(ids.length, 6);
        assert.equal(new Set(ids).size, 6);
      },
    },
    {
      name: "claimDue with channels claims only routes of those channels",
      run: async ({ store }) => {
        const { routeIds: [sms, email, chat] } = await store.enqueue({ kind: "k" }, [
          { channel: "sms", destination: "+15005550006" },
          { channel: "email", destination: "a@example.com" },
          { channel: "chat", destination: "c" },
        ]);
        const claimed = await store.transaction((tx) =>
          tx.claimDue({ limit: 10, exclude: [], channels: ["email", "chat"] })
        );
        assert.deepEqual(claimed.map((r) => r.id).sort(), [email, chat].sort());
        assert.deepEqual(
          (await claimAll(store)).map((r) => r.id).sort(),
          [sms, email, chat].sort(),
        );
      },
    },
  ],
};
