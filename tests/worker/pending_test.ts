/**
 * Outcomes the database was out of reach for: the route transaction's commit
 * is lost and the salvage cannot reach the database either. The worker keeps
 * the outcome, does not send the route again, and records it before its next
 * claim once the database answers.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HeraldError } from "../../core/errors.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";
import { ok, setup } from "./_setup.ts";

checkLeaks();

/**
 * A route sent, its commit lost, and the salvage unable to reach the
 * database: its outcome is kept by the worker, nothing recorded yet.
 */
async function keptOutcome() {
  const channel = ok();
  const fixture = setup({ channels: { log: channel } });
  const { routeIds: [id] } = await fixture.enqueue();
  fixture.store.failNext("commit", new Error("connection lost at commit"));
  fixture.store.failNext(
    "salvage",
    new HeraldError("HERALD_UNAVAILABLE", "the database could not be reached"),
  );
  assert.equal(await fixture.worker.tick(), 1);
  return { ...fixture, id: id!, channel };
}

describe("outcomes kept while the database is out of reach", () => {
  it("are recorded before the next claim, and the route is not sent again meanwhile", async () => {
    const { worker, store, id, channel, lines } = await keptOutcome();
    assert.equal((await store.getRoute(id))?.status, "queued", "nothing recorded yet");
    assert.ok(
      lines.some((l) =>
        /connection lost; outcomes kept to record before the next claim/.test(l.msg)
      ),
    );
    assert.equal(lines.filter((l) => l.level === "error").length, 0, "out of reach is no refusal");
    // The database answers again: the kept outcome is recorded first, the route not re-sent.
    assert.equal(await worker.tick(), 0);
    const route = await store.getRoute(id);
    assert.deepEqual([route?.status, route?.attempts], ["sent", 1]);
    assert.equal(channel.calls.length, 1, "sent once");
  });

  it("while a kept outcome is being recorded, another tick does not claim its route", async () => {
    const { worker, store, id, channel } = await keptOutcome();
    // The database is back, but slow: the next salvage waits at the gate.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const salvage = store.salvage.bind(store);
    let salvaging!: () => void;
    const started = new Promise<void>((resolve) => (salvaging = resolve));
    store.salvage = (routes) => (salvaging(), gate.then(() => salvage(routes)));
    const recording = worker.tick();
    await started;
    assert.equal(await worker.tick(), 0, "another loop's tick leaves the route alone");
    open();
    assert.equal(await recording, 0);
    const route = await store.getRoute(id);
    assert.deepEqual([route?.status, route?.attempts], ["sent", 1]);
    assert.equal(channel.calls.length, 1, "sent once");
  });
});

describe("a route whose connection is lost mid-send", () => {
  it("is not claimed again by the worker's other loops while its send finishes, then is salvaged", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let sending!: () => void;
    const started = new Promise<void>((resolve) => (sending = resolve));
    // The first send waits at the gate; any later one would go through at once.
    const channel = scriptedChannel(() =>
      channel.calls.length === 1 ? (sending(), gate) : Promise.resolve()
    );
    const { worker, store, enqueue } = setup({ channels: { log: channel } });
    const { routeIds: [id] } = await enqueue();
    const first = worker.tick();
    await started;
    store.loseConnections(); // the row lock goes with it; the send goes on
    await new Promise((resolve) => setImmediate(resolve)); // the failed transaction is handled
    assert.equal(await worker.tick(), 0, "another loop's tick leaves the route alone");
    open();
    assert.equal(await first, 1, "its outcome is salvaged");
    const route = await store.getRoute(id!);
    assert.deepEqual([route?.status, route?.attempts], ["sent", 1]);
    assert.equal(channel.calls.length, 1, "sent once");
  });
});

describe("a refused outcome falls back inside the route's own transaction", () => {
  it("records what it can while the route is still held: no second transaction needed", async () => {
    const { worker, store, enqueue, lines } = setup();
    const { routeIds: [logless, held] } = await enqueue(2);
    store.refuse(logless!, "log");
    store.refuse(held!, "outcome");
    // A salvage transaction would meet this fault: the fallback must not need one.
    store.failNext("salvage", new Error("no second transaction expected"));
    assert.equal(await worker.tick(), 2);
    const [a, b] = [await store.getRoute(logless!), await store.getRoute(held!)];
    assert.deepEqual([a?.status, a?.attempts], ["sent", 1], "recorded without its log row");
    assert.deepEqual(await store.attempts(logless!), []);
    assert.deepEqual([b?.status, b?.attempts], ["poisoned", 1], "delivered, outcome refused");
    assert.ok(b?.sentAt instanceof Date, "a delivered poisoned route says so");
    assert.ok(!lines.some((l) => /no second transaction expected/.test(JSON.stringify(l))));
    assert.ok(lines.some((l) => l.level === "warn" && /recorded route by route/.test(l.msg)));
  });

  it("a retry it recorded, due again at once, is not claimed again in the same tick", async () => {
    const channel = scriptedChannel(() => Promise.reject(new Error("HTTP 503")));
    const { worker, store, enqueue } = setup({
      channels: { log: channel },
      retry: { baseMs: 0, maxMs: 0 },
      maxAttempts: 5,
    });
    const { routeIds: [id] } = await enqueue();
    store.refuse(id!, "log"); // the outcome goes in by the fallback, without its log row
    assert.equal(await worker.tick(), 1);
    assert.equal(channel.calls.length, 1, "one attempt per tick");
    const route = await store.getRoute(id!);
    assert.deepEqual([route?.status, route?.attempts], ["queued", 1]);
  });
});
