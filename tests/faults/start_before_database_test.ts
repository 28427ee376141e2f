/**
 * Topology: a worker started before its database (a compose file, a
 * rollout, a failover window). `herald run` waits, logging each attempt,
 * until Postgres accepts connections, then migrates and delivers; with
 * `--wait-for-database 0` it exits 1 at once. On a private cluster this test
 * stops and starts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostgresStore } from "../../store.ts";
import { type Cluster, startCluster } from "./_cluster.ts";
import { CURRENT, deathNote, killAll, startProgram } from "./_procs.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const SCHEMA = "herald_late_db";

describe("topology: the worker starts before the database", () => {
  let cluster: Cluster | undefined;
  let receiver: Receiver | undefined;

  before(async () => {
    cluster = await startCluster();
    receiver = await startReceiver(() => 204);
  });
  after(async () => {
    await killAll();
    await receiver?.close();
    await cluster?.destroy();
  });

  it(`${CURRENT}: waits, logging each attempt, then migrates and delivers`, {
    timeout: 120_000,
  }, async () => {
    const store = new PostgresStore({ url: cluster!.url, schema: SCHEMA, max: 1 });
    await store.migrate();
    const { routeIds: [id] } = await store.enqueue({ kind: "late" }, [{
      channel: "webhook",
      destination: `${receiver!.url}/late`,
    }]);
    await store.close();
    await cluster!.stop();
    const vars = {
      DATABASE_URL: cluster!.url,
      HERALD_SCHEMA: SCHEMA,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
    };

    const impatient = startProgram(CURRENT, ["run", "--once", "--wait-for-database", "0"], vars);
    assert.equal((await impatient.exited).code, 1, "no wait: exit 1 at once");

    const w = startProgram(CURRENT, ["run", "--once", "--wait-for-database", "60s"], vars);
    await w.waitForLog((l) => l.msg === "database not reachable yet; waiting", "waiting");
    await w.waitForLog((l) =>
      l.msg === "database not reachable yet; waiting" && l["attempt"] === 2
    );
    await cluster!.start();
    const exit = await w.exited;
    assert.equal(exit.code, 0, deathNote(w));
    assert.ok(w.logs.some((l) => l.msg === "database reachable"));
    assert.equal(receiver!.counts.get(id!), 1, "delivered once the database was there");
  });
});
