/**
 * The embedded database's one backend between this process's connections and
 * a client of another process (an operator command through the shared
 * socket): the client waits for the transaction in progress when it begins,
 * then keeps the backend between its statements, so this process's next
 * transaction (a worker's next route, queued at once) does not take it
 * between every two of them. The client's turn is the test's own (a minute),
 * and the order of events is what is checked, never a duration.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { PGlite } from "@electric-sql/pglite";
import { pgliteSocketFactory } from "../../embedded/_pglite_socket.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

/** A driver on one virtual connection of `socket`. */
function driverOn(socket: () => unknown): postgres.Sql {
  return postgres({
    socket,
    max: 1,
    user: "postgres",
    database: "postgres",
    ssl: false,
    fetch_types: false,
    onnotice: () => {},
  } as postgres.Options<Record<string, never>>);
}

/**
 * A transaction of this process in progress (a send) and its next one queued
 * at once, while a client of another process runs five statements in a row,
 * the first queued behind the send; `tick(i)` runs before statement i. The
 * clock that times the client's run of turns is `clock.now` (never the wall).
 */
async function race(
  clock: { now: number },
  tick: (i: number) => void = () => {},
): Promise<string[]> {
  const pglite = await PGlite.create();
  const factory = pgliteSocketFactory(pglite, {
    clientTurnMs: 60_000,
    clientStreakMs: 1_000,
    now: () => clock.now,
  });
  const local = driverOn(factory);
  // The client's first write (its startup packet) is the moment it joins the queue.
  let wrote!: () => void;
  const queued = new Promise<void>((resolve) => (wrote = resolve));
  const client = driverOn(() => {
    const socket = factory.forAnotherProcess();
    const write = socket.write.bind(socket);
    socket.write = (chunk, callback) => (wrote(), write(chunk, callback));
    return socket;
  });
  const order: string[] = [];
  try {
    // (The client connects with its first statement: a statement of its own
    // now would start a turn that the test's minute would make this process wait out.)
    await local`SELECT 1`;
    let sendDone!: () => void;
    const sending = new Promise<void>((resolve) => (sendDone = resolve));
    let begun!: () => void;
    const inProgress = new Promise<void>((resolve) => (begun = resolve));
    const worker = (async () => {
      await local.begin(async (tx) => {
        await tx`SELECT 1`;
        begun();
        await sending;
        order.push("first transaction ends");
      });
      await local.begin(async (tx) => {
        await tx`SELECT 1`;
        order.push("next transaction");
      });
    })();
    await inProgress;
    const command = (async () => {
      for (let i = 1; i <= 5; i++) {
        tick(i);
        await client`SELECT ${i}::int AS n`;
        order.push(`statement ${i}`);
      }
    })();
    await queued;
    sendDone();
    await command;
    await client.end({ timeout: 5 }); // the client goes: its turn ends
    await worker;
    return order;
  } finally {
    await client.end({ timeout: 5 });
    await local.end({ timeout: 5 });
    await pglite.close();
  }
}

describe("embedded database: a client of another process between its statements", () => {
  it("keeps the backend for its next statement, ahead of this process's next transaction", async () => {
    assert.deepEqual(await race({ now: 0 }), [
      "first transaction ends",
      "statement 1",
      "statement 2",
      "statement 3",
      "statement 4",
      "statement 5",
      "next transaction",
    ]);
  });

  it("for a run of turns of a second at most: then this process's waiting transaction goes", async () => {
    const clock = { now: 0 };
    // The client's run of turns began with statement 1; statement 4 ends it at 1 s.
    const order = await race(clock, (i) => void (i === 4 && (clock.now = 1_000)));
    assert.deepEqual(order, [
      "first transaction ends",
      "statement 1",
      "statement 2",
      "statement 3",
      "statement 4",
      "next transaction",
      "statement 5",
    ]);
  });

  it("another connection of a client of another process does not wait out that client's turn", async () => {
    const pglite = await PGlite.create();
    const factory = pgliteSocketFactory(pglite, { clientTurnMs: 60_000, now: () => 0 });
    const local = driverOn(factory);
    const a = driverOn(factory.forAnotherProcess);
    const b = driverOn(factory.forAnotherProcess);
    const order: string[] = [];
    try {
      await local`SELECT 1`;
      await a`SELECT 1`; // a's turn: this process waits
      const waiting = local`SELECT 1`.then(() => void order.push("this process"));
      await b`SELECT 1`; // the same process's other connection goes through (a pool, a listener)
      order.push("other connection");
      await Promise.all([a.end({ timeout: 5 }), b.end({ timeout: 5 })]); // the client goes
      await waiting;
      assert.deepEqual(order, ["other connection", "this process"]);
    } finally {
      await a.end({ timeout: 5 });
      await b.end({ timeout: 5 });
      await local.end({ timeout: 5 });
      await pglite.close();
    }
  });
});
