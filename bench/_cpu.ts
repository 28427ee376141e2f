/**
 * CPU time per route, on both sides of the connection: this process (the
 * client: Herald's worker or the raw loop) and the Postgres server's
 * processes, read from `/proc` when the server runs on this host. On a
 * machine where the two share the cores, their sum per route is what bounds
 * a CPU-bound drain, and the split says which side to make cheaper.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { sleep } from "../core/_async.ts";

/** CPU milliseconds per route; a side that could not be read is absent. */
export interface CpuPerRoute {
  client_cpu_ms?: number;
  db_cpu_ms?: number;
}

/** Linux's clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`). */
const TICKS_PER_S = 100;

/**
 * Starts counting; the function returned gives the CPU per route since
 * then. `client`: count this process (false when the client is another
 * process, as pgbench is).
 */
export async function cpuMeter(
  url: string,
  client = true,
): Promise<(routes: number) => Promise<CpuPerRoute>> {
  const local = isLocal(url);
  const server0 = local ? await settledTicks() : undefined;
  const client0 = client ? process.cpuUsage() : undefined;
  return async (routes) => {
    const per = (ms: number): number => Math.round((ms / Math.max(1, routes)) * 1000) / 1000;
    const out: CpuPerRoute = {};
    if (client0) {
      const used = process.cpuUsage(client0);
      out.client_cpu_ms = per((used.user + used.system) / 1000);
    }
    const server1 = local ? await settledTicks() : undefined;
    if (server0 !== undefined && server1 !== undefined) {
      out.db_cpu_ms = per(((server1 - server0) * 1000) / TICKS_PER_S);
    }
    return out;
  };
}

/**
 * The server's ticks once they stop moving. A backend that has just exited
 * leaves `/proc` a moment before the postmaster reaps it and adds its time to
 * its own: read then, the sum misses it (or, read at the start, counts a
 * backend of the previous scenario whole). Two readings 100 ms apart within
 * a tick (an idle server) mean nothing is in between; at most 5 s.
 */
async function settledTicks(): Promise<number | undefined> {
  let last = serverTicks();
  for (let i = 0; i < 50 && last !== undefined; i++) {
    await sleep(100);
    const now = serverTicks();
    if (now === undefined || now - last <= 1) return now;
    last = now;
  }
  return last;
}

function isLocal(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host === "";
}

/**
 * User and system ticks of every `postgres` process, with the reaped
 * children's (a backend that exits is added to the postmaster's), or
 * `undefined` where `/proc` cannot be read (not Linux).
 */
function serverTicks(): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  let ticks = 0;
  let found = false;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // `pid (comm) state …`: comm may hold spaces, so split after its ")".
      const open = stat.indexOf("(");
      const close = stat.lastIndexOf(")");
      if (!stat.slice(open + 1, close).startsWith("postgres")) continue;
      const fields = stat.slice(close + 2).split(" ");
      // Fields 14-17 of stat(5): utime, stime, cutime, cstime (from field 3 here).
      for (let i = 11; i <= 14; i++) ticks += Number(fields[i]);
      found = true;
    } catch {
      // The process ended while being read.
    }
  }
  return found ? ticks : undefined;
}
