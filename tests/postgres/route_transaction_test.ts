/**
 * The route transaction on real Postgres when one of its statements is
 * refused: what it goes back to a savepoint for must still commit, and a
 * transaction whose statement failed unhandled must never commit.
 */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DESTINATION_DEFAULTS } from "../../core/destination.ts";
import { rec } from "../_helpers/store_contract.ts";
import { PostgresStore } from "../../store.ts";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("a route transaction on Postgres, when a statement is refused", () => {
  let env: Awaited<ReturnType<typeof freshStore>> | undefined;

  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    const q = `"${env.schema}"`;
    // Refuses the first update of a route named in `refuse_once` (counted by
    // a sequence: a refused statement's own writes are undone), and every
    // write to a destination while `refuse_destinations` holds a row.
    await env.sql.unsafe(`
      CREATE TABLE ${q}.refuse_once (route_id uuid PRIMARY KEY);
      CREATE SEQUENCE ${q}.refusals;
      CREATE TABLE ${q}.refuse_destinations (on_ boolean);
      CREATE FUNCTION ${q}.refuse_route() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT FROM ${q}.refuse_once WHERE route_id = NEW.route_id)
           AND nextval('${q}.refusals') = 1 THEN
          RAISE EXCEPTION 'refused once: %', NEW.route_id;
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse_route BEFORE UPDATE ON ${q}.notification_routes
        FOR EACH ROW EXECUTE FUNCTION ${q}.refuse_route();
      CREATE FUNCTION ${q}.refuse_destination() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT FROM ${q}.refuse_destinations) THEN
          RAISE EXCEPTION 'destinations refused';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse_destination BEFORE INSERT OR UPDATE ON ${q}.destinations
        FOR EACH ROW EXECUTE FUNCTION ${q}.refuse_destination();`);
  });
  after(async () => {
    await env?.cleanup();
  });
  // Each test claims the one route it enqueued: what an earlier one left queued goes.
  beforeEach(async () => {
    const q = `"${env!.schema}"`;
    await env!.sql.unsafe(`DELETE FROM ${q}.route_attempts; DELETE FROM ${q}.notification_routes;
      DELETE FROM ${q}.refuse_once; DELETE FROM ${q}.refuse_destinations;
      ALTER SEQUENCE ${q}.refusals RESTART`);
  });

  const enqueueOne = async (destination: string): Promise<string> => {
    const { routeIds } = await env!.store.enqueue({ kind: "k" }, [
      { channel: "webhook", destination },
    ]);
    return routeIds[0]!;
  };

  it("a refused finalise is recorded by its fallback, and that commits", async () => {
    const id = await enqueueOne("https://a.example/hook");
    await env!.sql`INSERT INTO ${env!.sql(env!.schema)}.refuse_once VALUES (${id})`;
    const record = rec(id, { status: "sent", attempts: 1 });
    // One connection: committed by hand, it must be back in the pool for what follows.
    const store = new PostgresStore({ url: DATABASE_URL, schema: env!.schema, max: 1 });
    try {
      const results = await store.transaction(async (tx) => {
        const [route] = await tx.claimDue({ limit: 1, exclude: [] });
        assert.equal(route?.id, id);
        return await tx.finalise([record], [{
          record,
          claimedAttempts: 0,
          holdMs: 0,
          poison: true,
        }]);
      });
      assert.deepEqual(results, ["recorded"]);
      const route = await store.getRoute(id);
      assert.deepEqual([route?.status, route?.attempts], ["sent", 1]);
      assert.deepEqual((await store.attempts(id)).map((a) => a.outcome), ["sent"]);
      const again = await store.transaction((tx) => tx.claimDue({ limit: 1, exclude: [] }));
      assert.deepEqual(again, [], "nothing left to claim, and the connection is free to ask");
    } finally {
      await store.close();
    }
  });

  it("a connection lost after the fallback recorded: nothing more is sent down it", async () => {
    const id = await enqueueOne("https://d.example/hook");
    const s = env!.sql(env!.schema);
    await env!.sql`INSERT INTO ${s}.refuse_once VALUES (${id})`;
    const record = rec(id, { status: "sent", attempts: 1 });
    const store = new PostgresStore({ url: DATABASE_URL, schema: env!.schema, max: 1 });
    let recovered!: () => void;
    const fellBack = new Promise<void>((r) => (recovered = r));
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    let returned!: () => void;
    const done = new Promise<void>((r) => (returned = r));
    try {
      const running = store.transaction(async (tx) => {
        try {
          await tx.claimDue({ limit: 1, exclude: [] });
          await tx.finalise([record], [{ record, claimedAttempts: 0, holdMs: 0, poison: true }]);
          recovered();
          await gate; // a send still running when the connection goes
        } finally {
          returned();
        }
      });
      running.catch(() => {});
      await fellBack;
      // The transaction's backend: the one session holding a lock on this schema's routes.
      const [holder] = await env!.sql`
        SELECT l.pid FROM pg_locks l
        WHERE l.relation = ${`"${env!.schema}".notification_routes`}::regclass
          AND l.pid <> pg_backend_pid()`;
      await env!.sql`SELECT pg_terminate_backend(${holder!["pid"] as number})`;
      await assert.rejects(running, (err: { code?: string }) => err.code === "CONNECTION_CLOSED");
      go();
      await done;
      // Its one connection serves the next caller; a late COMMIT would have
      // thrown outside any promise, or landed in this session.
      assert.equal((await store.getRoute(id))?.status, "queued", "rolled back with the session");
    } finally {
      go();
      await store.close();
    }
  });

  it("a refused destination report leaves the outcomes finalised before it committed", async () => {
    const id = await enqueueOne("https://b.example/hook");
    const s = env!.sql(env!.schema);
    await env!.sql`INSERT INTO ${s}.refuse_destinations VALUES (true)`;
    try {
      await env!.store.transaction(async (tx) => {
        const [route] = await tx.claimDue({ limit: 1, exclude: [] });
        await tx.finalise([rec(route!.id, { status: "sent", attempts: 1 })]);
        const report = {
          channel: "webhook",
          key: route!.destinationKey!,
          ok: 0,
          fail: 1,
          gone: false,
          probe: false,
          error: "HTTP 503",
        };
        await assert.rejects(
          tx.reportDestinations!([report], DESTINATION_DEFAULTS),
          /destination health could not be recorded/,
        );
      });
    } finally {
      await env!.sql`DELETE FROM ${s}.refuse_destinations`;
    }
    assert.equal((await env!.store.getRoute(id))?.status, "sent");
  });

  it("a salvage whose first step is refused goes down its ladder, and that commits", async () => {
    const id = await enqueueOne("https://e.example/hook");
    await env!.sql`INSERT INTO ${env!.sql(env!.schema)}.refuse_once VALUES (${id})`;
    const record = rec(id, { status: "sent", attempts: 1 });
    const results = await env!.store.salvage([
      { record, claimedAttempts: 0, holdMs: 0, poison: true },
    ]);
    assert.deepEqual(results, ["recorded_without_log"]);
    const route = await env!.store.getRoute(id);
    assert.deepEqual([route?.status, route?.attempts], ["sent", 1]);
    assert.deepEqual(await env!.store.attempts(id), []);
  });

  it("a statement that failed unhandled rolls the whole transaction back", async () => {
    const id = await enqueueOne("https://c.example/hook");
    await env!.sql`INSERT INTO ${env!.sql(env!.schema)}.refuse_once VALUES (${id})`;
    await assert.rejects(
      env!.store.transaction(async (tx) => {
        const [route] = await tx.claimDue({ limit: 1, exclude: [] });
        // No fallbacks: the refusal is the caller's to handle; swallowed here.
        await tx.finalise([rec(route!.id, { status: "sent", attempts: 1 })]).catch(() => {});
      }),
      /refused once|aborted|rolled back/,
    );
    const route = await env!.store.getRoute(id);
    assert.deepEqual([route?.status, route?.attempts], ["queued", 0]);
  });
});

