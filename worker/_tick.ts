/**
 * One tick: claim, send and record up to `routesPerTick` due routes,
 * `routesPerTransaction` per transaction, each transaction on its own.
 *
 * In batch mode a loop claims its next batch, in a transaction of its own,
 * while the current batch sends; the next batch's sends begin the moment the
 * current batch's are over (all but a tenth: see {@link stragglers}), while
 * the current one records its outcomes and commits. So a loop has about one
 * batch sending at a time (K sends in flight, K + K/10 at most), and its
 * sends never wait on the database between batches. It holds at most two transactions (two batches' locks and
 * connections): a batch is claimed only once the one two before it has
 * ended. A batch claimed ahead waits up to one batch's send time, so batch
 * mode's lock safety net is two send timeouts plus the margin. The next claim
 * skips the batch before it by id, so a retry that batch commits as due at
 * once is not claimed again in the same tick. A batch claimed ahead that is
 * still waiting when shutdown begins, or when its transaction is lost (the
 * connection dropped), sends nothing: its routes are left as
 * they were.
 *
 * @module
 */
import type { Route } from "../core/route.ts";
import type { RouteTransaction } from "../store.ts";
import { attempt, type Batch } from "./_attempt.ts";
import { announce, reportDestinations, type TokenClock } from "./_destinations.ts";
import { LOCK_MARGIN_MS, type WorkerConfig } from "./config.ts";
import type { Holds } from "./_holds.ts";
import { type Emit, reportOutcome, routeDetail } from "./_report.ts";
import { pendingOf, type Salvager } from "./_salvage.ts";
import { batchSpan, tryTrace } from "../observe/tracing.ts";

/** What a tick works with: the worker's state, shared by all its loops. */
export interface TickDeps {
  readonly config: WorkerConfig;
  readonly holds: Holds;
  readonly salvager: Salvager;
  readonly tokens: TokenClock;
  /** Route events. */
  readonly emit: Emit;
  /** A claim found all it asked for: more may be due, so one more sleeping loop wakes. */
  readonly relay: () => void;
  /** Where destination events are dispatched (the worker). */
  readonly events: EventTarget;
  /** Aborted on shutdown: no new claims. */
  readonly stop: AbortSignal;
  /** Aborted at the shutdown deadline: sends in flight are cut. */
  readonly hard: AbortSignal;
}

/** How a batch ended: outcomes recorded, and whether the tick may go on. */
interface Ended {
  readonly handled: number;
  readonly more: boolean;
}

/** One batch under way: its routes, its milestones, and what its sends wait for. */
interface Run {
  readonly batch: Batch;
  readonly limit: number;
  /** Route ids its claim skips (read at the claim). */
  readonly exclude: () => string[];
  /** Claimed ahead: its sends wait for `go`, the batch before it (nearly) done sending. */
  readonly ahead: boolean;
  readonly go: Promise<void>;
  /** Aborted when the tick's caller gives up: a batch not yet sending then sends nothing. */
  readonly signal: AbortSignal | undefined;
  /**
   * Aborted when its transaction fails (a lost connection rejects it at once,
   * while the body still runs): a batch claimed ahead and not yet sending then
   * sends nothing, for its routes' locks went with the connection.
   */
  readonly failed: AbortController;
  /** Raised once its claim returned, and once its sends are nearly over (or it failed). */
  readonly claimed: Flag;
  readonly nearlySent: Flag;
}

/**
 * The batch claimed ahead starts sending once the batch before it has at most
 * this many sends still running: one slow or hung send (a dead destination,
 * up to its send timeout) must not hold the next batch's routes hostage. A
 * loop then has at most K + K/10 sends in flight.
 */
function stragglers(limit: number): number {
  return Math.max(1, Math.floor(limit / 10));
}

