/**
 * `herald run`: migrate, then deliver until SIGINT/SIGTERM (or, with
 * `--once`, until nothing is due). Wires the signals to a graceful shutdown
 * and optionally serves `/metrics` and `/healthz`.
 *
 * @module
 */
import type { Server } from "node:http";
import { channelsFromEnv } from "../channels/env.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { Metrics, metricsHandler } from "../observe/metrics.ts";
import { checkWorkerOptions, Worker } from "../worker.ts";
import type { WorkerOptions } from "../worker.ts";
import type { PostgresStore } from "../store.ts";
import { booleanEnv, defined, numberFlag, parseDuration, pick, sourceOf } from "./_flags.ts";
import { migrateWhenReachable } from "./_wait.ts";
import type { Common, Values } from "./_flags.ts";
import { openDatabase } from "./_command.ts";
import type { Io } from "./_command.ts";
import type { Command } from "./_command.ts";
import { Progress } from "./_progress.ts";
import { loopbackOnly, serve, stop } from "./_serve.ts";
import { onStopSignals } from "./_signals.ts";
import { dashboardSettings, dashboardStore, startDashboard } from "./dashboard.ts";
import type { DashboardSettings } from "./dashboard.ts";

/** `herald run` */
export const runCommand: Command = {
  summary: "migrate, then deliver due routes until SIGINT/SIGTERM (the default command)",
  usage: `herald [run] [options]

  --once                       deliver what is due now, then exit 0 (cron jobs, tests)
  --concurrency N              HERALD_CONCURRENCY   claim loops (default 1); each holds one
                               connection while it sends, so the pool is N connections, plus
                               2 for wake-ups (LISTEN and its probe). The embedded database
                               allows 1 only.
  --routes-per-transaction K   HERALD_ROUTES_PER_TRANSACTION  batch mode when K > 1 (default 1);
                               a loop claims its next batch while the last one commits, so
                               the pool is 2N connections
  --interval MS                HERALD_INTERVAL_MS   poll interval; <= 0 means 5000 (default 5000)
  --routes-per-tick N          HERALD_ROUTES_PER_TICK  routes one tick handles (default 100)
  --max-attempts N             HERALD_MAX_ATTEMPTS  attempts before a route fails (default 10)
  --send-timeout MS            HERALD_SEND_TIMEOUT_MS  per-send timeout (default 30000)
  --shutdown-timeout MS        HERALD_SHUTDOWN_TIMEOUT_MS  grace for in-flight sends (default 10000)
  --max-in-flight N            HERALD_MAX_IN_FLIGHT  sends in flight at once to one URL origin,
                               across the fleet, unless the destination sets its own
                               (default half of --concurrency, at least 1)
  --failure-threshold N        HERALD_FAILURE_THRESHOLD  consecutive failures that open a
                               destination (default 5)
  --cooldown MS                HERALD_COOLDOWN_MS  an open destination's first cool-down,
                               doubling per trip up to 10 minutes (default 30000)
  --disable-after D            HERALD_DISABLE_AFTER  disable a destination failing this long
                               without a success (default 5d)
  --no-listen                  HERALD_LISTEN=false  poll only (behind PgBouncer without --listen-url)
  --metrics-port P             HERALD_METRICS_PORT  serve /metrics and /healthz on this port
  --metrics-host H             HERALD_METRICS_HOST  address to bind (default 127.0.0.1)
  --dashboard-port P           HERALD_DASHBOARD_PORT  serve the web dashboard on this port
  --dashboard-host H           HERALD_DASHBOARD_HOST  address to bind (default 127.0.0.1;
                               any other needs HERALD_DASHBOARD_TOKEN)
  --dashboard-read-only        HERALD_DASHBOARD_READ_ONLY=true  a dashboard without actions
  --wait-for-database D        HERALD_WAIT_FOR_DATABASE  how long to wait for an unreachable
                               Postgres at start, retrying with backoff (default 5m; 0: don't)

Channels come from the environment: see docs/channels.md (HERALD_WEBHOOK_SECRET,
HERALD_EMAIL_*, HERALD_TWILIO_*, HERALD_TELEGRAM_BOT_TOKEN, HERALD_ALLOW_HOSTS, ...).
The first SIGINT/SIGTERM stops claiming and lets sends finish; a second aborts them.`,
  options: {
    once: { type: "boolean" },
    concurrency: { type: "string" },
    "routes-per-transaction": { type: "string" },
    interval: { type: "string" },
    "routes-per-tick": { type: "string" },
    "max-attempts": { type: "string" },
    "send-timeout": { type: "string" },
    "shutdown-timeout": { type: "string" },
    "max-in-flight": { type: "string" },
    "failure-threshold": { type: "string" },
    cooldown: { type: "string" },
    "disable-after": { type: "string" },
    "no-listen": { type: "boolean" },
    "metrics-port": { type: "string" },
    "metrics-host": { type: "string" },
    "dashboard-port": { type: "string" },
    "dashboard-host": { type: "string" },
    "dashboard-read-only": { type: "boolean" },
    "wait-for-database": { type: "string" },
  },
  positionals: 0,
  run,
};

