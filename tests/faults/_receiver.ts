/**
 * A local webhook receiver for the fault tests: records every request's
 * `webhook-id` (the route id) with its arrival time, and answers as the test
 * decides, including not at all (a send held open until the test kills the
 * worker, or a hung provider). Cheap enough for tens of thousands of routes.
 *
 * @module
 */
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { listenLocal } from "../_helpers/http_server.ts";

/** One request as it arrived. */
export interface Arrival {
  /** The `webhook-id` header: the route id. */
  readonly id: string;
  /** 1 for the first request carrying this id, 2 for the second, ... */
  readonly n: number;
  /** `performance.now()` when its headers arrived. */
  readonly at: number;
  /** The request path. */
  readonly path: string;
}

/**
 * What to do with a request: answer with this status, hold it open for ever,
 * or answer with `status` after `afterMs` (a slow provider).
 */
export type Decision = number | "hold" | { readonly status: number; readonly afterMs: number };

/** A running receiver. */
export interface Receiver {
  readonly url: string;
  /** Every arrival, in order. */
  readonly arrivals: readonly Arrival[];
  /** How many requests carried each id. */
  readonly counts: ReadonlyMap<string, number>;
  /** Requests held open right now. */
  readonly holding: number;
  /** Resolves with the first arrival (past or future) `match` accepts. */
  waitFor(match: (a: Arrival) => boolean): Promise<Arrival>;
  /** Resolves once `n` distinct ids have arrived. */
  waitForDistinct(n: number): Promise<void>;
  /** Stops listening and cuts every connection, held ones included; safe to call twice. */
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1; `decide` picks each answer (default 204). */
export async function startReceiver(
  decide: (a: Arrival) => Decision = () => 204,
): Promise<Receiver> {
  const arrivals: Arrival[] = [];
  const counts = new Map<string, number>();
  let waiters: { match: (a: Arrival) => boolean; resolve: (a: Arrival) => void }[] = [];
  let distinctWaiters: { n: number; resolve: () => void }[] = [];
  let holding = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const id = String(req.headers["webhook-id"] ?? "");
    const n = (counts.get(id) ?? 0) + 1;
    counts.set(id, n);
    const arrival: Arrival = { id, n, at: performance.now(), path: req.url ?? "" };
    arrivals.push(arrival);
    if (waiters.length > 0) {
      const hits = waiters.filter((w) => w.match(arrival));
      waiters = waiters.filter((w) => !hits.includes(w));
      for (const w of hits) w.resolve(arrival);
    }
    if (n === 1 && distinctWaiters.length > 0) {
      const ready = distinctWaiters.filter((w) => counts.size >= w.n);
      distinctWaiters = distinctWaiters.filter((w) => counts.size < w.n);
      for (const w of ready) w.resolve();
    }
    const decision = decide(arrival);
    req.resume();
    if (decision === "hold") {
      holding++;
      req.socket.once("close", () => holding--);
      return;
    }
    const answer = (status: number): void => void res.writeHead(status).end();
    if (typeof decision === "number") return void req.once("end", () => answer(decision));
    req.once("end", () => setTimeout(() => answer(decision.status), decision.afterMs));
  });
  server.keepAliveTimeout = 60_000;
  const { url, close } = await listenLocal(server);
  return {
    url,
    arrivals,
    counts,
    get holding() {
      return holding;
    },
    waitFor(match) {
      const hit = arrivals.find(match);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    waitForDistinct(n) {
      if (counts.size >= n) return Promise.resolve();
      return new Promise((resolve) => distinctWaiters.push({ n, resolve }));
    },
    close,
  };
}
