/**
 * The contract, retention area: `prune` deletes finished history older than
 * its cut, in batches, with the attempt logs and the notifications left
 * with no route; it never touches a queued route.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Store } from "../../../store.ts";
import { InvalidArgumentError } from "../../../core/errors.ts";
import type { PruneOptions } from "../../../core/operator.ts";
import type { TestContext } from "node:test";
import { type ContractArea, type ContractRun, HOUR, rec } from "./fixtures.ts";

/** A store with the operator's `prune`. */
type Pruning = Store & { prune(options: PruneOptions): Promise<number> };

function pruning(store: Store): Pruning {
  return store as Pruning;
}

/** The case moves the store's clock past the routes' finish; skipped where it cannot. */
function canElapse({ opened }: ContractRun, t: TestContext): boolean {
  if (opened.elapse) return true;
  t.skip("the store's clock cannot be moved here");
  return false;
}

/** Enqueues `n` log routes of one notification and finishes each as `outcomes` say. */
async function finished(
  store: Store,
  outcomes: readonly ("sent" | "failed" | "retry")[],
  idempotencyKey?: string,
): Promise<string[]> {
  const { routeIds } = await store.enqueue(
    { kind: "k", ...(idempotencyKey ? { idempotencyKey } : {}) },
    outcomes.map((_, i) => ({ channel: "log", destination: `d${i}` })),
  );
  await store.transaction(async (tx) => {
    await tx.claimDue({ limit: 100, exclude: [] });
    await tx.finalise(outcomes.map((o, i) =>
      rec(
        routeIds[i]!,
        o === "retry"
          ? { status: "retry", attempts: 1, delayMs: HOUR, error: "HTTP 503" }
          : o === "sent"
          ? { status: "sent", attempts: 1 }
          : { status: "failed", attempts: 1, error: "HTTP 404" },
      )
    ));
  });
  return [...routeIds];
}

