/**
 * The worker's events: typed by name (no casts), carrying the route's
 * notification, kind and masked destination, and guarded: a listener that
 * throws is logged, the others still run, and nothing ends the process.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLeaks } from "../_helpers/leaks.ts";
import { setup } from "./_setup.ts";

checkLeaks();

describe("Worker events", () => {
  it("carry the notification, its kind and the destination with secrets masked", async () => {
    const { worker, store } = setup();
    const { notificationId } = await store.enqueue({ kind: "order.shipped" }, [
      { channel: "log", destination: "https://hooks.example.com/services/T0/B0/s3cretT0ken" },
    ]);
    const seen: string[][] = [];
    // Typed by name: e.detail needs no cast.
    worker.addEventListener("sent", (e) => {
      seen.push([e.detail.notificationId, e.detail.kind, e.detail.destination]);
    });
    assert.equal(await worker.tick(), 1);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]![0], notificationId);
    assert.equal(seen[0]![1], "order.shipped");
    assert.equal(seen[0]![2]!.includes("s3cretT0ken"), false, String(seen[0]![2]));
    assert.match(seen[0]![2]!, /hooks\.example\.com/);
  });

  it("a listener that throws is logged; the others run and the tick goes on", async () => {
    const { worker, enqueue, store, lines } = setup();
    await enqueue(2);
    const after: string[] = [];
    const thrower = (): void => {
      throw new Error("listener bug");
    };
    worker.addEventListener("sent", thrower);
    worker.addEventListener("sent", (e) => void after.push(e.detail.routeId));
    assert.equal(await worker.tick(), 2);
    assert.equal(after.length, 2, "the second listener saw both sends");
    assert.deepEqual(store.allRoutes().map((r) => r.status), ["sent", "sent"]);
    const logged = lines.filter((l) => l.msg === "an event listener threw");
    assert.equal(logged.length, 2);
    assert.equal(logged[0]!.level, "error");
    assert.match(JSON.stringify(logged[0]!.fields), /listener bug/);
    // Removing works through the guard.
    worker.removeEventListener("sent", thrower);
    await enqueue(1);
    await worker.tick();
    assert.equal(lines.filter((l) => l.msg === "an event listener threw").length, 2);
  });
});
