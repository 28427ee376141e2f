/**
 * The contract, destination limits area: a destination's in-flight cap (its
 * slots end with the transaction) and its rate limit (one token per
 * transaction, given back on rollback), as a claim sees them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { admin, claimAll, type ContractArea, needsTwoSessions } from "./fixtures.ts";

/** In-flight caps and rate limits. */
export const LIMITS: ContractArea = {
  name: "destination limits",
  cases: [
    {
      name: "a destination at its in-flight cap is skipped; its slot ends with the transaction",
      skip: needsTwoSessions,
      run: async ({ store }) => {
        const { routeIds: [a1, a2, b1] } = await store.enqueue({ kind: "k" }, [
          { channel: "webhook", destination: "https://a.example/1" },
          { channel: "webhook", destination: "https://a.example/2" },
          { channel: "webhook", destination: "https://b.example/1" },
        ]);
        await store.transaction(async (tx1) => {
          const mine = await tx1.claimDue({ limit: 1, exclude: [], maxInFlight: 1 });
          assert.deepEqual(mine.map((r) => r.id), [a1]);
          const other = await store.transaction((tx2) =>
            tx2.claimDue({ limit: 10, exclude: [], maxInFlight: 1 })
          );
          assert.deepEqual(other.map((r) => r.id), [b1]);
          const [a] = (await admin(store).destinations()).filter((d) =>
            d.key === "https://a.example"
          );
          assert.equal(a?.inFlight, 1);
        });
        // One transaction holds one slot of a destination, however many of its routes it claims.
        const after = await store.transaction((tx) =>
          tx.claimDue({ limit: 10, exclude: [], maxInFlight: 1 })
        );
        assert.deepEqual(after.map((r) => r.id), [a1, a2, b1]);
      },
    },
    {
      name: "a channel-wide destination takes no slot, unless it is given a cap of its own",
      skip: needsTwoSessions,
      run: async ({ store }) => {
        await store.enqueue(
          { kind: "k" },
          [1, 2].map((n) => ({ channel: "log", destination: String(n) })),
        );
        await store.transaction(async (tx1) => {
          await tx1.claimDue({ limit: 1, exclude: [], maxInFlight: 1 });
          const other = await store.transaction((tx2) =>
            tx2.claimDue({ limit: 10, exclude: [], maxInFlight: 1 })
          );
          assert.equal(other.length, 1);
        });
        await admin(store).configureDestination("log", "*", { maxInFlight: 1 });
        await store.transaction(async (tx1) => {
          assert.equal((await tx1.claimDue({ limit: 1, exclude: [] })).length, 1);
          const other = await store.transaction((tx2) => tx2.claimDue({ limit: 10, exclude: [] }));
          assert.equal(other.length, 0);
        });
      },
    },
    {
      name:
        "a rate-limited destination gives one token per transaction; the next waits for its time",
      run: async ({ store }) => {
        const key = "https://limited.example";
        await store.enqueue(
          { kind: "k" },
          [1, 2, 3].map((n) => ({ channel: "webhook", destination: `${key}/${n}` })),
        );
        await admin(store).configureDestination("webhook", key, { ratePerSecond: 1 / 3600 });
        const first = await claimAll(store);
        assert.equal(first.length, 1, "one token, however many are due");
        assert.ok(first[0]!.nextTokenMs! > 3_500_000, `next token in ${first[0]!.nextTokenMs} ms`);
        assert.deepEqual(await claimAll(store), [], "the next token is an hour away");
        const d = await admin(store).destination("webhook", key);
        assert.equal(d?.settings.ratePerSecond, 1 / 3600);
        assert.equal(d?.deferred, 3, "every due route waits for the token (none was finalised)");
      },
    },
    {
      name:
        "a channel's default rate applies where the destination sets none; burst tokens go first",
      run: async ({ store }) => {
        await store.enqueue(
          { kind: "k" },
          [1, 2, 3].map((n) => ({ channel: "telegram", destination: String(n) })),
        );
        const rates = [{ channel: "telegram", perSecond: 1 / 3600, burst: 2 }];
        const claim = () =>
          store.transaction((tx) => tx.claimDue({ limit: 10, exclude: [], rates }));
        assert.equal((await claim()).length, 1);
        assert.equal((await claim()).length, 1, "the burst's second token");
        assert.equal((await claim()).length, 0);
        await admin(store).configureDestination("telegram", "*", { ratePerSecond: 1000 });
        assert.equal((await claim()).length, 1, "its own rate wins over the channel's");
      },
    },
    {
      name: "a rolled-back transaction gives its token back",
      run: async ({ store }) => {
        const key = "https://limited.example";
        await store.enqueue({ kind: "k" }, [{ channel: "webhook", destination: `${key}/1` }]);
        await admin(store).configureDestination("webhook", key, { ratePerSecond: 1 / 3600 });
        await assert.rejects(store.transaction(async (tx) => {
          assert.equal((await tx.claimDue({ limit: 1, exclude: [] })).length, 1);
          throw new Error("rolled back");
        }));
        assert.equal((await claimAll(store)).length, 1);
      },
    },
    {
      name: "while one transaction holds a rate-limited destination's limiter, another skips it",
      skip: needsTwoSessions,
      run: async ({ store }) => {
        const key = "https://limited.example";
        const { routeIds: [l1, , other] } = await store.enqueue({ kind: "k" }, [
          { channel: "webhook", destination: `${key}/1` },
          { channel: "webhook", destination: `${key}/2` },
          { channel: "webhook", destination: "https://free.example/1" },
        ]);
        await admin(store).configureDestination("webhook", key, { ratePerSecond: 1000, burst: 10 });
        await store.transaction(async (tx1) => {
          assert.deepEqual((await tx1.claimDue({ limit: 1, exclude: [] })).map((r) => r.id), [l1]);
          const got = await store.transaction((tx2) => tx2.claimDue({ limit: 10, exclude: [] }));
          assert.deepEqual(got.map((r) => r.id), [other]);
        });
      },
    },
  ],
};
