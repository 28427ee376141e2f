/**
 * Fault: `kill -9` of a worker mid-send to a destination capped at one send
 * in flight across the fleet.
 *
 * Each round: the holder claims a route of the capped destination and the
 * receiver holds the request open, so the holder owns the destination's only
 * in-flight slot. A standby worker of the next runtime starts, and a second
 * route to the same destination is enqueued: the standby cannot send it
 * while the slot is held. The holder is killed with SIGKILL. The slot is an
 * advisory lock of the holder's transaction, so it dies with its connection:
 * the standby must then deliver both routes. Had the slot leaked (a counter
 * nobody decrements), the round would never finish. Victims take turns:
 * Deno, Bun, Node, ...
 *
 * Size: 6 rounds (two per runtime), about 10 s.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { killAll, type Program, RUNTIMES, startWorker } from "./_procs.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { listeningIdle, lockHolders, statusCounts, until } from "./_db.ts";
import { printFigures } from "./_figures.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const ROUNDS = 6;
const INTERVAL_MS = 200;

describe("fault: kill -9 mid-send never leaves a destination's in-flight slot taken", () => {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;
  let receiver: Receiver | undefined;

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    // A route's first request is held open (its sender is mid-send); later ones succeed.
    receiver = await startReceiver((a) => (a.n === 1 && a.path.endsWith("/held") ? "hold" : 204));
  });
  after(async () => {
    await killAll();
    await receiver?.close();
    await env?.cleanup();
  });

  it(`${ROUNDS} rounds: the standby delivers both routes once the holder dies`, {
    timeout: 180_000,
  }, async () => {
    const { store, sql, schema } = env!;
    const rx = receiver!;
    await store.configureDestination("webhook", rx.url, { maxInFlight: 1 });
    const label = `hf_slot_${schema.slice(-8)}`;
    const vars = {
      DATABASE_URL,
      HERALD_SCHEMA: schema,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
      HERALD_SEND_TIMEOUT_MS: "60000",
      HERALD_LOG_LEVEL: "debug",
    };
    const flags = ["--interval", String(INTERVAL_MS), "--concurrency", "2"];
    const ids: string[] = [];
    let holder: Program = await startWorker(RUNTIMES[0]!, flags, vars, label);
    for (let round = 0; round < ROUNDS; round++) {
      const first = (await store.enqueue({ kind: "fault.slot" }, [
        { channel: "webhook", destination: `${rx.url}/round/${round}/held` },
      ])).routeIds[0]!;
      await rx.waitFor((a) => a.id === first && a.n === 1);
      const d = await store.destination("webhook", rx.url);
      assert.equal(d?.inFlight, 1, "the holder owns the one slot");
      const standby = await startWorker(RUNTIMES[(round + 1) % 3]!, flags, vars, label);
      const second = (await store.enqueue({ kind: "fault.slot" }, [
        { channel: "webhook", destination: `${rx.url}/round/${round}/next` },
      ])).routeIds[0]!;
      ids.push(first, second);
      // The standby has heard of the second route and looked (it listens, and is idle
      // again): it must not have sent it, since the holder owns the only slot.
      await until(
        "the standby listens and is idle",
        () => listeningIdle(sql, standby.name, schema),
      );
      assert.equal(rx.counts.get(second), undefined, "capped: not sent while the slot is held");
      await holder.kill("SIGKILL");
      await rx.waitFor((a) => a.id === first && a.n === 2);
      await rx.waitFor((a) => a.id === second);
      await standby.waitForLog((l) => l.msg === "route sent" && l["route_id"] === second, "sent");
      holder = standby;
    }
    await holder.kill("SIGTERM");
    await until(
      "no session of ours left",
      async () => (await lockHolders(sql, label)).length === 0 ? true : undefined,
    );
    const counts = await statusCounts(sql, schema);
    const d = await store.destination("webhook", rx.url);
    printFigures("destination_slots", { rounds: ROUNDS, routes: ids.length, ...counts });
    assert.equal(counts["sent"], ids.length, `every route sent: ${JSON.stringify(counts)}`);
    assert.equal(d?.inFlight, 0, "no slot left behind");
  });
});
