/**
 * `LISTEN` for a store's wake-ups, with a probe that proves the
 * subscription still hears them.
 *
 * @module
 */
import type postgres from "postgres";
import type { Subscription, WakeHandlers } from "../core/transaction.ts";
import { wakeChannel } from "./schema.ts";
import { bounded } from "../core/_async.ts";

/** How long a `LISTEN` may take before the subscription is given up (and its instance ended). */
const LISTEN_TIMEOUT_MS = 4_000;

/**
 * Subscribes `handlers` to the schema's wake-up channel. `own` is a driver
 * instance for this subscription alone (ended on close), or `undefined` to
 * listen through `pool` (the caller's own driver).
 */
export async function listen(
  pool: postgres.Sql,
  own: postgres.Sql | undefined,
  schema: string,
  handlers: WakeHandlers,
): Promise<Subscription> {
  // With a URL, a driver instance per subscription: after a failed re-LISTEN
  // the driver keeps a broken channel entry that a new listen() on the same
  // instance would inherit, so replacing a subscription must start afresh.
  // With your own `sql`, its listen() is used (and a lost LISTEN is noticed
  // by the probe, but may not heal until the process restarts).
  const listening = own ?? pool;
  const channel = wakeChannel(schema);
  // Probes ride the wake-up channel itself, so they prove that channel is heard;
  // their payload tells them apart from enqueues (whose payload is empty).
  const token = `probe:${crypto.randomUUID()}`;
  const heard = new Set<() => void>();
  // Anything heard on the channel (an enqueue, any worker's probe) proves the
  // subscription hears it; see \`alive\` below.
  const count = { heard: 0, checked: 0 };
  let sub: { unlisten(): Promise<void> };
  try {
    // Bounded here, so an instance of ours whose LISTEN never answers is
    // ended, not left behind (the caller's own bound cannot reach it).
    sub = await bounded(
      listening.listen(channel, (payload) => {
        count.heard++;
        if (!payload.startsWith("probe:")) return handlers.onNotify();
        if (payload !== token) return; // another worker's probe: no wake-up
        for (const resolve of heard) resolve();
        heard.clear();
      }, () => handlers.onConnect()),
      LISTEN_TIMEOUT_MS,
      "LISTEN",
    );
  } catch (err) {
    await own?.end({ timeout: 0 });
    throw err;
  }
  // The probe goes through the subscription's own instance (one idle
  // connection beside its LISTEN session), never the work pool: with every
  // pool connection busy sending, a probe queued behind them would time out
  // and replace a listener that was fine.
  const sql = own ?? pool;
  return {
    async close() {
      // Our own instance: ending it ends its LISTEN session too, and never
      // waits on a connection that may be the reason we are closing.
      if (own) await own.end({ timeout: 0 });
      else await sub.unlisten();
    },
    // Something heard since the last check ended is proof enough, so no NOTIFY
    // of our own: a busy channel is never probed, and an idle fleet sends about
    // one probe a round, which every worker hears, rather than one per worker
    // heard by all (N squared deliveries).
    async alive(timeoutMs) {
      const answered = count.heard !== count.checked ||
        await probe(sql, channel, token, heard, timeoutMs);
      count.checked = count.heard;
      return answered;
    },
  };
}

/**
 * Sends the subscription a probe (a NOTIFY with its own token) and resolves
 * true if it is heard within `timeoutMs`; never rejects.
 */
async function probe(
  sql: postgres.Sql,
  channel: string,
  token: string,
  heard: Set<() => void>,
  timeoutMs: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let resolve!: () => void;
  const answer = new Promise<boolean>((r) => {
    resolve = () => r(true);
    heard.add(resolve);
    timer = setTimeout(() => r(false), timeoutMs);
  });
  try {
    await sql`SELECT pg_notify(${channel}, ${token})`;
    return await answer;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    heard.delete(resolve);
  }
}
