/**
 * The operator's commands: migrate, enqueue, stats, routes, show, retry,
 * cancel, prune. Each opens the database, does one thing, prints the result
 * (a table, or JSON with `--json`) and closes it.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { InvalidArgumentError } from "../core/errors.ts";
import { ROUTE_STATUSES as STATUSES } from "../core/route.ts";
import type { JsonValue, RouteStatus } from "../core/route.ts";
import type { RouteRecord } from "../store.ts";
import { redact } from "../core/_redact.ts";
import { isUuid } from "../core/_validate.ts";
import { numberFlag, openDatabase, parseDuration, parseTime } from "./_config.ts";
import type { Common, Database, Io, Values } from "./_config.ts";
import { formatDuration, formatTime, table } from "./_format.ts";

/** One subcommand of the program. */
export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Readonly<Record<string, { type: "string" | "boolean"; multiple?: boolean }>>;
  /** Positional arguments allowed (`Infinity` for a list). */
  readonly positionals: number;
  run(values: Values, positionals: readonly string[], common: Common, io: Io): Promise<number>;
}

async function withDatabase(
  common: Common,
  io: Io,
  fn: (db: Database) => Promise<number>,
): Promise<number> {
  const db = await openDatabase(common, io);
  try {
    await db.store.migrate();
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** `herald migrate` */
export const migrateCommand: Command = {
  summary: "apply migrations and print the schema version",
  usage: "herald migrate [options]",
  options: {},
  positionals: 0,
  async run(_values, _args, common, io) {
    const db = await openDatabase(common, io);
    try {
      const version = await db.store.migrate();
      io.out(`schema "${common.schema}" is at version ${version}`);
      return 0;
    } finally {
      await db.close();
    }
  },
};

/** `herald enqueue` */
export const enqueueCommand: Command = {
  summary: "enqueue a notification; prints one route id per destination",
  usage: `herald enqueue --channel C --to DEST [--to DEST...] [options]

  --channel C              the channel (webhook, slack, email, log, ...)
  --to DEST                a destination; repeat for several routes
  --payload JSON           the payload (default {})
  --payload-file FILE      read the payload from FILE ('-' for standard input)
  --kind K                 what happened (default "message")
  --deliver-at TIME        not before this ISO 8601 time, or this long from now (5m)
  --priority P             lower runs first (default 0)
  --max-attempts N         this route's attempt limit (default: the worker's)
  --idempotency-key K      enqueue at most once per key: a repeat prints the first ids`,
  options: {
    channel: { type: "string" },
    to: { type: "string", multiple: true },
    payload: { type: "string" },
    "payload-file": { type: "string" },
    kind: { type: "string" },
    "deliver-at": { type: "string" },
    priority: { type: "string" },
    "max-attempts": { type: "string" },
    "idempotency-key": { type: "string" },
  },
  positionals: 0,
  async run(values, _args, common, io) {
    const channel = values["channel"];
    if (typeof channel !== "string") throw new InvalidArgumentError("--channel", "is required");
    const to = values["to"];
    if (!Array.isArray(to) || to.length === 0) {
      throw new InvalidArgumentError("--to", "is required");
    }
    const payload = await readPayload(values);
    const deliverAt = typeof values["deliver-at"] === "string"
      ? parseTime("--deliver-at", values["deliver-at"], "ahead")
      : undefined;
    const priority = numberFlag("--priority", values["priority"] as string | undefined);
    const maxAttempts = numberFlag("--max-attempts", values["max-attempts"] as string | undefined);
    const key = values["idempotency-key"];
    const notification = {
      kind: typeof values["kind"] === "string" ? values["kind"] : "message",
      payload,
      ...(typeof key === "string" ? { idempotencyKey: key } : {}),
    };
    const routes = to.map((destination) => ({
      channel,
      destination,
      ...(deliverAt ? { deliverAt } : {}),
      ...(priority === undefined ? {} : { priority }),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
    }));
    return await withDatabase(common, io, async ({ store }) => {
      const res = await store.enqueue(notification, routes);
      if (res.duplicate) {
        io.err("herald: idempotency key seen before: nothing written; the first ids are:");
      }
      for (const id of res.routeIds) io.out(id);
      return 0;
    });
  },
};

async function readPayload(values: Values): Promise<JsonValue> {
  const inline = values["payload"];
  const file = values["payload-file"];
  if (inline !== undefined && file !== undefined) {
    throw new InvalidArgumentError("--payload", "give --payload or --payload-file, not both");
  }
  if (inline === undefined && file === undefined) return {};
  let text: string;
  let field = "--payload";
  if (typeof file === "string") {
    field = "--payload-file";
    try {
      // Standard input is read as a stream: a synchronous read of a pipe fails
      // with EAGAIN under Node once its stdin is non-blocking.
      text = file === "-" ? await readStdin() : readFileSync(file, "utf8");
    } catch (err) {
      throw new InvalidArgumentError(
        field,
        `cannot be read (${(err as { code?: string }).code ?? "error"})`,
        file,
      );
    }
  } else {
    text = String(inline);
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new InvalidArgumentError(field, `is not valid JSON (${(err as Error).message})`);
  }
}

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
      const count = (channel: string, status: RouteStatus): string =>
        String(st.byChannel.find((c) => c.channel === channel && c.status === status)?.count ?? 0);
      const oldest = (channel: string): string => {
        const due = st.oldestDueByChannel.find((d) => d.channel === channel);
        return due ? formatDuration(due.ageMs) : "-";
      };
      io.out(table(
        ["channel", ...STATUSES, "oldest due"],
        [
          ...channels.map((c) => [c, ...STATUSES.map((s) => count(c, s)), oldest(c)]),
          ["(all)", ...STATUSES.map((s) => String(st.byStatus[s])), ""],
        ],
      ));
      io.out("");
      io.out(
        `oldest due route waiting: ${
          st.oldestDueAgeMs === null ? "none due" : formatDuration(st.oldestDueAgeMs)
        }`,
      );
      io.out(`failed in the last hour:  ${st.failedLastHour}`);
      return 0;
    });
  },
};