/** Retention: pruning finished history. */
export const RETENTION: ContractArea = {
  name: "retention",
  cases: [
    {
      name: "prune deletes history older than its cut in batches, with its attempt logs and " +
        "emptied notifications, and never a queued route",
      run: async (c, t) => {
        if (!canElapse(c, t)) return;
        const { store, opened } = c;
        const [sent, retrying] = await finished(store, ["sent", "retry"], "kept");
        const [failed] = await finished(store, ["failed"], "gone");
        const s = pruning(store);
        assert.equal(await s.prune({ olderThanMs: HOUR }), 0, "finished just now: kept");
        await opened.elapse!(2);
        const progress: number[] = [];
        const deleted = await s.prune({
          olderThanMs: 0,
          batchSize: 1,
          dutyCycle: 1,
          onProgress: (n) => progress.push(n),
        });
        assert.equal(deleted, 2);
        assert.deepEqual(progress, [1, 2], "one report per batch that deleted routes");
        for (const id of [sent!, failed!]) {
          assert.equal(await store.getRoute(id), undefined);
          assert.deepEqual(await store.attempts(id), [], "its attempt log went with it");
        }
        const kept = await store.getRoute(retrying!);
        assert.equal(kept?.status, "queued", "a route waiting for its retry is never pruned");
        assert.equal((await store.attempts(retrying!)).length, 1);
        // A notification with no route left is gone, and its idempotency key with it.
        const again = await store.enqueue({ kind: "k", idempotencyKey: "gone" }, [{
          channel: "log",
          destination: "d0",
        }]);
        assert.equal(again.duplicate, false);
        const dup = await store.enqueue({ kind: "k", idempotencyKey: "kept" }, [{
          channel: "log",
          destination: "d0",
        }]);
        assert.deepEqual([dup.duplicate, dup.routeIds], [true, [retrying]]);
        assert.equal(await s.prune({ olderThanMs: 0 }), 0, "nothing left to prune");
      },
    },
    {
      name: "prune takes only the statuses asked for; a dry run counts and deletes nothing",
      run: async (c, t) => {
        if (!canElapse(c, t)) return;
        const { store, opened } = c;
        const [sent, failed] = await finished(store, ["sent", "failed"]);
        await opened.elapse!(2);
        const s = pruning(store);
        assert.equal(await s.prune({ olderThanMs: 0, dryRun: true }), 2);
        assert.equal((await store.getRoute(sent!))?.status, "sent", "the dry run deleted nothing");
        assert.equal(await s.prune({ olderThanMs: 0, statuses: ["failed"] }), 1);
        assert.equal(await store.getRoute(failed!), undefined);
        assert.equal((await store.getRoute(sent!))?.status, "sent");
      },
    },
    {
      name: "prune refuses bad options with an error naming the field, deleting nothing",
      run: async ({ store }) => {
        const [sent] = await finished(store, ["sent"]);
        const s = pruning(store);
        const bad: [string, PruneOptions][] = [
          ["olderThanMs", { olderThanMs: -1 }],
          ["olderThanMs", { olderThanMs: Number.NaN }],
          ["olderThanMs", { olderThanMs: "1d" as unknown as number }],
          ["statuses", { olderThanMs: 0, statuses: [] }],
          ["statuses", { olderThanMs: 0, statuses: ["queued" as never] }],
          ["batchSize", { olderThanMs: 0, batchSize: 0 }],
          ["batchSize", { olderThanMs: 0, batchSize: 1.5 }],
          ["dutyCycle", { olderThanMs: 0, dutyCycle: 0 }],
          ["dutyCycle", { olderThanMs: 0, dutyCycle: 1.5 }],
          ["olderThanMs", { olderThanMs: 1e15 }],
          ["onProgress", { olderThanMs: 0, onProgress: "log" as never }],
          ["dryRun", { olderThanMs: 0, dryRun: "yes" as never }],
        ];
        for (const [field, options] of bad) {
          await assert.rejects(
            s.prune(options),
            (err: unknown) => err instanceof InvalidArgumentError && err.field === field,
            `${field}: ${JSON.stringify(options)}`,
          );
        }
        assert.equal((await store.getRoute(sent!))?.status, "sent");
      },
    },
    {
      name: "a notification goes once its last route is pruned, in whichever run that is",
      run: async (c, t) => {
        if (!canElapse(c, t)) return;
        const { store, opened } = c;
        await finished(store, ["sent", "failed"], "mixed");
        await opened.elapse!(2);
        const s = pruning(store);
        const duplicate = async (): Promise<boolean> =>
          (await store.enqueue({ kind: "k", idempotencyKey: "mixed" }, [{
            channel: "log",
            destination: "d0",
          }])).duplicate;
        assert.equal(await s.prune({ olderThanMs: 0, statuses: ["sent"] }), 1);
        assert.equal(await duplicate(), true, "its failed route keeps the notification");
        assert.equal(await s.prune({ olderThanMs: 0, statuses: ["failed"] }), 1);
        assert.equal(await duplicate(), false, "gone with its last route: its key is free");
      },
    },
    {
      name: "prune stops between batches once its signal aborts, with what it deleted by then",
      run: async (c, t) => {
        if (!canElapse(c, t)) return;
        const { store, opened } = c;
        const ids = await finished(store, ["sent", "sent", "sent"]);
        await opened.elapse!(2);
        const stop = new AbortController();
        const deleted = await pruning(store).prune({
          olderThanMs: 0,
          batchSize: 1,
          dutyCycle: 1,
          signal: stop.signal,
          onProgress: () => stop.abort(),
        });
        assert.equal(deleted, 1);
        const left = await Promise.all(ids.map((id) => store.getRoute(id)));
        assert.equal(left.filter((r) => r !== undefined).length, 2);
        const none = await pruning(store).prune({ olderThanMs: 0, signal: stop.signal });
        assert.equal(none, 0, "an aborted signal deletes nothing");
      },
    },
  ],
};
