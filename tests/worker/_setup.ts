/**
 * The worker tests' fixture: a Worker on a FakeStore with a hand-moved clock,
 * a recording logger and one `log` channel that always succeeds. Both are
 * tracked, so the file's leak check fails if a test leaves the worker
 * running or a transaction open.
 *
 * @module
 */
import { Worker } from "../../worker.ts";
import type { WorkerOptions } from "../../worker.ts";
import type { Channel } from "../../channels/channel.ts";
import type { Route } from "../../core/route.ts";
import type { Enqueued } from "../../store.ts";
import type { LogLevel } from "../../observe/logger.ts";
import type { FakeStore } from "../_helpers/fake_store.ts";
import { fakeStore, trackWorker } from "../_helpers/leaks.ts";
import { recordingLogger, scriptedChannel } from "../_helpers/kit.ts";

/** A channel whose every send succeeds. */
export const ok = (): Channel & { calls: Route[] } => scriptedChannel(() => Promise.resolve());

/** What {@link setup} gives a test. */
export interface WorkerFixture {
  readonly store: FakeStore;
  readonly worker: Worker;
  /** Every line logged, in order. */
  readonly lines: { level: LogLevel; msg: string; fields: object }[];
  /** Moves the store's clock on by `ms`. */
  advance(ms: number): void;
  /** Enqueues one notification with `n` `log` routes (`d0`, `d1`, ...), `extra` in each. */
  enqueue(n?: number, extra?: object): Promise<Enqueued>;
}

/** A worker (`options` override the defaults) on a fresh FakeStore whose clock stands still. */
export function setup(options: Partial<WorkerOptions> = {}): WorkerFixture {
  let now = 1_700_000_000_000;
  const store = fakeStore({ now: () => now });
  const { logger, lines } = recordingLogger();
  const worker = trackWorker(
    new Worker({ store, channels: { log: ok() }, logger, random: () => 0, ...options }),
  );
  return {
    store,
    worker,
    lines,
    advance: (ms) => void (now += ms),
    enqueue: (n = 1, extra = {}) =>
      store.enqueue(
        { kind: "test", payload: { n } },
        Array.from({ length: n }, (_, i) => ({ channel: "log", destination: `d${i}`, ...extra })),
      ),
  };
}
