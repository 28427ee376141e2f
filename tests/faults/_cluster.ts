/**
 * A private, throw-away Postgres cluster for the tests that must restart or
 * stop the server: `initdb` into a temporary directory, `pg_ctl` on a free
 * port of 127.0.0.1, removed afterwards. The shared server is never touched.
 *
 * Debian keeps `initdb` and `pg_ctl` off PATH, in a versioned folder: it is
 * found with `pg_config --bindir`, else by globbing /usr/lib/postgresql. As
 * root (CI containers), `initdb` refuses to run, so the cluster belongs to
 * the `postgres` user and every command runs through `runuser`.
 *
 * @module
 */
import { execFile, execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** A running private cluster. */
export interface Cluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** Fast restart: every session is terminated, then the server comes back. */
  restart(): Promise<void>;
  /** Stops the server (fast: sessions terminated); `start()` brings it back. */
  stop(): Promise<void>;
  /** Starts a stopped server again. */
  start(): Promise<void>;
  /** Stops the server (fast) and removes its directory; safe to call twice. */
  destroy(): Promise<void>;
}

/** The folder holding `initdb` and `pg_ctl`, or `undefined` when Postgres is not installed. */
export function postgresBinDir(): string | undefined {
  try {
    const dir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim();
    if (existsSync(join(dir, "initdb"))) return dir;
  } catch {
    // no pg_config: try the Debian layout below
  }
  try {
    const versions = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = `/usr/lib/postgresql/${v}/bin`;
      if (existsSync(join(dir, "initdb"))) return dir;
    }
  } catch {
    // not Debian
  }
  return undefined;
}

/**
 * A TCP port of 127.0.0.1 that was free a moment ago, from below the
 * kernel's ephemeral range. A port from inside it (what `listen(0)` gives)
 * can be taken between this check and the server's bind by any outgoing
 * connection's local end, and seconds pass before a cluster binds (initdb
 * runs first): with many tests connecting at once, pg_ctl then failed to
 * start. Below the range only a listener can take it.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  for (let tries = 0; tries < 50; tries++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found between 10000 and ${low}`);
}

/** The first port of the kernel's ephemeral range (Linux), 32768 where unknown. */
function ephemeralLow(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(
      /\s+/,
    );
    const n = Number(low);
    return Number.isInteger(n) && n > 11_000 ? n : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** True when the tests run as root (CI): Postgres tools then run as `postgres`. */
export const IS_ROOT: boolean = process.getuid?.() === 0;

/** Runs a Postgres tool, as `postgres` when we are root. */
export function tool(bin: string, name: string, args: readonly string[]): Promise<string> {
  const [cmd, argv] = IS_ROOT
    ? ["runuser", ["-u", "postgres", "--", join(bin, name), ...args]]
    : [join(bin, name), [...args]];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${name} ${args.join(" ")} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Creates and starts a private cluster; the caller must `destroy()` it. */
export async function startCluster(): Promise<Cluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin)");
  const dir = mkdtempSync(join(tmpdir(), "herald-faults-pg-"));
  if (IS_ROOT) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  const port = await freePort();
  const ctl = (...args: string[]): Promise<string> => tool(bin, "pg_ctl", ["-D", data, ...args]);
  let destroyed: Promise<void> | undefined;
  let started = false;
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      try {
        if (started) await ctl("stop", "-m", "immediate", "-w");
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return destroyed;
  };
  const opts = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-k ${dir}`,
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
    "-c max_connections=60",
  ].join(" ");
  try {
    await tool(bin, "initdb", ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync"]);
    started = true;
    await ctl("start", "-w", "-t", "60", "-l", join(dir, "server.log"), "-o", opts);
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      await ctl("stop", "-m", "fast", "-w", "-t", "60");
    },
    async start() {
      await ctl("start", "-w", "-t", "60", "-l", join(dir, "server.log"), "-o", opts);
    },
    async restart() {
      // `-l` again: without it the new server would hold our stdout pipe open.
      await ctl("restart", "-m", "fast", "-w", "-t", "60", "-l", join(dir, "server.log"));
    },
    destroy,
  };
}