/**
 * Whether a claim may have left due routes behind: it found all it asked
 * for, or it claimed a route of a rate-limited or half-open destination.
 * Such a destination gives one route per claim; the others the claim read
 * count against its limit on Postgres, so fewer than asked does not mean
 * that nothing else is due (a backlog there would starve every other
 * destination behind it).
 */
function full(routes: readonly Route[], limit: number): boolean {
  return routes.length >= limit ||
    routes.some((r) => r.nextTokenMs !== undefined || r.probe === true);
}

/** A promise and the function that settles it. */
interface Flag {
  readonly promise: Promise<void>;
  readonly raise: () => void;
}

function flag(): Flag {
  let raise!: () => void;
  const promise = new Promise<void>((resolve) => (raise = resolve));
  return { promise, raise };
}

/**
 * Handles up to `routesPerTick` due routes; resolves with how many it sent
 * (not those shutdown cut short). Stops when a claim finds fewer than it
 * asked for or `signal` aborts; routes handled in the tick are not claimed
 * again in it.
 */
export async function tick(deps: TickDeps, signal?: AbortSignal): Promise<number> {
  const { config, holds, stop } = deps;
  const { routesPerTick, routesPerTransaction } = config;
  const seen = new Set<string>();
  let claimed = 0;
  let handled = 0;
  /** Batch mode: the batch claimed before, sending (or committing) while the next is claimed. */
  let previous: { run: Run; ended: Promise<Ended> } | undefined;
  await deps.salvager.settlePending();
  try {
    while (claimed < routesPerTick && !signal?.aborted && !stop.aborted) {
      if (holds.pausedFor() > 0) break;
      const before = previous;
      const skip = before?.run.batch.claimed.map((r) => r.id) ?? [];
      const run: Run = {
        batch: { claimed: [], results: [] },
        limit: Math.min(routesPerTransaction, routesPerTick - claimed),
        // Read at the claim, as late as can be (a hold taken meanwhile counts).
        exclude: () => [...seen, ...skip, ...holds.excluded()],
        ahead: before !== undefined,
        go: before?.run.nearlySent.promise ?? Promise.resolve(),
        signal,
        failed: new AbortController(),
        claimed: flag(),
        nearlySent: flag(),
      };
      const ended = runBatch(deps, run, seen);
      let settled = false;
      const over = ended.then(() => void (settled = true), () => void (settled = true));
      if (routesPerTransaction > 1) await Promise.race([run.claimed.promise, over]);
      else await over;
      claimed += run.batch.claimed.length;
      // The batch before ends before another is claimed: two transactions at most.
      if (before) {
        const earlier = await before.ended;
        previous = undefined;
        handled += earlier.handled;
        if (!earlier.more) {
          handled += (await ended).handled;
          break;
        }
      }
      // Claim ahead only after a full batch: fewer than asked means nothing else is due.
      if (!settled && full(run.batch.claimed, run.limit) && !stop.aborted && !signal?.aborted) {
        previous = { run, ended };
        continue;
      }
      const end = await ended;
      handled += end.handled;
      if (!end.more) break;
    }
  } finally {
    if (previous) handled += (await previous.ended).handled;
  }
  return handled;
}

/**
 * One batch in its own transaction: resolves once it is recorded, or
 * salvaged when the transaction failed after its claim; rejects when it
 * failed before claiming anything (the store itself is failing: the tick
 * fails and the loop backs off).
 */
