/**
 * Herald's web dashboard, as one web-standard `fetch` handler: mount it in
 * `Deno.serve`, `Bun.serve`, a `node:http` bridge or a Hono app, or let
 * `herald dashboard --port 8089` (and `herald run --dashboard-port 8089`)
 * serve it. Pages: the overview (counts, sent and failed per minute, the
 * oldest due route, destinations in trouble), routes (filters, keyset
 * pages), one route (payload, attempts, retry and cancel) and destinations
 * (pause and resume). Every page reads correctly without JavaScript.
 *
 * Safety: give `token` (the CLI takes `HERALD_DASHBOARD_TOKEN`) whenever the
 * handler is reachable beyond this machine; each action is a POST carrying a
 * per-handler CSRF token; every response forbids inline script and style
 * (Content-Security-Policy); every value is HTML-escaped, and destinations
 * are shown redacted as everywhere else in Herald.
 *
 * @example
 * ```ts
 * import { PostgresStore } from "@herald/herald/store";
 * import { dashboard } from "@herald/herald/dashboard";
 *
 * export function serveDashboard(url: string): (request: Request) => Promise<Response> {
 *   const store = new PostgresStore({ url });
 *   return dashboard(store, { token: "a long random secret", readOnly: true });
 * }
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { InvalidArgumentError } from "../core/errors.ts";
import { describeError, redact } from "../core/_redact.ts";
import type { AttemptRecord, RouteRecord } from "../core/route.ts";
import type {
  ActivityPoint,
  ChangeResult,
  NotificationRecord,
  QueueStats,
  RetrySelection,
  RouteFilter,
} from "../core/operator.ts";
import type { DestinationAction, DestinationInfo, DestinationState } from "../core/destination.ts";
import { SCRIPT, STYLE } from "./_assets.ts";
import { hostGuard, LOOPBACK_HOSTS, postGuard, securityHeaders, tokenGuard } from "./_guard.ts";
import type { Html, PageContext } from "./_layout.ts";
import { destinationsPage, missingPage, overviewPage } from "./_pages.ts";
import { routePage, routesPage } from "./_route_pages.ts";
import { flashOf, parseFilter, toCursor } from "./_query.ts";

/** What the dashboard reads and changes: `PostgresStore` (and the embedded database's) has it all. */
export interface DashboardStore {
  /** The overview's counts. */
  stats(): Promise<QueueStats>;
  /** The chart: routes sent and failed per minute over the last `minutes`. */
  activity(minutes?: number): Promise<ActivityPoint[]>;
  /** The routes page (keyset pages through `after`). */
  listRoutes(filter?: RouteFilter): Promise<RouteRecord[]>;
  /** One route, or `undefined`. */
  getRoute(routeId: string): Promise<RouteRecord | undefined>;
  /** A route's attempt log, oldest first. */
  attempts(routeId: string): Promise<AttemptRecord[]>;
  /** The notification a route delivers, for its payload. */
  notification(id: string): Promise<NotificationRecord | undefined>;
  /** Retry now, and retry every failed route of a filter. */
  retry(selection: RetrySelection): Promise<ChangeResult>;
  /** Cancel a queued route. */
  cancel(routeIds: readonly string[]): Promise<ChangeResult>;
  /** Optional: a store that keeps no destination health shows none. */
  destinations?(): Promise<DestinationInfo[]>;
  /** Optional: without it, no pause or resume. */
  setDestinationState?(
    channel: string,
    key: string,
    action: DestinationAction,
    reason?: string,
  ): Promise<DestinationState>;
}

/** How the dashboard behaves. */
export interface DashboardOptions {
  /**
   * Required of every request when set: as `Authorization: Bearer <token>`,
   * or once as `?token=` (answered with an HttpOnly, SameSite=Lax session
   * cookie, an HMAC of the token, and a redirect that drops it from the
   * address). Compared in constant time.
   */
  readonly token?: string;
  /**
   * Without a token, the host names requests may be addressed to (the `Host`
   * header, without its port); default the loopback names. Anything else is
   * refused, so a web page whose DNS name was rebound to this machine cannot
   * read or drive the dashboard. Ignored when `token` is set.
   */
  readonly hosts?: readonly string[];
  /** Show everything, change nothing: no action buttons, every POST refused. */
  readonly readOnly?: boolean;
  /** Where the handler is mounted, e.g. `/herald`; default the root. */
  readonly basePath?: string;
  /** Seconds between live refreshes where JavaScript runs; 0 turns them off. Default 5. */
  readonly refreshSeconds?: number;
  /** Minutes of the overview's chart, 1 to 1,440; default 180. */
  readonly chartMinutes?: number;
  /** The clock; default `Date.now`. */
  readonly now?: () => number;
}