/** The `run` flag behind each worker option, for error messages. */
const FLAGS: Readonly<Record<string, string>> = {
  concurrency: "--concurrency",
  routesPerTransaction: "--routes-per-transaction",
  interval: "--interval",
  routesPerTick: "--routes-per-tick",
  maxAttempts: "--max-attempts",
  sendTimeoutMs: "--send-timeout",
  shutdownTimeoutMs: "--shutdown-timeout",
  "destinations.maxInFlight": "--max-in-flight",
  "destinations.failureThreshold": "--failure-threshold",
  "destinations.cooldownMs": "--cooldown",
};

/** What `run` was asked for, checked. */
interface RunSettings {
  readonly options: Omit<WorkerOptions, "store">;
  readonly connections: number;
  readonly metrics: { readonly host: string; readonly port: number } | undefined;
  readonly dashboard: DashboardSettings | undefined;
  readonly waitMs: number;
}

async function run(
  values: Values,
  _args: readonly string[],
  common: Common,
  io: Io,
): Promise<number> {
  const settings = readSettings(values, common, io.env);
  const db = await openDatabase(common, io, settings.connections);
  const servers: Server[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    await migrateWhenReachable(db.store, settings.waitMs, common.logger);
    const worker = new Worker({ ...settings.options, store: db.store });
    if (values["once"]) return await drain(worker, common, io, values["json"] === true);
    const stopping = new AbortController();
    if (settings.metrics) {
      const server = await serveMetrics(
        worker,
        db.store,
        settings.metrics,
        () => !stopping.signal.aborted,
      );
      servers.push(server);
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : settings.metrics.port;
      common.logger.log("info", "serving /metrics and /healthz", {
        host: settings.metrics.host,
        port,
      });
    }
    if (settings.dashboard) {
      // On Postgres, a pool of its own: a slow page never waits behind, or
      // delays, the worker's statements. The embedded database has one session.
      const url = common.databaseUrl;
      const board = url ? dashboardStore({ ...common, databaseUrl: url }) : db.store;
      if (board !== db.store) closers.push(() => board.close());
      servers.push(await startDashboard(board, settings.dashboard, common));
    }
    const unwire = wireSignals(worker, stopping, common);
    try {
      await worker.run(stopping.signal);
    } finally {
      unwire();
    }
    return 0;
  } finally {
    await Promise.all(servers.map(stop));
    await Promise.all(closers.map((close) => close()));
    await db.close();
  }
}

/**
 * `--once`: tick until nothing is due. Says how it goes: on a terminal one
 * line, rewritten as it counts (routes, rate); in logs a summary every 10 s.
 */
async function drain(worker: Worker, common: Common, io: Io, json: boolean): Promise<number> {
  const began = performance.now();
  const progress = new Progress(io, "handled", undefined);
  let total = 0;
  let logged = began;
  for (let n = await worker.tick(); n > 0; n = await worker.tick()) {
    total += n;
    progress.update(total);
    const now = performance.now();
    if (!progress.live && now - logged >= 10_000) {
      logged = now;
      common.logger.log("info", "draining", {
        routes: total,
        per_second: Math.round(total / ((now - began) / 1000)),
      });
    }
  }
  progress.done();
  common.logger.log("info", "drained", { routes: total });
  if (json) io.out(JSON.stringify({ routes: total }));
  return 0;
}

/**
 * Reads the flags (and their environment variables) and checks every worker
 * option before anything touches the database, naming the flag at fault.
 */
