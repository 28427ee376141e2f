/**
 * What the dashboard reads from a query string: the routes filter, the
 * page cursor, and the message of an action just done.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { ROUTE_STATUSES, type RouteRecord, type RouteStatus } from "../core/route.ts";
import type { RouteFilter } from "../core/operator.ts";

/** A route's place in the listing, as the `after` parameter carries it. */
export function toCursor(r: RouteRecord): string {
  return `${r.updatedAt.toISOString()}~${r.id}`;
}

/** The routes filter of a query string; a malformed value is refused, naming it. */
export function parseFilter(q: Record<string, string>): RouteFilter {
  const text = (k: string) => (q[k] === undefined || q[k].trim() === "" ? undefined : q[k].trim());
  const status = text("status");
  if (status !== undefined && !ROUTE_STATUSES.includes(status as RouteStatus)) {
    throw new InvalidArgumentError("status", `must be one of ${ROUTE_STATUSES.join(", ")}`, status);
  }
  const filter: { -readonly [K in keyof RouteFilter]: RouteFilter[K] } = {};
  if (status !== undefined) filter.status = status as RouteStatus;
  for (const k of ["channel", "destination", "kind"] as const) {
    const v = text(k);
    if (v !== undefined) filter[k] = v;
  }
  for (const k of ["since", "until"] as const) {
    const v = text(k);
    if (v === undefined) continue;
    // A datetime-local field sends no zone: the form says UTC.
    const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
    if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(k, "must be a time (UTC)", v);
    filter[k] = d;
  }
  const after = text("after");
  if (after !== undefined) {
    const [at, id] = after.split("~");
    const updatedAt = new Date(at ?? "");
    if (id === undefined || Number.isNaN(updatedAt.getTime())) {
      throw new InvalidArgumentError("after", "must be a page cursor from the Older link", after);
    }
    filter.after = { updatedAt, id };
  }
  return filter;
}

const DONE: Record<string, string> = {
  retried: "route(s) queued again",
  "retried-all": "route(s) queued again",
  cancelled: "route(s) cancelled",
};

/** The message of an action just done (`?done=retried&n=3`), or none. */
export function flashOf(q: Record<string, string>): string | undefined {
  if (q["done"] === "paused") return "Destination paused: its queued routes are held.";
  if (q["done"] === "resumed") return "Destination resumed: its routes are due again.";
  const what = DONE[q["done"] ?? ""];
  if (what === undefined) return undefined;
  const n = Number(q["n"]);
  if (!Number.isInteger(n) || n < 0) return undefined;
  if (n > 0) return `${n} ${what}.`;
  return q["done"] === "retried-all"
    ? "Nothing changed: no failed route matched (or each is in flight)."
    : "Nothing changed: the route is in flight, or its status does not allow it.";
}