/** `herald routes` */
export const routesCommand: Command = {
  summary: "list routes, newest first",
  usage: `herald routes [--status S] [--channel C] [--limit N] [--json] [options]

  --status S     queued | sent | failed | cancelled | poisoned
  --channel C    only this channel
  --limit N      at most N routes (default 50)`,
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
        ["route", "channel", "status", "attempts", "next attempt", "last error"],
        routes.map((r) => [
          r.id,
          r.channel,
          r.status,
          String(r.attempts),
          r.status === "queued" ? formatTime(r.nextAttemptAt) : "-",
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

/** Refuses a malformed route id before anything touches the database. */
function checkRouteIds(ids: readonly string[]): void {
  const bad = ids.find((id) => !isUuid(id));
  if (bad !== undefined) {
    throw new InvalidArgumentError("ROUTE_ID", "must be a route id (a UUID)", bad);
  }
}

/** A route for printing: the destination cut down, since it may be a credential. */
function publicRoute(r: RouteRecord): Record<string, string | number | null> {
  return {
    id: r.id,
    notificationId: r.notificationId,
    channel: r.channel,
    destination: redact(r.destination),
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

/** `herald retry` */
export const retryCommand: Command = {
  summary: "make routes due now with a fresh attempt budget",
  usage: `herald retry ROUTE_ID... [--force] [options]
herald retry --failed [--channel C] [--since TIME] [options]

  --force          also retry routes already sent
  --failed         every failed route (of --channel, updated since --since)
  --since TIME     ISO 8601 time, or a duration ago such as 1h`,
  options: {
    force: { type: "boolean" },
    failed: { type: "boolean" },
    channel: { type: "string" },
    since: { type: "string" },
  },
  positionals: Infinity,
  run(values, args, common, io) {
    const failed = values["failed"] === true;
    if (failed === (args.length > 0)) {
      throw new InvalidArgumentError("ROUTE_ID", "give route ids or --failed (one of the two)");
    }
    for (const flag of ["channel", "since"]) {
      if (!failed && values[flag] !== undefined) {
        throw new InvalidArgumentError(`--${flag}`, "goes with --failed");
      }
    }
    checkRouteIds(args);
    const since = typeof values["since"] === "string"
      ? parseTime("--since", values["since"], "ago")
      : undefined;
    return withDatabase(common, io, async ({ store }) => {
      const res = failed
        ? await store.retry({
          failed: true,
          ...(typeof values["channel"] === "string" ? { channel: values["channel"] } : {}),
          ...(since ? { since } : {}),
        })
        : await store.retry({ ids: args }, { force: values["force"] === true });
      io.out(`retried ${res.changed} route(s)`);
      if (res.refusedSent > 0) {
        io.err(`herald: ${res.refusedSent} route(s) already sent: left alone (use --force)`);
      }
      if (res.skipped > 0) io.err(`herald: ${res.skipped} route(s) skipped (being sent right now)`);
      for (const id of res.notFound) io.err(`herald: no route ${id}`);
      return res.notFound.length > 0 ? 1 : 0;
    });
  },
};

/** `herald cancel` */
export const cancelCommand: Command = {
  summary: "cancel queued routes",
  usage: "herald cancel ROUTE_ID... [options]",
  options: {},
  positionals: Infinity,
  run(_values, args, common, io) {
    if (args.length === 0) throw new InvalidArgumentError("ROUTE_ID", "is required");
    checkRouteIds(args);
    return withDatabase(common, io, async ({ store }) => {
      const res = await store.cancel(args);
      io.out(`cancelled ${res.changed} route(s)`);
      if (res.skipped > 0) {
        io.err(`herald: ${res.skipped} route(s) skipped (not queued, or being sent right now)`);
      }
      for (const id of res.notFound) io.err(`herald: no route ${id}`);
      return res.notFound.length > 0 ? 1 : 0;
    });
  },
};

/** `herald prune` */
export const pruneCommand: Command = {
  summary: "delete finished routes older than a duration",
  usage: `herald prune --older-than DURATION [--status sent,failed,cancelled] [options]

  --older-than D   e.g. 30d, 12h (finished longer ago than this)
  --status LIST    which finished statuses (default all three); queued routes are never pruned`,
  options: { "older-than": { type: "string" }, status: { type: "string" } },
  positionals: 0,
  run(values, _args, common, io) {
    const olderThanMs = parseDuration("--older-than", values["older-than"] as string | undefined);
    const statuses = typeof values["status"] === "string"
      ? values["status"].split(",").map((s) => s.trim())
      : undefined;
    if (statuses?.some((s) => !["sent", "failed", "cancelled"].includes(s))) {
      throw new InvalidArgumentError(
        "--status",
        "must list only sent, failed, cancelled",
        values["status"],
      );
    }
    return withDatabase(common, io, async ({ store }) => {
      let last = 0;
      const total = await store.prune({
        olderThanMs,
        ...(statuses ? { statuses: statuses as ("sent" | "failed" | "cancelled")[] } : {}),
        onProgress: (n) => {
          if (n > last) io.err(`herald: deleted ${n} route(s) so far`);
          last = n;
        },
      });
      io.out(`pruned ${total} route(s)`);
      return 0;
    });
  },
};

/** All of standard input, as text. */
async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
  }
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(bytes);
}