function readSettings(values: Values, common: Common, env: Io["env"]): RunSettings {
  // Each flag's name as given (`--concurrency`, or `HERALD_CONCURRENCY` from the environment).
  const named = new Map<string, string>();
  const num = (flag: string, name: string): number | undefined => {
    const given = sourceOf(values, flag, name);
    named.set(`--${flag}`, given);
    return numberFlag(given, pick(values, flag, env, name));
  };
  const numbers = {
    concurrency: num("concurrency", "HERALD_CONCURRENCY"),
    routesPerTransaction: num("routes-per-transaction", "HERALD_ROUTES_PER_TRANSACTION"),
    interval: num("interval", "HERALD_INTERVAL_MS"),
    routesPerTick: num("routes-per-tick", "HERALD_ROUTES_PER_TICK"),
    maxAttempts: num("max-attempts", "HERALD_MAX_ATTEMPTS"),
    sendTimeoutMs: num("send-timeout", "HERALD_SEND_TIMEOUT_MS"),
    shutdownTimeoutMs: num("shutdown-timeout", "HERALD_SHUTDOWN_TIMEOUT_MS"),
  };
  const listen = values["no-listen"] === true
    ? false
    : booleanEnv("HERALD_LISTEN", env["HERALD_LISTEN"], true);
  const port = num("metrics-port", "HERALD_METRICS_PORT");
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65_535)) {
    throw new InvalidArgumentError(
      named.get("--metrics-port")!,
      "must be a port number from 0 to 65535",
      port,
    );
  }
  const host = pick(values, "metrics-host", env, "HERALD_METRICS_HOST") ?? "127.0.0.1";
  if (!common.databaseUrl && (numbers.concurrency ?? 1) > 1) {
    throw new InvalidArgumentError(
      named.get("--concurrency")!,
      "must be 1 on the embedded database (one connection); set DATABASE_URL for more",
      numbers.concurrency,
    );
  }
  const disableAfter = pick(values, "disable-after", env, "HERALD_DISABLE_AFTER");
  const destinations = defined({
    maxInFlight: num("max-in-flight", "HERALD_MAX_IN_FLIGHT"),
    failureThreshold: num("failure-threshold", "HERALD_FAILURE_THRESHOLD"),
    cooldownMs: num("cooldown", "HERALD_COOLDOWN_MS"),
    disableAfterMs: disableAfter === undefined
      ? undefined
      : parseDuration(sourceOf(values, "disable-after", "HERALD_DISABLE_AFTER"), disableAfter),
  });
  const options = {
    channels: channelsFromEnv(env),
    logger: common.logger,
    listen,
    ...defined(numbers),
    ...(Object.keys(destinations).length === 0 ? {} : { destinations }),
  };
  try {
    checkWorkerOptions(options);
  } catch (err) {
    const flag = err instanceof InvalidArgumentError ? FLAGS[err.field] : undefined;
    if (flag === undefined) throw err;
    const problem = (err as Error).message.replace(/^Invalid '[^']*': /, "");
    throw new InvalidArgumentError(named.get(flag) ?? flag, problem);
  }
  const wait = pick(values, "wait-for-database", env, "HERALD_WAIT_FOR_DATABASE");
  const dashboardPort = pick(values, "dashboard-port", env, "HERALD_DASHBOARD_PORT");
  const dashboard = dashboardPort === undefined ? undefined : dashboardSettings(
    {
      host: pick(values, "dashboard-host", env, "HERALD_DASHBOARD_HOST"),
      port: dashboardPort,
      readOnly: values["dashboard-read-only"] === true ||
        booleanEnv("HERALD_DASHBOARD_READ_ONLY", env["HERALD_DASHBOARD_READ_ONLY"], false),
    },
    env,
    {
      host: sourceOf(values, "dashboard-host", "HERALD_DASHBOARD_HOST"),
      port: sourceOf(values, "dashboard-port", "HERALD_DASHBOARD_PORT"),
    },
  );
  return {
    options,
    // Batch mode: each loop claims its next batch while the last one commits.
    connections: Math.max(1, numbers.concurrency ?? 1) *
      ((numbers.routesPerTransaction ?? 1) > 1 ? 2 : 1),
    metrics: port === undefined ? undefined : { host, port },
    dashboard,
    waitMs: wait === undefined
      ? WAIT_DEFAULT_MS
      : wait === "0"
      ? 0
      : parseDuration(sourceOf(values, "wait-for-database", "HERALD_WAIT_FOR_DATABASE"), wait),
  };
}

/** How long `run` waits for an unreachable database by default. */
const WAIT_DEFAULT_MS = 5 * 60_000;

/**
 * The first SIGINT/SIGTERM stops claiming (`stop`), a second aborts sends
 * now. Returns the function that removes the handlers.
 */
function wireSignals(worker: Worker, stop: AbortController, common: Common): () => void {
  return onStopSignals((name, count) => {
    common.logger.log(
      "info",
      count === 1 ? `${name}: shutting down` : `${name}: aborting sends now`,
    );
    if (count === 1) stop.abort();
    else void worker.shutdown({ timeoutMs: 0 });
  });
}

/** Serves the metrics handler with `node:http`, which all three runtimes have. */
function serveMetrics(
  worker: Worker,
  store: PostgresStore,
  { host, port }: { readonly host: string; readonly port: number },
  healthy: () => boolean,
): Promise<Server> {
  const metrics = new Metrics();
  metrics.observe(worker);
  return serve(loopbackOnly(metricsHandler(metrics, store, healthy), host), { host, port });
}
