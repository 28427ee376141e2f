/**
 * `herald dashboard`: serves the web dashboard (dashboard/mod.ts) until
 * SIGINT/SIGTERM; `herald run --dashboard-port` serves it beside a worker.
 * Bound to 127.0.0.1 unless told otherwise, and any other address needs
 * `HERALD_DASHBOARD_TOKEN` (an environment variable, never a flag: flags
 * show in `ps`).
 *
 * @module
 */
import type { Server } from "node:http";
import { InvalidArgumentError } from "../core/errors.ts";
import { PostgresStore } from "../store.ts";
import { booleanEnv, numberFlag, pick } from "./_flags.ts";
import type { Common, Env, Values } from "./_flags.ts";
import { withDatabase } from "./_command.ts";
import type { Command, Io } from "./_command.ts";
import { portOf, serve, stop } from "./_serve.ts";
import { onStopSignals } from "./_signals.ts";

/** Where and how to serve the dashboard, checked. */
export interface DashboardSettings {
  readonly host: string;
  readonly port: number;
  readonly token: string | undefined;
  readonly readOnly: boolean;
}

/** The port `herald dashboard` takes when given none. */
export const DASHBOARD_PORT = 8089;

/**
 * Reads the host, port, token and read-only settings; refuses a bind beyond
 * loopback without a token, naming the flag.
 */
export function dashboardSettings(
  raw: { host: string | undefined; port: string | undefined; readOnly: boolean },
  env: Env,
  flags: { host: string; port: string },
): DashboardSettings {
  const port = numberFlag(flags.port, raw.port) ?? DASHBOARD_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError(flags.port, "must be a port number from 0 to 65535", port);
  }
  const host = raw.host ?? "127.0.0.1";
  const token = env["HERALD_DASHBOARD_TOKEN"] || undefined;
  if (token !== undefined && token.length < 16) {
    throw new InvalidArgumentError(
      "HERALD_DASHBOARD_TOKEN",
      "must be at least 16 characters (try: openssl rand -hex 24)",
    );
  }
  if (token === undefined && !isLoopback(host)) {
    throw new InvalidArgumentError(
      flags.host,
      `${host} is reachable beyond this machine: set HERALD_DASHBOARD_TOKEN to serve the ` +
        "dashboard there, or bind 127.0.0.1",
    );
  }
  return { host, port, token, readOnly: raw.readOnly };
}

/** Starts serving the dashboard over `store`; logs where. */
export async function startDashboard(
  store: PostgresStore,
  settings: DashboardSettings,
  common: Common,
): Promise<Server> {
  // Loaded only when asked for, so a worker never loads the dashboard's code.
  const { dashboard } = await import("../dashboard/mod.ts");
  const handle = dashboard(store, {
    ...(settings.token === undefined ? {} : { token: settings.token }),
    readOnly: settings.readOnly,
  });
  const server = await serve(handle, settings);
  common.logger.log("info", "serving the dashboard", {
    host: settings.host,
    port: portOf(server),
    read_only: settings.readOnly,
    token: settings.token !== undefined,
  });
  return server;
}

/** A small pool of the dashboard's own, beside a worker's (`run --dashboard-port`). */
export function dashboardStore(common: Common & { databaseUrl: string }): PostgresStore {
  return new PostgresStore({
    url: common.databaseUrl,
    schema: common.schema,
    max: 2,
    prepare: common.prepare,
  });
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** `herald dashboard` */
export const dashboardCommand: Command = {
  summary: "serve the web dashboard (overview, routes, retry, destinations)",
  usage: `herald dashboard [--port P] [--host H] [--read-only] [options]

  --port P        HERALD_DASHBOARD_PORT  port to serve on (default ${DASHBOARD_PORT}; 0: any free one)
  --host H        HERALD_DASHBOARD_HOST  address to bind (default 127.0.0.1)
  --read-only     HERALD_DASHBOARD_READ_ONLY=true  show everything, change nothing

Any address but loopback needs HERALD_DASHBOARD_TOKEN (16+ characters): open
http://HOST:PORT/?token=... once, or send 'Authorization: Bearer ...'.
Stops on SIGINT/SIGTERM.`,
  options: {
    port: { type: "string" },
    host: { type: "string" },
    "read-only": { type: "boolean" },
  },
  positionals: 0,
  run(values: Values, _args, common, io: Io) {
    const settings = dashboardSettings(
      {
        host: pick(values, "host", io.env, "HERALD_DASHBOARD_HOST"),
        port: pick(values, "port", io.env, "HERALD_DASHBOARD_PORT"),
        readOnly: values["read-only"] === true ||
          booleanEnv("HERALD_DASHBOARD_READ_ONLY", io.env["HERALD_DASHBOARD_READ_ONLY"], false),
      },
      io.env,
      { host: "--host", port: "--port" },
    );
    return withDatabase(common, io, async ({ store }) => {
      const server = await startDashboard(store, settings, common);
      const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
      io.err(`herald: dashboard at http://${host}:${portOf(server)}/ (Ctrl-C stops it)`);
      await new Promise<void>((resolve) => {
        const unwire = onStopSignals(() => {
          unwire();
          resolve();
        });
      });
      await stop(server);
      return 0;
    });
  },
};
