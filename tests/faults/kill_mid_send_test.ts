/**
 * Fault: `kill -9` of a worker while its channel is inside a send.
 *
 * Each round enqueues one webhook route. The only running worker claims it
 * and POSTs it to the local receiver, which holds the request open: the
 * worker is now mid-send, its route transaction open, the row locked. A
 * standby worker of the next runtime is started, then the holder is killed
 * with SIGKILL. The standby must claim and deliver the route at its next poll:
 * Postgres drops the dead connection and its lock at once, so there is no
 * lease to expire (the send timeout is set to 60 s to make a lease-like wait
 * stand out). Victims take turns: Deno, Bun, Node, Deno, ...; every round
 * spawns one process and kills one.
 *
 * Figures: routes lost (must be 0) and re-claim time (kill -> the second
 * delivery arriving at the receiver), which is bounded by the standby's poll
 * interval (200 ms here) since nothing announces a released lock.
 *
 * Size: 20 rounds under every runner (about 15 s); it is cheap enough.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { killAll, type Program, RUNTIMES, startWorker } from "./_procs.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { listeningIdle, lockHolders, statusCounts, until } from "./_db.ts";
import { printFigures, summary } from "./_figures.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const ROUNDS = 20;
const INTERVAL_MS = 200;
const SEND_TIMEOUT_MS = 60_000;

describe("fault: kill -9 mid-send", () => {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;
  let receiver: Receiver | undefined;

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    // The first request for a route is held open (the worker is mid-send); later ones succeed.
    receiver = await startReceiver((a) => (a.n === 1 ? "hold" : 204));
  });
  after(async () => {
    await killAll();
    await receiver?.close();
    await env?.cleanup();
  });

  it(`${ROUNDS} rounds: another worker re-claims and delivers at once, nothing lost`, {
    timeout: 240_000,
  }, async () => {
    const { store, sql, schema } = env!;
    const rx = receiver!;
    const label = `hf_kill_${schema.slice(-8)}`;
    const vars = {
      DATABASE_URL,
      HERALD_SCHEMA: schema,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
      HERALD_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS),
      HERALD_LOG_LEVEL: "debug",
    };
    const flags = ["--interval", String(INTERVAL_MS)];
    const reclaim: number[] = [];
    const victims: string[] = [];
    const ids: string[] = [];
    let holder: Program = await startWorker(RUNTIMES[0]!, flags, vars, label);
    for (let round = 0; round < ROUNDS; round++) {
      const { routeIds } = await store.enqueue({ kind: "fault.kill", payload: { round } }, [
        { channel: "webhook", destination: `${rx.url}/round/${round}` },
      ]);
      const id = routeIds[0]!;
      ids.push(id);
      await rx.waitFor((a) => a.id === id && a.n === 1);
      assert.deepEqual(await lockHolders(sql, label), [holder.name], "the holder is mid-send");
      const standby = await startWorker(RUNTIMES[(round + 1) % 3]!, flags, vars, label);
      // Kill once the standby is settled (listening, its start-up ticks over), so the
      // figure is a running worker's re-claim time, not a lucky start-up tick's.
      await until(
        "the standby listens and is idle",
        () => listeningIdle(sql, standby.name, schema),
      );
      const killedAt = performance.now();
      await holder.kill("SIGKILL");
      victims.push(holder.runtime);
      const second = await rx.waitFor((a) => a.id === id && a.n === 2);
      reclaim.push(second.at - killedAt);
      await standby.waitForLog((l) => l.msg === "route sent" && l["route_id"] === id, "route sent");
      holder = standby;
    }
    await holder.kill("SIGTERM");

    const counts = await statusCounts(sql, schema);
    const lost = ids.length - (counts["sent"] ?? 0);
    const times = summary(reclaim);
    printFigures("kill_mid_send", {
      rounds: ROUNDS,
      victims: Object.fromEntries(RUNTIMES.map((r) => [r, victims.filter((v) => v === r).length])),
      routes: ids.length,
      lost,
      duplicates: ids.filter((id) => rx.counts.get(id) !== 2).length,
      reclaim_ms: times,
      poll_interval_ms: INTERVAL_MS,
      send_timeout_ms: SEND_TIMEOUT_MS,
    });
    assert.equal(lost, 0, `every route sent: ${JSON.stringify(counts)}`);
    for (const id of ids) assert.equal(rx.counts.get(id), 2, "held once, delivered once");
    // No lease wait: well within a poll interval plus scheduling slack, far below the send timeout.
    assert.ok(times.max < INTERVAL_MS + 3_000, `re-claim max ${times.max} ms`);
    await until(
      "no session of ours left",
      async () => (await lockHolders(sql, label)).length === 0 ? true : undefined,
    );
  });
});
