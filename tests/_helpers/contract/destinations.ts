/**
 * The contract, destinations area: how routes are named by destination, and
 * how a destination's state (open, half-open, paused, disabled) and its
 * in-flight cap decide what a claim may take.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import type { DestinationAdmin, DestinationReport, Store } from "../../../store.ts";
import { DESTINATION_DEFAULTS } from "../../../store.ts";
import { InvalidArgumentError } from "../../../core/errors.ts";
import {
  claimAll,
  type ContractArea,
  type ContractRun,
  HOUR,
  needsTwoSessions,
  rec,
} from "./fixtures.ts";

const DEAD = "https://dead.example:8443";
const POLICY = { ...DESTINATION_DEFAULTS, failureThreshold: 2, cooldownMs: 200 };
/** The same with an hour's cool-down, for a case that needs the destination still open. */
const LONG = { ...POLICY, cooldownMs: 3_600_000, maxCooldownMs: 86_400_000 };

function admin(store: Store): Store & DestinationAdmin {
  return store as Store & DestinationAdmin;
}

function report(over: Partial<DestinationReport>): DestinationReport {
  return {
    channel: "webhook",
    key: DEAD,
    ok: 0,
    fail: 0,
    gone: false,
    probe: false,
    error: null,
    ...over,
  };
}

/** Claims one route of `DEAD`, records a retry, and reports `verdicts`; returns the changes. */
async function sendAndReport(
  store: Store,
  over: Partial<DestinationReport>,
  policy = POLICY,
) {
  return await store.transaction(async (tx) => {
    const [route] = await tx.claimDue({ limit: 1, exclude: [] });
    assert.ok(route, "a route to claim");
    await tx.finalise([
      rec(route.id, { status: "retry", attempts: 1, delayMs: 0, error: "HTTP 503" }),
    ]);
    return await tx.reportDestinations!([report({ error: "HTTP 503", ...over })], policy);
  });
}

/**
 * Opens `DEAD` with three routes queued behind it; returns their ids. Its
 * cool-down is `POLICY`'s 200 ms where a case moves the clock past it, an
 * hour (`LONG`) where a case must see it still open however slow the machine.
 */
async function openDead(store: Store, policy = POLICY): Promise<readonly string[]> {
  const { routeIds } = await store.enqueue(
    { kind: "k" },
    [1, 2, 3].map((n) => ({
      channel: "webhook",
      destination: `${DEAD}/hook/${n}`,
    })),
  );
  const changes = await sendAndReport(store, { fail: 2 }, policy);
  assert.deepEqual(changes.map((c) => [c.from, c.to, c.trips]), [["closed", "open", 1]]);
  return routeIds;
}

function needsClock({ opened }: ContractRun, t: TestContext): boolean {
  if (opened.elapse) return true;
  t.skip("the store's clock cannot be moved here");
  return false;
}

