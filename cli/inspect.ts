/**
 * The commands that look: `herald stats`, `routes` and `show`. Each prints a
 * table, or JSON with `--json`.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { ROUTE_STATUSES as STATUSES } from "../core/route.ts";
import type { RouteRecord, RouteStatus } from "../core/route.ts";
import { redact, redactDestination } from "../core/_redact.ts";
import { channelCount, troubledCount } from "../core/operator.ts";
import { HELD_UNTIL } from "../core/destination.ts";
import { numberFlag } from "./_flags.ts";
import { checkRouteIds, withDatabase } from "./_command.ts";
import type { Command } from "./_command.ts";
import { formatDuration, formatTime, table } from "./_format.ts";

/** `herald stats` */
export const statsCommand: Command = {
  summary: "counts by status and channel, oldest due age, failures in the last hour",
  usage: "herald stats [--json] [options]",
  options: { json: { type: "boolean" } },
  positionals: 0,
  run(values, _args, common, io) {
    return withDatabase(common, io, async ({ store }) => {
      const st = await store.stats();
      if (values["json"]) {
        io.out(JSON.stringify(st));
        return 0;
      }
      const channels = [...new Set(st.byChannel.map((c) => c.channel))];
      const estimated = new Set(st.estimated ?? []);
      const total = (status: RouteStatus): string =>
        `${estimated.has(status) ? "~" : ""}${st.byStatus[status]}`;
      const oldest = (channel: string): string => {
        const due = st.oldestDueByChannel.find((d) => d.channel === channel);
        return due ? formatDuration(due.ageMs) : "-";
      };
      io.out(table(
        ["channel", ...STATUSES, "oldest due"],
        [
          ...channels.map((c) => [c, ...STATUSES.map((s) => channelCount(st, c, s)), oldest(c)]),
          ["(all)", ...STATUSES.map(total), ""],
        ],
      ));
      io.out("");
      if (estimated.size > 0) {
        io.out(
          `~ estimated from the planner's statistics (the table is large; ` +
            `exact counts of ${[...estimated].join(", ")} would read too many rows)`,
        );
      }
      io.out(
        `oldest due route waiting: ${
          st.oldestDueAgeMs === null ? "none due" : formatDuration(st.oldestDueAgeMs)
        }`,
      );
      io.out(`failed in the last hour:  ${st.failedLastHour}`);
      const d = st.destinations;
      if (d) {
        const states = Object.entries(d.byState).map(([state, n]) => `${n} ${state}`);
        io.out(`destinations:             ${states.join(", ")}`);
        io.out(`deferred by rate limits:  ${d.deferredByLimit} due route(s)`);
        for (const t of d.troubled) {
          io.out(
            `  ${t.channel} ${t.key}: ${t.state}, ${t.consecutiveFailures} failure(s) in a row, ` +
              `${troubledCount(t.queued)} queued, ${
                troubledCount(t.deferred)
              } deferred by its rate ` +
              `(herald destinations show ${t.channel} ${t.key})`,
          );
        }
      }
      return 0;
    });
  },
};

/** `herald routes` */
export const routesCommand: Command = {
  summary: "list routes, last changed first",
  usage: `herald routes [--status S] [--channel C] [--limit N] [--json] [options]

  --status S     queued | sent | failed | cancelled | poisoned
  --channel C    only this channel
  --limit N      at most N routes (default 50)
  --json         one JSON object per route, one per line`,
  options: {
    status: { type: "string" },
    channel: { type: "string" },
    limit: { type: "string" },
    json: { type: "boolean" },
  },
  positionals: 0,
  run(values, _args, common, io) {
    const status = values["status"];
    if (status !== undefined && !STATUSES.includes(status as RouteStatus)) {
      throw new InvalidArgumentError("--status", `must be one of ${STATUSES.join(", ")}`, status);
    }
    const limit = numberFlag("--limit", values["limit"] as string | undefined);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 10_000)) {
      throw new InvalidArgumentError("--limit", "must be an integer from 1 to 10000", limit);
    }
    return withDatabase(common, io, async ({ store }) => {
      const routes = await store.listRoutes({
        ...(status ? { status: status as RouteStatus } : {}),
        ...(typeof values["channel"] === "string" ? { channel: values["channel"] } : {}),
        ...(limit === undefined ? {} : { limit }),
      });
      if (values["json"]) {
        for (const r of routes) io.out(JSON.stringify(publicRoute(r)));
        return 0;
      }
      io.out(table(
        [
          "route",
          "kind",
          "channel",
          "destination",
          "status",
          "attempts",
          "next attempt",
          "last error",
        ],
        routes.map((r) => [
          r.id,
          r.kind,
          r.channel,
          // The destination itself (a URL cut to its host), not its key: a
          // channel's one key (`*`) would hide who an e-mail or SMS is for.
          redactDestination(r.destination),
          r.status,
          String(r.attempts),
          r.status !== "queued"
            ? "-"
            : r.nextAttemptAt.getTime() >= HELD_UNTIL
            ? "held (destination paused or disabled)"
            : formatTime(r.nextAttemptAt),
          (r.lastError ?? "").slice(0, 60),
        ]),
      ));
      return 0;
    });
  },
};

/** `herald show` */
export const showCommand: Command = {
  summary: "one route with its attempt history",
  usage: "herald show ROUTE_ID [--json] [options]",
  options: { json: { type: "boolean" } },
  positionals: 1,
  run(values, args, common, io) {
    const id = args[0];
    if (id === undefined) throw new InvalidArgumentError("ROUTE_ID", "is required");
    checkRouteIds([id]);
    return withDatabase(common, io, async ({ store }) => {
      const route = await store.getRoute(id);
      if (!route) {
        io.err(`herald: no route ${JSON.stringify(id.slice(0, 60))}`);
        return 1;
      }
      const attempts = await store.attempts(id);
      if (values["json"]) {
        io.out(JSON.stringify({ ...publicRoute(route), attemptLog: attempts }));
        return 0;
      }
      const r = publicRoute(route);
      for (const [k, v] of Object.entries(r)) io.out(`${`${k}:`.padEnd(16)} ${v ?? "-"}`);
      io.out("");
      io.out(table(
        ["attempt", "started", "duration", "outcome", "http", "error"],
        attempts.map((a) => [
          String(a.attempt),
          formatTime(a.startedAt),
          formatDuration(a.durationMs),
          a.outcome,
          a.httpStatus === null ? "-" : String(a.httpStatus),
          a.error ?? "",
        ]),
      ));
      return 0;
    });
  },
};

/** A route for printing: the destination cut down, since it may be a credential. */
function publicRoute(r: RouteRecord): Record<string, string | number | null> {
  return {
    id: r.id,
    notificationId: r.notificationId,
    kind: r.kind,
    channel: r.channel,
    destination: redactDestination(r.destination),
    destinationKey: r.destinationKey === null ? null : redact(r.destinationKey),
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    priority: r.priority,
    nextAttemptAt: r.nextAttemptAt.toISOString(),
    lastError: r.lastError,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    sentAt: r.sentAt?.toISOString() ?? null,
  };
}