async function runBatch(deps: TickDeps, run: Run, seen: Set<string>): Promise<Ended> {
  const { store, sendTimeoutMs, routesPerTransaction } = deps.config;
  const { batch } = run;
  // A batch claimed ahead waits up to one send time of the batch before it, then sends.
  const sends = routesPerTransaction > 1 ? 2 : 1;
  try {
    await store.transaction(
      (tx) => handleBatch(deps, tx, run),
      { lockTimeoutMs: sends * sendTimeoutMs + LOCK_MARGIN_MS },
    );
  } catch (err) {
    run.failed.abort();
    // The next batch must not wait on this one's salvage (it may need the connection).
    run.nearlySent.raise();
    if (batch.claimed.length === 0) throw err;
    // Excluded for the rest of the tick, so one route whose transaction
    // always fails cannot hold up every route behind it.
    for (const route of batch.claimed) seen.add(route.id);
    await deps.salvager.salvage(batch, err);
    return { handled: batch.results.filter((r) => r.record).length, more: true };
  } finally {
    run.claimed.raise();
    run.nearlySent.raise();
  }
  const finalised = recorded(deps, batch, seen);
  // Fewer than asked for: nothing else is due. Unfinalised: shutdown cut in.
  return {
    handled: finalised,
    more: full(batch.claimed, run.limit) && finalised >= batch.results.length,
  };
}

async function handleBatch(deps: TickDeps, tx: RouteTransaction, run: Run): Promise<void> {
  const { config, holds, tokens, emit } = deps;
  const { batch } = run;
  const routes = await tx.claimDue({
    limit: run.limit,
    exclude: run.exclude(),
    channels: [...config.channels.keys()],
    maxInFlight: config.maxInFlight,
    rates: config.rates,
  });
  // All it asked for: more may be due, and another loop may as well join in.
  // A short claim with a rate-limited or probing route may have left some
  // behind too (see full()), but this loop claims again at once for those.
  if (routes.length >= run.limit) deps.relay();
  for (const route of routes) {
    batch.claimed.push(route);
    tokens.note(route.nextTokenMs);
    emit("claimed", routeDetail(route, route.attempts + holds.unrecorded(route.id) + 1));
  }
  run.claimed.raise();
  if (run.ahead) {
    await run.go;
    if (deps.stop.aborted || run.signal?.aborted || run.failed.signal.aborted) {
      // Claimed ahead, then shut down or its transaction lost before its turn:
      // nothing sent, nothing spent.
      batch.results = routes.map((route) => ({ route, record: undefined }));
      return;
    }
  }
  const span = tryTrace(() => batchSpan(config.tracer, routes));
  let running = routes.length;
  if (running <= stragglers(run.limit)) run.nearlySent.raise();
  batch.sending = Promise.all(
    routes.map(async (route) => {
      const result = await attempt(route, config, deps.hard, holds.unrecorded(route.id));
      if (--running <= stragglers(run.limit)) run.nearlySent.raise();
      return result;
    }),
  );
  batch.results = await batch.sending;
  tryTrace(() => span?.end());
  const entries = pendingOf(batch.results);
  if (entries.length === 0) return;
  const records = entries.map((e) => e.unrecorded.record);
  const results = await tx.finalise(records, entries.map((e) => e.unrecorded));
  if (results) batch.fallback = { entries, results };
  else batch.changes = await reportDestinations(tx, batch.results, config);
}

/** Reports a committed batch; returns how many outcomes it recorded. */
function recorded(deps: TickDeps, batch: Batch, seen: Set<string>): number {
  const { config, holds, salvager, emit } = deps;
  if (batch.fallback) {
    salvager.fellBack(batch.fallback.entries, batch.fallback.results);
    // As after a salvage: a route the database refused is not claimed again
    // in this tick, whatever its fallback wrote (a retry may be due at once).
    for (const route of batch.claimed) seen.add(route.id);
    for (const result of batch.results) {
      if (!result.record) reportOutcome(config.logger, emit, result);
    }
    return batch.fallback.entries.length;
  }
  holds.resume();
  announce(batch.changes, config.logger, deps.events);
  let count = 0;
  for (const result of batch.results) {
    if (result.record) {
      count++;
      holds.release(result.route.id);
    }
    reportOutcome(config.logger, emit, result);
    // Only a retried route can be claimed again (sent and failed ones leave
    // the queue), so only retries join the exclude list sent with every claim.
    if (result.record?.outcome.status === "retry") seen.add(result.route.id);
  }
  return count;
}