/** Destination keys, breaker states, probes, caps, pause and disable. */
export const DESTINATIONS: ContractArea = {
  name: "destinations",
  cases: [
    {
      name:
        "a route's destination is its URL's origin, per URL on shared webhook hosts, `*` otherwise",
      run: async ({ store }) => {
        await store.enqueue({ kind: "k" }, [
          { channel: "webhook", destination: "https://API.example.com:443/a?token=secret" },
          { channel: "slack", destination: "https://hooks.slack.com/services/T/B/secret" },
          { channel: "email", destination: "ops@example.com" },
        ]);
        const keys = (await claimAll(store)).map((r) => r.destinationKey);
        assert.equal(keys[0], "https://api.example.com");
        assert.match(keys[1]!, /^https:\/\/hooks\.slack\.com#[0-9a-f]{16}$/);
        assert.ok(!keys[1]!.includes("secret"));
        assert.equal(keys[2], "*");
      },
    },
    {
      name:
        "failures open a destination at the threshold: its routes are held, spend nothing, stay queued",
      run: async ({ store }) => {
        const ids = await openDead(store, LONG);
        const healthy = await store.enqueue({ kind: "k" }, [{
          channel: "webhook",
          destination: "https://ok.example/x",
        }]);
        assert.deepEqual((await claimAll(store)).map((r) => r.id), [healthy.routeIds[0]]);
        for (const id of ids.slice(1)) {
          const r = await store.getRoute(id);
          assert.equal(r?.status, "queued");
          assert.equal(r?.attempts, 0);
        }
        const [d] = (await admin(store).destinations()).filter((x) => x.key === DEAD);
        assert.equal(d?.state, "open");
        assert.equal(d?.queued, 3);
        assert.equal(d?.consecutiveFailures, 2);
        assert.equal(d?.lastError, "HTTP 503");
        // Enqueued while open: held too.
        await store.enqueue({ kind: "k" }, [{ channel: "webhook", destination: `${DEAD}/later` }]);
        assert.deepEqual((await claimAll(store)).map((r) => r.id), [healthy.routeIds[0]]);
      },
    },
    {
      name: "after the cool-down one route goes as the probe; its success closes the destination",
      run: async (c, t) => {
        if (!needsClock(c, t)) return;
        const { store, opened } = c;
        await openDead(store);
        await opened.elapse!(POLICY.cooldownMs + 50);
        assert.equal((await admin(store).destination("webhook", DEAD))?.state, "half_open");
        const probes = await store.transaction(async (tx) => {
          const got = await tx.claimDue({ limit: 10, exclude: [] });
          assert.equal(got.length, 1, "one probe, however many are due");
          assert.equal(got[0]!.probe, true);
          await tx.finalise([rec(got[0]!.id, { status: "sent", attempts: 1 })]);
          return await tx.reportDestinations!([report({ ok: 1, probe: true })], POLICY);
        });
        assert.deepEqual(probes.map((p) => [p.from, p.to]), [["open", "closed"]]);
        assert.equal((await claimAll(store)).length, 2);
      },
    },
    {
      name: "a failed probe opens the destination again for twice the cool-down",
      run: async (c, t) => {
        if (!needsClock(c, t)) return;
        const { store, opened } = c;
        await openDead(store);
        await opened.elapse!(POLICY.cooldownMs + 50);
        // Reported under an hour's base, so the doubled cool-down (two hours) cannot
        // run out before the claim below, however slow the machine.
        const [change] = await sendAndReport(store, { fail: 1, probe: true }, LONG);
        assert.equal(change?.to, "open");
        assert.equal(change?.trips, 2);
        const d = await admin(store).destination("webhook", DEAD);
        const wait = d!.openUntil!.getTime() - d!.lastFailureAt!.getTime();
        assert.equal(wait, 2 * LONG.cooldownMs);
        assert.deepEqual(await claimAll(store), []);
      },
    },
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
        "pause holds queued routes without spending attempts; resume releases them, each due when it was",
      run: async ({ store }) => {
        const key = "https://paused.example";
        const now = await store.enqueue({ kind: "k" }, [{
          channel: "webhook",
          destination: `${key}/a`,
        }]);
        const later = await store.enqueue({ kind: "k" }, [{
          channel: "webhook",
          destination: `${key}/b`,
          deliverAt: new Date(Date.now() + HOUR),
        }]);
        assert.equal(
          await admin(store).setDestinationState("webhook", key, "pause", "maintenance"),
          "paused",
        );
        const during = await store.enqueue({ kind: "k" }, [{
          channel: "webhook",
          destination: `${key}/c`,
        }]);
        assert.deepEqual(await claimAll(store), []);
        const d = await admin(store).destination("webhook", key);
        assert.equal(d?.state, "paused");
        assert.equal(d?.reason, "maintenance");
        assert.equal(d?.queued, 3);
        assert.equal((await store.getRoute(now.routeIds[0]!))?.status, "queued");
        assert.equal(await admin(store).setDestinationState("webhook", key, "resume"), "closed");
        const claimed = (await claimAll(store)).map((r) => r.id).sort();
        assert.deepEqual(claimed, [now.routeIds[0], during.routeIds[0]].sort());
        assert.ok(later.routeIds[0]);
        const held = await store.getRoute(later.routeIds[0]!);
        assert.ok(
          held!.nextAttemptAt.getTime() > Date.now() + HOUR / 2,
          "still scheduled an hour ahead",
        );
      },
    },
    {
      name: "410 Gone disables the destination; enable brings its routes back",
      run: async ({ store }) => {
        await openDead(store).catch(() => {}); // leaves routes queued; the state is what matters
        const changes = await sendAndReportGone(store);
        assert.equal(changes[0]?.to, "disabled");
        assert.match(changes[0]?.reason ?? "", /410/);
        assert.deepEqual(await claimAll(store), []);
        await admin(store).setDestinationState("webhook", DEAD, "enable");
        assert.ok((await claimAll(store)).length > 0);
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
    {
      name: "configureDestination refuses a bad setting, naming it",
      run: async ({ store }) => {
        await assert.rejects(
          admin(store).configureDestination("webhook", DEAD, { maxInFlight: 0 }),
          (err) => err instanceof InvalidArgumentError && err.field === "maxInFlight",
        );
        await assert.rejects(
          admin(store).configureDestination("webhook", DEAD, { ratePerSecond: -1 }),
          (err) => err instanceof InvalidArgumentError && err.field === "ratePerSecond",
        );
      },
    },
  ],
};

/** Resumes `DEAD` for one claim and reports that claim's send as 410 Gone. */
async function sendAndReportGone(store: Store) {
  await admin(store).setDestinationState("webhook", DEAD, "resume");
  return await store.transaction(async (tx) => {
    const [route] = await tx.claimDue({ limit: 1, exclude: [] });
    assert.ok(route);
    await tx.finalise([rec(route.id, { status: "failed", attempts: 1, error: "HTTP 410" })]);
    return await tx.reportDestinations!([report({ gone: true, error: "HTTP 410" })], POLICY);
  });
}
