/**
 * The embedded database has one owner process, but a developer running
 * `herald run` still wants `herald stats` in another terminal. So the owner
 * serves its PGlite session on a Unix socket in a private directory (mode
 * 0700, so only the same user and root can connect) and names it in the
 * lock file; another process of that user, finding the directory locked,
 * connects there with the ordinary driver. Each connection is one more
 * virtual connection on the owner's session: its statements take turns with
 * the owner's transactions, as the owner's own connections do.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import type { PgliteSocket } from "./_pglite_socket.ts";

/** A session being served. */
export interface Share {
  /** The socket's path, for the lock file. */
  readonly path: string;
  /** Stops listening, drops every connection (their transactions roll back), removes the socket. */
  close(): Promise<void>;
}

/**
 * Serves `connect()`'s virtual connections on a Unix socket; `undefined`
 * where the system has none to offer (the database then stays private).
 */
export async function shareLocally(connect: () => PgliteSocket): Promise<Share | undefined> {
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), "herald-"));
  } catch {
    return undefined;
  }
  const path = join(dir, ".s.PGSQL.5432");
  const open = new Set<Socket>();
  const server = createServer((conn) => {
    open.add(conn);
    conn.on("close", () => open.delete(conn));
    bridge(conn, connect());
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  server.unref();
  let closing: Promise<void> | undefined;
  return {
    path,
    close() {
      closing ??= stop(server, open, dir);
      return closing;
    },
  };
}

async function stop(server: Server, open: Set<Socket>, dir: string): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const conn of open) conn.destroy();
  await closed;
  rmSync(dir, { recursive: true, force: true });
}

/** Pipes a client's socket to a virtual connection and back; either end closing closes both. */
function bridge(conn: Socket, virtual: PgliteSocket): void {
  conn.unref();
  conn.on("data", (bytes: Uint8Array) => virtual.write(bytes));
  virtual.on("data", (bytes: Uint8Array) => {
    if (!conn.destroyed) conn.write(bytes);
  });
  // The virtual connection's close rolls back what the client left open.
  conn.on("close", () => virtual.destroy());
  conn.on("error", () => {}); // "close" follows
  virtual.on("close", () => conn.destroy());
  virtual.on("error", () => conn.destroy());
}

/** How the driver reaches the embedded database: a virtual socket in-process, or a shared one. */
export type Reach = { readonly socket: () => PgliteSocket } | { readonly path: string };

/** The driver on the embedded database, the same way in both cases. */
export function embeddedSql(reach: Reach): postgres.Sql {
  return postgres({
    ...reach,
    // One connection: PGlite has one session anyway, and the driver's own
    // queue is where waiting queries belong. `sql.listen` adds a second.
    max: 1,
    // Pinned, so PG* variables meant for a real server do not leak in.
    user: "postgres",
    database: "postgres",
    ssl: false,
    max_lifetime: null, // recycling an in-process connection buys nothing
    fetch_types: false, // no array columns are read; one query less per open
    onnotice: () => {},
    connection: { application_name: "herald" },
  } as postgres.Options<Record<string, never>>); // `socket` works, but the driver's types omit it
}
