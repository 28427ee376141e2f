/**
 * Fault: a hung channel, and a wedged worker.
 *
 * 1. The receiver never answers a route's first request. The worker's send
 *    timeout (HERALD_SEND_TIMEOUT_MS=500) aborts the send, the route is
 *    recorded as a retry and its lock released: another transaction can claim
 *    it right after the timeout. The retry is delivered.
 * 2. The worker itself is frozen (SIGSTOP) mid-send: it can neither abort its
 *    send nor roll back. The safety net (idle_in_transaction_session_timeout
 *    = send timeout + 5 s, set in every route transaction) must end its
 *    transaction, so the lock lives at most ~8 s (this worker's send timeout
 *    is 3 s: the test must freeze it before its send times out, and a busy
 *    machine can take longer than 0.5 s to do that) and a second worker
 *    delivers the route. Resumed (SIGCONT), the frozen worker must log a
 *    warning and go on, not crash, and not overwrite the route.
 *
 * The worker under test runs on the runtime of the test runner; the second
 * worker of part 2 on the next runtime, so the three runners cover all three.
 *
 * Figures: how long the lock outlived the request's arrival in each case.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { CURRENT, deathNote, killAll, RUNTIMES, startWorker } from "./_procs.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { claimable, untilClaimable } from "./_db.ts";
import { ms, printFigures } from "./_figures.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const SEND_TIMEOUT_MS = 500;
const SAFETY_NET_MS = SEND_TIMEOUT_MS + 5_000;
const FROZEN_SEND_TIMEOUT_MS = 3_000;
const FROZEN_SAFETY_NET_MS = FROZEN_SEND_TIMEOUT_MS + 5_000;

describe(`fault: hung channel and wedged worker (${CURRENT})`, () => {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;
  let receiver: Receiver | undefined;
  let vars: Record<string, string>;
  const figures: Record<string, unknown> = {};

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    receiver = await startReceiver((a) => (a.n === 1 ? "hold" : 204));
    vars = {
      DATABASE_URL,
      HERALD_SCHEMA: env.schema,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
      HERALD_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS),
      HERALD_LOG_LEVEL: "debug",
    };
  });
  after(async () => {
    await killAll();
    await receiver?.close();
    await env?.cleanup();
    printFigures("hung_channel", {
      runtime: CURRENT,
      send_timeout_ms: SEND_TIMEOUT_MS,
      ...figures,
    });
  });

  it(
    "a send that never resolves is aborted at the send timeout; the lock goes with it; the retry is delivered",
    {
      timeout: 60_000,
    },
    async () => {
      const { store, sql, schema } = env!;
      const rx = receiver!;
      const worker = await startWorker(CURRENT, ["--interval", "200"], vars);
      const { routeIds } = await store.enqueue({ kind: "fault.hung" }, [
        { channel: "webhook", destination: `${rx.url}/hung` },
      ]);
      const id = routeIds[0]!;
      const arrived = await rx.waitFor((a) => a.id === id && a.n === 1);
      // No "locked now?" probe here: the send times out 500 ms after it began,
      // and a busy machine can take longer than that to ask. That the hung send
      // held the route's lock is read from the attempt log below: its row is
      // written by the transaction that claimed (and locked) the route, and it
      // says the send lasted the whole timeout.
      await untilClaimable(sql, schema, id, "the lock is released");
      const held = performance.now() - arrived.at;
      figures["send_timeout_lock_held_ms"] = ms(held);
      assert.ok(held < SAFETY_NET_MS, `lock held ${held} ms`);

      const retried = await worker.waitForLog((l) =>
        l.msg === "route will be retried" && l["route_id"] === id
      );
      assert.match(String(retried["error"]), /timed out after 500 ms/);
      await rx.waitFor((a) => a.id === id && a.n === 2);
      await worker.waitForLog((l) => l.msg === "route sent" && l["route_id"] === id);
      const attempts = await store.attempts(id);
      assert.deepEqual(attempts.map((a) => a.outcome), ["retry", "sent"]);
      assert.ok(
        attempts[0]!.durationMs >= SEND_TIMEOUT_MS * 0.95,
        `the hung send lasted ${attempts[0]!.durationMs} ms inside its route transaction`,
      );
      assert.equal((await store.getRoute(id))?.status, "sent");
      await worker.kill("SIGTERM");
      assert.equal(worker.logs.filter((l) => l.level === "error").length, 0);
    },
  );

  it(
    "a frozen worker's lock is ended by the safety net; another worker delivers; the thawed worker goes on",
    {
      timeout: 60_000,
    },
    async () => {
      const { store, sql, schema } = env!;
      const rx = receiver!;
      const frozen = await startWorker(CURRENT, ["--interval", "200"], {
        ...vars,
        HERALD_SEND_TIMEOUT_MS: String(FROZEN_SEND_TIMEOUT_MS),
      });
      const { routeIds } = await store.enqueue({ kind: "fault.frozen" }, [
        { channel: "webhook", destination: `${rx.url}/frozen` },
      ]);
      const id = routeIds[0]!;
      const arrived = await rx.waitFor((a) => a.id === id && a.n === 1);
      await frozen.kill("SIGSTOP");
      // Frozen well inside its 3 s send timeout, so the lock is still its.
      assert.equal(await claimable(sql, schema, id), false, "still locked by the frozen worker");
      // The release is watched before the second worker starts (which takes
      // seconds on a busy machine), so its start-up is not counted as held.
      await untilClaimable(sql, schema, id, "the safety net releases the frozen worker's lock");
      const held = performance.now() - arrived.at;
      figures["frozen_worker_lock_held_ms"] = ms(held);
      figures["frozen_send_timeout_ms"] = FROZEN_SEND_TIMEOUT_MS;
      figures["safety_net_ms"] = FROZEN_SAFETY_NET_MS;
      assert.ok(
        held >= FROZEN_SEND_TIMEOUT_MS,
        `held ${held} ms: not released before the send timeout`,
      );
      assert.ok(held < FROZEN_SAFETY_NET_MS + 3_000, `held ${held} ms: the safety net ended it`);
      const other = await startWorker(RUNTIMES[(RUNTIMES.indexOf(CURRENT) + 1) % 3]!, [
        "--interval",
        "200",
      ], vars);
      await rx.waitFor((a) => a.id === id && a.n === 2);
      await other.waitForLog((l) => l.msg === "route sent" && l["route_id"] === id);

      const seen = frozen.logs.length;
      await frozen.kill("SIGCONT");
      await frozen.waitForLog(
        (l) => l.level === "warn" && frozen.logs.indexOf(l) >= seen,
        "a warning",
      );
      // It goes on: it still delivers new routes.
      await other.kill("SIGTERM");
      const { routeIds: more } = await store.enqueue({ kind: "fault.after" }, [
        { channel: "webhook", destination: `${rx.url}/after` },
      ]);
      await rx.waitFor((a) => a.id === more[0] && a.n === 1); // held by the receiver: a send, so alive
      assert.equal(frozen.exit, undefined, `the thawed worker died:\n${deathNote(frozen)}`);
      const route = await store.getRoute(id);
      assert.equal(route?.status, "sent", "not overwritten by the thawed worker");
      assert.deepEqual((await store.attempts(id)).map((a) => a.outcome), ["sent"]);
    },
  );
});
