/**
 * A real PgBouncer (Debian's `pgbouncer` package, 1.18) in transaction
 * pooling mode in front of a Postgres, on a free port of 127.0.0.1, for the
 * topology tests. PgBouncer refuses to run as root, so as root (CI) it runs
 * as the `postgres` user. `pgbouncerBinary()` is `undefined` where it is not
 * installed: `.ci/run` installs it, and the tests say so and skip elsewhere.
 *
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { connect } from "node:net";
import { freePort } from "./_cluster.ts";

/** A running PgBouncer. */
export interface Bouncer {
  /** `postgres://postgres@127.0.0.1:<port>/<db>`: through the pooler. */
  readonly url: string;
  readonly port: number;
  /** Stops it and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** The `pgbouncer` executable, or `undefined` when it is not installed. */
export function pgbouncerBinary(): string | undefined {
  for (const path of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]) {
    if (existsSync(path)) return path;
  }
  try {
    return execFileSync("which", ["pgbouncer"], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const IS_ROOT = process.getuid?.() === 0;

/**
 * Starts PgBouncer in transaction mode for database `db` of the server at
 * `host:port` (trust auth, as the test servers here use), with room for
 * `clients` client connections and `serverPool` server connections.
 */
export async function startBouncer(
  target: { host: string; port: number; db: string },
  sizes: { clients: number; serverPool: number } = { clients: 200, serverPool: 20 },
): Promise<Bouncer> {
  const bin = pgbouncerBinary();
  if (!bin) throw new Error("pgbouncer is not installed (apt-get install pgbouncer)");
  const dir = mkdtempSync(join(tmpdir(), "herald-pgbouncer-"));
  const port = await freePort();
  writeFileSync(join(dir, "userlist.txt"), '"postgres" ""\n');
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `${target.db} = host=${target.host} port=${target.port} dbname=${target.db}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "userlist.txt")}`,
      `max_client_conn = ${sizes.clients}`,
      `default_pool_size = ${sizes.serverPool}`,
      `logfile = ${join(dir, "pgbouncer.log")}`,
      // The settings the README's recipe gives, verbatim.
      ...readmeSettings(),
      "",
    ].join("\n"),
  );
  if (IS_ROOT) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    for (const f of ["", "userlist.txt", "pgbouncer.ini"]) chownSync(join(dir, f), uid, gid);
  }
  const [cmd, argv] = IS_ROOT
    ? ["runuser", ["-u", "postgres", "--", bin, join(dir, "pgbouncer.ini")]]
    : [bin, [join(dir, "pgbouncer.ini")]];
  const child: ChildProcess = spawn(cmd, argv, { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    await listening(port, exited);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/${target.db}`, port, stop };
}

/** Resolves once `port` accepts TCP connections; rejects if the process exits first. */
async function listening(port: number, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; i < 200; i++) {
    if (gone) throw new Error("pgbouncer exited at start (see its log)");
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pgbouncer is not listening on ${port}`);
}

/** The `[pgbouncer]` settings of the README's "Deploying at scale" recipe. */
export function readmeSettings(): string[] {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const block = /```ini\n\[pgbouncer\]\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error("README.md has no ```ini [pgbouncer] block");
  return block[1]!.split("\n").filter((l) => l.trim() !== "" && !l.startsWith(";"));
}
