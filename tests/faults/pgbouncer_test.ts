/**
 * Topology: a fleet behind a real PgBouncer (1.18, transaction pooling).
 * A Deno, a Bun and a Node worker (`--concurrency 8` each) claim and finalise
 * through the pooler with no named prepared statements (`--no-prepare`, as
 * PgBouncer 1.18's transaction mode keeps none), and `LISTEN` on a direct
 * connection (`--listen-url`). The poll interval is an hour, so every route
 * goes out on a wake-up. Every route is delivered exactly once.
 *
 * Size: 2,000 routes under CI; 10,000 with HERALD_FAULTS_FULL=1.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostgresStore } from "../../store.ts";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { deathNote, killAll, type Program, RUNTIMES, startWorker } from "./_procs.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { deliveryCounts, enqueueMany, statusCounts, until } from "./_db.ts";
import { ms, printFigures, size } from "./_figures.ts";
import { type Bouncer, pgbouncerBinary, startBouncer } from "./_pgbouncer.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const ROUTES = size(2_000, 10_000);
const SKIP = pgbouncerBinary() === undefined
  ? "pgbouncer is not installed here (apt-get install pgbouncer; .ci/run does)"
  : false;

describe("topology: a fleet behind PgBouncer in transaction mode", { skip: SKIP }, () => {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;
  let bouncer: Bouncer | undefined;
  let receiver: Receiver | undefined;
  let pooled: PostgresStore | undefined;

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    const direct = new URL(DATABASE_URL);
    bouncer = await startBouncer(
      { host: direct.hostname, port: Number(direct.port || 5432), db: direct.pathname.slice(1) },
      { clients: 100, serverPool: 12 },
    );
    pooled = new PostgresStore({ url: bouncer.url, schema: env.schema, max: 2, prepare: false });
    receiver = await startReceiver(() => 204);
  });
  after(async () => {
    await killAll();
    await pooled?.close();
    await receiver?.close();
    await bouncer?.stop();
    await env?.cleanup();
  });

  it(`Deno, Bun and Node workers deliver ${ROUTES} routes through it exactly once`, {
    timeout: 240_000,
  }, async () => {
    const rx = receiver!;
    const vars = {
      DATABASE_URL: bouncer!.url,
      HERALD_LISTEN_URL: DATABASE_URL,
      HERALD_PREPARE: "false",
      HERALD_SCHEMA: env!.schema,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
    };
    const flags = ["--concurrency", "8", "--interval", "3600000"];
    const workers: Program[] = [];
    for (const runtime of RUNTIMES) {
      const w = await startWorker(runtime, flags, vars, "hf_bouncer");
      await w.waitForLog((l) => l.msg === "listening for new routes", "listening");
      workers.push(w);
    }
    const began = performance.now();
    // Enqueued through the pooler too, as an application behind it would.
    const ids = await enqueueMany(pooled!, rx.url, ROUTES, "bouncer");
    await rx.waitForDistinct(ids.length);
    const seconds = (performance.now() - began) / 1000;
    const counts = await until("every route sent", async () => {
      const c = await statusCounts(env!.sql, env!.schema);
      return (c["sent"] ?? 0) === ids.length ? c : undefined;
    });
    const { lost, duplicates } = deliveryCounts(ids, rx.counts);
    printFigures("pgbouncer_fleet", {
      workers: workers.map((w) => w.runtime),
      routes: ids.length,
      lost,
      duplicates,
      seconds: ms(seconds * 1000) / 1000,
      routes_per_second: Math.round(ids.length / seconds),
    });
    for (const w of workers) {
      assert.equal(w.exit, undefined, `the ${w.runtime} worker died:\n${deathNote(w)}`);
      const errors = w.logs.filter((l) => l.level === "error" || l.level === "warn");
      assert.deepEqual(errors, [], `${w.runtime}: no warnings or errors`);
    }
    assert.deepEqual(counts, { sent: ids.length });
    assert.equal(lost, 0);
    assert.equal(duplicates, 0, "exactly once: no fault, no duplicate");
  });
});
