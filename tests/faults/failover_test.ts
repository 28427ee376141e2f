/**
 * Topology: failover to a standby, for real. A primary and a synchronous
 * streaming standby (tests/faults/_replica.ts); a Deno, a Bun and a Node
 * worker and an enqueuing application all connect with both hosts in the URL
 * and `target_session_attrs=read-write`. While the application enqueues one
 * route after another, the primary's postmaster is `kill -9`ed and the
 * standby promoted. The workers and the application reconnect to the new
 * primary unaided; every route whose enqueue resolved is delivered; an
 * enqueue in flight at the crash rejects (the application's to retry; it is
 * never reported done); duplicates only among routes in flight at the crash.
 * Also the reverse hazard: a worker pointed at the standby refuses to start,
 * saying why. Figures: promotion to first delivery, duplicates, enqueues
 * that failed.
 *
 * Size: 300 routes before the crash under CI; 2,000 with HERALD_FAULTS_FULL=1.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostgresStore } from "../../store.ts";
import { fileURLToPath } from "node:url";
import type { Buffer } from "node:buffer";
import { startScript } from "../_helpers/spawn.ts";
import { type ReplicaPair, startReplicaPair } from "./_replica.ts";
import {
  CURRENT,
  deathNote,
  killAll,
  type Program,
  RUNTIMES,
  startProgram,
  startWorker,
} from "./_procs.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { deliveryCounts, until } from "./_db.ts";
import { ms, printFigures, size } from "./_figures.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const BEFORE_CRASH = size(300, 2_000);
const AFTER_PROMOTION = size(100, 500);
const SCHEMA = "herald_failover";
const ENQUEUER = fileURLToPath(new URL("./_enqueuer.ts", import.meta.url));

describe("topology: the primary crashes and the standby takes over", () => {
  let pair: ReplicaPair | undefined;
  let app: PostgresStore | undefined;
  let receiver: Receiver | undefined;

  before(async () => {
    pair = await startReplicaPair();
    // Migrated, then closed: in this process no connection is open at the crash.
    app = new PostgresStore({ url: pair.url, schema: SCHEMA, max: 1 });
    await app.migrate();
    await app.close();
    receiver = await startReceiver(() => 204);
  });
  after(async () => {
    await killAll();
    await app?.close();
    await receiver?.close();
    await pair?.destroy();
  });

  it("a worker pointed at the standby refuses to start, and says why", async () => {
    const w = startProgram(CURRENT, ["run", "--once", "--wait-for-database", "0"], {
      DATABASE_URL: pair!.standbyUrl,
      HERALD_SCHEMA: SCHEMA,
    });
    const exit = await w.exited;
    assert.equal(exit.code, 1, deathNote(w));
    assert.match(w.rawOutput + JSON.stringify(w.logs), /read-only standby/);
  });

  it("workers and the application follow the promotion; nothing committed is lost", {
    timeout: 240_000,
  }, async () => {
    const rx = receiver!;
    const vars = {
      DATABASE_URL: pair!.url,
      HERALD_SCHEMA: SCHEMA,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
    };
    const workers: Program[] = [];
    for (const runtime of RUNTIMES) {
      workers.push(await startWorker(runtime, ["--concurrency", "2", "--interval", "500"], vars));
    }
    const committed: string[] = [];
    let failed = 0;
    const other: string[] = [];
    const producer = startScript(ENQUEUER, [], {
      DATABASE_URL: pair!.url,
      HERALD_SCHEMA: SCHEMA,
      TARGET: rx.url,
    });
    let buffer = "";
    producer.stdout!.on("data", (d: Buffer | string) => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        // Not every line need be the producer's (a runtime's warning): one
        // that is not JSON is kept aside, never thrown from this handler.
        let parsed: { ok?: string; failed?: true };
        try {
          parsed = JSON.parse(line);
        } catch {
          other.push(line);
          continue;
        }
        if (parsed.ok) committed.push(parsed.ok);
        else failed++;
      }
    });
    const producerDone = new Promise<void>((resolve) => producer.once("close", () => resolve()));
    const producing = {
      stop: async () => {
        producer.kill("SIGTERM");
        await producerDone;
      },
    };
    let crashedAt = 0;
    let promotedAt = 0;
    let firstAt = 0;
    try {
      await rx.waitForDistinct(BEFORE_CRASH);
      pair!.killPrimary();
      crashedAt = performance.now();
      await pair!.promote();
      promotedAt = performance.now();
      firstAt = (await rx.waitFor((a) => a.at > promotedAt)).at;
      const atPromotion = committed.length;
      await until(
        "enqueues resume on the new primary",
        () => committed.length >= atPromotion + AFTER_PROMOTION ? true : undefined,
      );
    } finally {
      // Stopped whatever happens, so a failure cannot leave it enqueuing for ever.
      await producing.stop();
    }
    await until(
      "every committed route delivered",
      () => committed.every((id) => rx.counts.has(id)) ? true : undefined,
    );
    const { lost, duplicates } = deliveryCounts(committed, rx.counts);
    printFigures("failover", {
      workers: workers.map((w) => w.runtime),
      committed: committed.length,
      enqueues_failed: failed,
      producer_other_lines: other.slice(0, 5),
      lost,
      duplicates,
      crash_to_promotion_ms: ms(promotedAt - crashedAt),
      promotion_to_first_delivery_ms: ms(firstAt - promotedAt),
    });
    for (const w of workers) {
      assert.equal(w.exit, undefined, `the ${w.runtime} worker died:\n${deathNote(w)}`);
    }
    assert.equal(lost, 0, "every route whose enqueue resolved was delivered");
    // In flight at the crash: at most one route per claim loop (3 workers x 2 loops).
    assert.ok(duplicates <= 6, `${duplicates} duplicates`);
  });
});
