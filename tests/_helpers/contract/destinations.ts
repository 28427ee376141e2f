/**
 * The contract, destinations area: how routes are named by destination, and
 * how a destination's state (open, half-open, paused, disabled) decides what a
 * claim may take. Its in-flight cap and rate limit: limits.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import type { DestinationReport, Store } from "../../../store.ts";
import { DESTINATION_DEFAULTS } from "../../../store.ts";
import { InvalidArgumentError } from "../../../core/errors.ts";
import { admin, claimAll, type ContractArea, type ContractRun, HOUR, rec } from "./fixtures.ts";

const DEAD = "https://dead.example:8443";
const POLICY = { ...DESTINATION_DEFAULTS, failureThreshold: 2, cooldownMs: 200 };
/** The same with an hour's cool-down, for a case that needs the destination still open. */
const LONG = { ...POLICY, cooldownMs: 3_600_000, maxCooldownMs: 86_400_000 };

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

/** Destination keys, breaker states, probes, pause and disable. */
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
      name: "a half-open destination whose first route is excluded probes with its next one",
      run: async (c, t) => {
        if (!needsClock(c, t)) return;
        const { store, opened } = c;
        await openDead(store);
        await opened.elapse!(POLICY.cooldownMs + 50);
        const first = await store.transaction(async (tx) => {
          const [probe] = await tx.claimDue({ limit: 10, exclude: [] });
          throw Object.assign(new Error("rolled back"), { probe });
        }).catch((err: { probe?: { id: string } }) => err.probe?.id);
        assert.ok(first, "a probe at first");
        // Excluded (a retry this tick already saw): the next route is the probe.
        const got = await store.transaction((tx) => tx.claimDue({ limit: 10, exclude: [first] }));
        assert.equal(got.length, 1, "one probe");
        assert.notEqual(got[0]!.id, first);
        assert.equal(got[0]!.probe, true);
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
      name: "a destination's last success includes sends that left its health as it was",
      run: async ({ store }) => {
        const healthy = "https://fine.example";
        await store.enqueue({ kind: "k" }, [{ channel: "webhook", destination: `${healthy}/a` }]);
        const before = Date.now();
        await store.transaction(async (tx) => {
          const [route] = await tx.claimDue({ limit: 1, exclude: [] });
          assert.ok(route, "a route to claim");
          await tx.finalise([rec(route.id, { status: "sent", attempts: 1 })]);
          // A success on a healthy destination is not reported (nothing to change).
        });
        const info = await admin(store).destination("webhook", healthy);
        assert.equal(info?.attemptsLastHour, 1);
        const at = info?.lastSuccessAt?.getTime() ?? 0;
        assert.ok(at >= before - 60_000 && at <= Date.now() + 60_000, `last success ${at}`);
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