describe("a route transaction's destination reports", () => {
  it("lock destinations in one order, whatever the claim's: two batches never deadlock", async () => {
    const env = await freshStore();
    const holder = await env.sql.reserve();
    try {
      await env.store.migrate();
      const s = env.sql(env.schema);
      const [d1, d2] = ["https://d1.example", "https://d2.example"];
      await env.sql`INSERT INTO ${s}.destinations (channel, key)
                    VALUES ('webhook', ${d1}), ('webhook', ${d2})`;
      // Another batch's transaction holds d1.
      await holder`BEGIN`;
      await holder`SELECT FROM ${s}.destinations WHERE key = ${d1} FOR UPDATE`;
      const report = (key: string) => ({
        channel: "webhook",
        key,
        ok: 0,
        fail: 1,
        gone: false,
        probe: false,
        error: "HTTP 503",
      });
      // Reported in claim order d2, d1: locked d1 first, so it waits holding nothing.
      const reporting = env.store.transaction((tx) =>
        tx.reportDestinations!([report(d2), report(d1)], DESTINATION_DEFAULTS)
      );
      const waiting = () =>
        env.sql`SELECT FROM pg_stat_activity
                WHERE wait_event_type = 'Lock' AND query LIKE ${`%"${env.schema}".destinations%`}`;
      // Polled, a bounded number of times: the report's backend waits on d1 once it shows here.
      for (let polls = 0; (await waiting()).length === 0; polls++) {
        assert.ok(polls < 10_000, "the report never waited on d1's lock");
      }
      await env.sql.begin((tx) =>
        tx`SELECT FROM ${s}.destinations WHERE key = ${d2} FOR UPDATE NOWAIT`
      );
      await holder`COMMIT`;
      const changes = await reporting;
      assert.deepEqual(changes, [], "one failure opens nothing");
      const rows = await env.sql`SELECT key, consecutive_failures FROM ${s}.destinations
                                 ORDER BY key`;
      assert.deepEqual(rows.map((r) => [r["key"], r["consecutive_failures"]]), [[d1, 1], [d2, 1]]);
    } finally {
      // Whatever failed, d1 is let go, so the report (and the cleanup) can end.
      await holder`ROLLBACK`.catch(() => {});
      holder.release();
      await env.cleanup();
    }
  });
});