/** The dashboard as a `fetch` handler over `store`. */
export function dashboard(
  store: DashboardStore,
  options: DashboardOptions = {},
): (request: Request) => Promise<Response> {
  const settings = checkOptions(options);
  const { token, hosts, readOnly, base, refresh, minutes, now } = settings;
  const csrf = [...crypto.getRandomValues(new Uint8Array(24))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  // Not strict: `/herald` and `/herald/` are the same page when mounted there.
  const app = new Hono({ strict: false });
  const ctx = (): PageContext => ({ base, csrf, readOnly, refresh, now: now() });
  const page = async (c: Context, body: Html, status: 200 | 400 | 404 = 200) =>
    c.html(await body, status);

  app.use("*", securityHeaders);
  app.use("*", token === undefined ? hostGuard(hosts) : tokenGuard(token, base));
  for (const guard of postGuard(readOnly, csrf)) app.post("*", guard);

  app.get(
    "/assets/style.css",
    (c) =>
      c.body(STYLE, 200, {
        "Content-Type": "text/css; charset=utf-8",
        "Cache-Control": "max-age=300",
      }),
  );
  app.get("/assets/live.js", (c) =>
    c.body(SCRIPT, 200, {
      "Content-Type": "text/javascript; charset=utf-8",
      "Cache-Control": "max-age=300",
    }));

  app.get("/", async (c) => {
    const [st, points] = await Promise.all([store.stats(), store.activity(minutes)]);
    return page(c, overviewPage(ctx(), st, points, minutes, flashOf(c.req.query())));
  });
  app.get("/destinations", async (c) => {
    const all = store.destinations ? await store.destinations() : undefined;
    return page(c, destinationsPage(ctx(), all, flashOf(c.req.query())));
  });
  app.get("/routes", async (c) => {
    const filter = parseFilter(c.req.query());
    const limit = 50;
    const routes = await store.listRoutes({ ...filter, limit });
    const last = routes.length === limit ? routes[routes.length - 1] : undefined;
    return page(
      c,
      routesPage(ctx(), filter, routes, last && toCursor(last), flashOf(c.req.query())),
    );
  });
  app.get("/routes/:id", async (c) => {
    const route = await store.getRoute(c.req.param("id"));
    if (route === undefined) return page(c, missingPage(ctx(), "No route has this id."), 404);
    const [note, attempts] = await Promise.all([
      store.notification(route.notificationId),
      store.attempts(route.id),
    ]);
    return page(c, routePage(ctx(), route, note, attempts, flashOf(c.req.query())));
  });

  app.post("/routes/:id/retry", async (c) => {
    const id = c.req.param("id");
    const result = await store.retry({ ids: [id] });
    return c.redirect(`${base}/routes/${id}?${done("retried", result)}`, 303);
  });
  app.post("/routes/:id/cancel", async (c) => {
    const id = c.req.param("id");
    const result = await store.cancel([id]);
    return c.redirect(`${base}/routes/${id}?${done("cancelled", result)}`, 303);
  });
  app.post("/routes/retry-failed", async (c) => {
    // The form carries the list's filter as the list's own query does: one parser for both.
    const form = await c.req.parseBody();
    const fields = Object.entries(form).flatMap(([k, v]) => typeof v === "string" ? [[k, v]] : []);
    const { channel, destination, since } = parseFilter(Object.fromEntries(fields));
    const selection = {
      failed: true as const,
      ...(channel ? { channel } : {}),
      ...(destination ? { destination } : {}),
      ...(since ? { since } : {}),
    };
    const result = await store.retry(selection);
    const back = new URLSearchParams({ status: "queued" });
    if (selection.channel) back.set("channel", selection.channel);
    if (selection.destination) back.set("destination", selection.destination);
    return c.redirect(`${base}/routes?${back}&${done("retried-all", result)}`, 303);
  });
  for (const act of ["pause", "resume"] as const) {
    app.post(`/destinations/${act}`, async (c) => {
      if (!store.setDestinationState) return c.text("This store keeps no destinations.", 404);
      const form = await c.req.parseBody();
      const channel = form["channel"];
      const key = form["key"];
      if (typeof channel !== "string" || typeof key !== "string" || !channel || !key) {
        throw new InvalidArgumentError("channel, key", "both are required");
      }
      await store.setDestinationState(
        channel,
        key,
        act,
        act === "pause" ? "paused from the dashboard" : undefined,
      );
      return c.redirect(`${base}/destinations?done=${act === "pause" ? "paused" : "resumed"}`, 303);
    });
  }

  app.notFound((c) => page(c, missingPage(ctx(), "No such page."), 404));
  app.onError(async (err, c) => {
    if (err instanceof InvalidArgumentError) {
      return c.html(await missingPage(ctx(), err.message), 400);
    }
    return c.text(`Herald dashboard: the request failed: ${redact(describeError(err))}`, 500);
  });

  if (base === "") return async (request: Request) => await app.fetch(request);
  const root = new Hono({ strict: false });
  root.use("*", securityHeaders);
  root.route(base, app);
  root.notFound((c) => page(c, missingPage(ctx(), "No such page."), 404));
  return async (request: Request) => await root.fetch(request);
}

function done(what: string, result: ChangeResult): string {
  return new URLSearchParams({ done: what, n: String(result.changed) }).toString();
}

function checkOptions(options: DashboardOptions) {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object", options);
  }
  const token = options.token;
  if (token !== undefined && (typeof token !== "string" || token.length < 16)) {
    throw new InvalidArgumentError("token", "must be a string of at least 16 characters");
  }
  const base = options.basePath ?? "";
  if (typeof base !== "string" || (base !== "" && !/^(\/[A-Za-z0-9._~-]+)+$/.test(base))) {
    throw new InvalidArgumentError("basePath", "must look like /herald (no trailing slash)", base);
  }
  const refresh = options.refreshSeconds ?? 5;
  if (!Number.isFinite(refresh) || refresh < 0) {
    throw new InvalidArgumentError(
      "refreshSeconds",
      "must be a number of seconds, 0 or more",
      refresh,
    );
  }
  const minutes = options.chartMinutes ?? 180;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
    throw new InvalidArgumentError("chartMinutes", "must be an integer from 1 to 1440", minutes);
  }
  const hosts = options.hosts ?? LOOPBACK_HOSTS;
  if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== "string" || h === "")) {
    throw new InvalidArgumentError("hosts", "must be a list of host names", hosts);
  }
  return {
    token,
    hosts,
    readOnly: options.readOnly === true,
    base,
    refresh,
    minutes,
    now: options.now ?? Date.now,
  };
}
