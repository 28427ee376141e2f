/**
 * Fault: the database refuses a route's outcome, on real Postgres. Triggers
 * (created by the test in its own schema) refuse chosen writes after the
 * send went out: the attempt log, the route row's update once or always, or
 * only the `sent` status. Whatever is refused:
 *
 * - a tick never sends more than `routesPerTick` routes;
 * - a route whose outcome cannot be recorded is not sent again and again:
 *   its outcome is recorded route by route by its own transaction, which
 *   still holds it, and commits (without the attempt log if that is what is
 *   refused; salvaged in a transaction of its own when that one failed
 *   outright), or it is held back with its attempt counted, or poisoned
 *   (visible, and retried only by an operator); where the database refuses
 *   every write to the row, the worker remembers it and pauses claiming, so
 *   it is sent at most once more per worker for a delivered route;
 * - in batch mode one refused record does not roll back the others';
 * - a nonsense HTTP status from a channel never reaches SQL.
 *
 * Ticks are driven by hand with an injected clock: nothing here waits on time.
 */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "../../worker.ts";
import type { WorkerOptions } from "../../worker.ts";
import { PostgresStore } from "../../store.ts";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { recordingLogger, scriptedChannel } from "../_helpers/kit.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("fault: the database refuses a route's outcome", () => {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;
  let now = 0;

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    const { sql, schema } = env;
    const q = `"${schema}"`;
    // mode: 'once' (the first update raises), 'always', or 'sent' (only a 'sent' status).
    await sql.unsafe(`
      CREATE TABLE ${q}.poison (route_id uuid PRIMARY KEY, mode text NOT NULL);
      CREATE TABLE ${q}.refuse_log (refuse boolean NOT NULL);
      CREATE SEQUENCE ${q}.poison_hits;
      CREATE FUNCTION ${q}.poison_update() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE p ${q}.poison;
      BEGIN
        SELECT * INTO p FROM ${q}.poison WHERE route_id = NEW.route_id;
        IF FOUND AND (p.mode = 'always' OR (p.mode = 'sent' AND NEW.status = 'sent')
                      OR (p.mode = 'once' AND nextval('${q}.poison_hits') = 1)) THEN
          RAISE EXCEPTION 'poisoned route %', NEW.route_id;
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER poison BEFORE UPDATE ON ${q}.notification_routes
        FOR EACH ROW EXECUTE FUNCTION ${q}.poison_update();
      CREATE FUNCTION ${q}.refuse_attempt_log() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM ${q}.refuse_log WHERE refuse) THEN
          RAISE EXCEPTION 'the attempt log is full';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse_log BEFORE INSERT ON ${q}.route_attempts
        FOR EACH ROW EXECUTE FUNCTION ${q}.refuse_attempt_log();`);
  });
  beforeEach(async () => {
    const { sql, schema } = env!;
    const s = sql(schema);
    await sql`TRUNCATE ${s}.poison, ${s}.refuse_log, ${s}.notifications CASCADE`;
    now = 0;
  });
  after(async () => {
    await env?.cleanup();
  });

  function worker(options: Partial<WorkerOptions> = {}, store: PostgresStore = env!.store) {
    const channel = scriptedChannel(() => Promise.resolve());
    const { logger, lines } = recordingLogger();
    const w = new Worker({
      store,
      channels: { log: channel },
      logger,
      random: () => 0,
      now: () => now,
      ...options,
    });
    const events: [string, string][] = [];
    for (const name of ["sent", "retry", "failed", "poisoned"]) {
      w.addEventListener(name, (e) => {
        events.push([name, (e as CustomEvent<{ routeId: string }>).detail.routeId]);
      });
    }
    const sends = (id: string) => channel.calls.filter((r) => r.id === id).length;
    return { w, channel, lines, events, sends };
  }
  const enqueue = async (n: number, extra: object = {}) =>
    (await env!.store.enqueue(
      { kind: "k" },
      Array.from({ length: n }, (_, i) => ({ channel: "log", destination: `d${i}`, ...extra })),
    )).routeIds;
  const poison = (id: string, mode: "once" | "always" | "sent") =>
    env!.sql`INSERT INTO ${env!.sql(env!.schema)}.poison VALUES (${id}, ${mode})`;

  it("a refused attempt log: no tick sends more than routesPerTick, each route goes out once", async () => {
    const { sql, schema } = env!;
    await sql`INSERT INTO ${sql(schema)}.refuse_log VALUES (true)`;
    const ids = await enqueue(20);
    const { w, channel, lines } = worker({ routesPerTick: 5, maxAttempts: 3 });
    const perTick: number[] = [];
    for (let i = 0; i < 12; i++) {
      const before = channel.calls.length;
      await w.tick();
      perTick.push(channel.calls.length - before);
    }
    assert.ok(perTick.every((n) => n <= 5), `sends per tick: ${perTick}`);
    assert.deepEqual(perTick, [5, 5, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
    const routes = await Promise.all(ids.map((id) => env!.store.getRoute(id)));
    assert.deepEqual(routes.map((r) => [r?.status, r?.attempts]), ids.map(() => ["sent", 1]));
    assert.equal(channel.calls.length, 20, "each route sent once");
    assert.equal(
      lines.filter((l) => /without its attempt-log row/.test(l.msg)).length,
      20,
      "each salvage is logged",
    );
  });

  it("a finalise refused once: recorded route by route in the same transaction, sent once", async () => {
    const [id] = await enqueue(1);
    await poison(id!, "once");
    const { w, channel, lines } = worker();
    assert.equal(await w.tick(), 1);
    const route = await env!.store.getRoute(id!);
    assert.deepEqual([route?.status, route?.attempts], ["sent", 1]);
    assert.deepEqual((await env!.store.attempts(id!)).map((a) => a.outcome), ["sent"]);
    assert.equal(channel.calls.length, 1);
    assert.ok(lines.some((l) => l.level === "warn" && /recorded route by route/.test(l.msg)));
    assert.ok(!lines.some((l) => /rolled back/.test(l.msg)), "its own transaction committed");
    assert.equal(lines.filter((l) => l.level === "error").length, 0);
  });

  it("a refused 'sent' status: the route is poisoned, seen by operators, not sent by another worker", async () => {
    const [id, behind] = await enqueue(2);
    await poison(id!, "sent");
    const first = worker();
    assert.equal(await first.w.tick(), 2);
    assert.deepEqual(first.events, [["poisoned", id], ["sent", behind]]);
    const route = await env!.store.getRoute(id!);
    assert.equal(route?.status, "poisoned");
    assert.match(route?.lastError ?? "", /outcome could not be recorded \(sent\)/);
    assert.ok(first.lines.some((l) => l.level === "error" && /poisoned/.test(l.msg)));
    // Another worker of the fleet (its own pool, its own memory) leaves it alone.
    const other = await freshStoreOn(env!.schema);
    try {
      const second = worker({}, other.store);
      assert.equal(await second.w.tick(), 0);
      assert.equal(second.sends(id!), 0);
    } finally {
      await other.close();
    }
    assert.equal((await env!.store.stats()).byStatus.poisoned, 1);
    await env!.sql`DELETE FROM ${env!.sql(env!.schema)}.poison`;
    const poisoned = await env!.store.getRoute(id!);
    assert.ok(poisoned?.sentAt instanceof Date, "it was delivered: sent_at says so");
    // Delivered already: neither retry --failed nor a plain retry sends it again...
    assert.equal((await env!.store.retry({ failed: true })).changed, 0);
    assert.equal((await env!.store.retry({ ids: [id!] })).refusedSent, 1);
    // ...only an operator who means it.
    assert.equal((await env!.store.retry({ ids: [id!] }, { force: true })).changed, 1);
    assert.equal(await first.w.tick(), 1);
    assert.equal((await env!.store.getRoute(id!))?.status, "sent");
    assert.equal(first.sends(id!), 2, "sent once more, after the operator's forced retry");
  });

  it("every write to the row refused: sent once, held in memory, claiming paused; the rest go out", async () => {
    const [stuck] = await enqueue(1, { priority: -1 });
    const good = await enqueue(5);
    await poison(stuck!, "always");
    const { w, lines, sends } = worker({ maxAttempts: 3 });
    assert.equal(await w.tick(), 1, "the refusal ends the tick: claiming pauses");
    assert.equal(await w.tick(), 0, "paused");
    assert.ok(lines.some((l) => l.level === "error" && /claiming paused/.test(l.msg)));
    now += 1_000; // backoff(1) with random() = 0 is 500 ms
    assert.equal(await w.tick(), 5);
    for (let i = 0; i < 5; i++) {
      now += 3_600_000;
      await w.tick();
    }
    assert.equal(sends(stuck!), 1, "a delivered route is never sent again by this worker");
    const statuses = await Promise.all(
      good.map(async (id) => (await env!.store.getRoute(id))?.status),
    );
    assert.deepEqual(statuses, good.map(() => "sent"));
    const route = await env!.store.getRoute(stuck!);
    assert.deepEqual([route?.status, route?.attempts], ["queued", 0], "nothing could be written");
  });

  it("every write refused on a failing route: this worker sends it at most maxAttempts times", async () => {
    const [stuck] = await enqueue(1);
    await poison(stuck!, "always");
    const channel = scriptedChannel(() => Promise.reject(new Error("HTTP 503")));
    const { w } = worker({ maxAttempts: 3, channels: { log: channel } });
    for (let i = 0; i < 20; i++) {
      await w.tick();
      now += 3_600_000; // past every hold and pause
    }
    assert.equal(channel.calls.length, 3, "attempts counted in memory when the row refuses them");
  });

  it("batch mode: one refused record does not roll back the others' outcomes", async () => {
    const ids = await enqueue(5);
    await poison(ids[2]!, "always");
    const { w, sends } = worker({ routesPerTransaction: 5 });
    assert.equal(await w.tick(), 5);
    for (const [i, id] of ids.entries()) {
      const route = await env!.store.getRoute(id);
      if (i === 2) continue;
      assert.equal(route?.status, "sent", `route ${i}`);
      assert.deepEqual((await env!.store.attempts(id)).map((a) => a.outcome), ["sent"]);
    }
    assert.equal(sends(ids[2]!), 1);
  });

  it("a channel reporting a nonsense HTTP status: the outcome is recorded, without it", async () => {
    const ids = await enqueue(3);
    const statuses = [1e10, Number.NaN, 204];
    const channel = scriptedChannel((_r, _s, call) =>
      Promise.resolve({ httpStatus: statuses[call - 1] })
    );
    const { w, lines } = worker({ channels: { log: channel } });
    assert.equal(await w.tick(), 3);
    assert.equal(channel.calls.length, 3);
    const logs = await Promise.all(ids.map((id) => env!.store.attempts(id)));
    assert.deepEqual(logs.map((l) => l.map((a) => [a.outcome, a.httpStatus])), [
      [["sent", null]],
      [["sent", null]],
      [["sent", 204]],
    ]);
    assert.equal(lines.filter((l) => l.level !== "debug").length, 0, "nothing went wrong");
  });
});

/** A second store (its own pool) on the same schema: another worker of the fleet. */
function freshStoreOn(schema: string): Promise<{ store: PostgresStore; close(): Promise<void> }> {
  const store = new PostgresStore({ url: DATABASE_URL, schema, max: 2 });
  return Promise.resolve({ store, close: () => store.close() });
}
