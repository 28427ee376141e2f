/**
 * A primary and a streaming-replication standby on this host, for the
 * failover test: `initdb` a primary on a free port, `pg_basebackup -R` a
 * standby from it onto another, both private and thrown away afterwards.
 * Replication is synchronous (`synchronous_standby_names = '*'`, given to the
 * primary alone), so a commit the primary acknowledged is on the standby:
 * with asynchronous replication Postgres itself may lose the last
 * transactions of a crashed primary, and no queue on top can bring them back.
 *
 * @module
 */
import { chownSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { freePort, IS_ROOT, postgresBinDir, tool } from "./_cluster.ts";

/** A running primary and standby. */
export interface ReplicaPair {
  /** Both hosts, writable one wanted: what a fleet that survives failover connects to. */
  readonly url: string;
  readonly primaryUrl: string;
  readonly standbyUrl: string;
  /** `kill -9` of the primary's postmaster: a crash, not a shutdown. */
  killPrimary(): void;
  /** Promotes the standby to primary; resolves once it accepts writes. */
  promote(): Promise<void>;
  /** Stops both and removes their directories; safe to call twice. */
  destroy(): Promise<void>;
}

const COMMON = ["-c listen_addresses=127.0.0.1", "-c fsync=off", "-c max_connections=80"];

/** Starts a primary and a synchronous standby. */
export async function startReplicaPair(): Promise<ReplicaPair> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin)");
  const dir = mkdtempSync(join(tmpdir(), "herald-failover-"));
  if (IS_ROOT) {
    const id = (flag: string) =>
      Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, id("-u"), id("-g"));
  }
  const p1 = await freePort();
  let p2 = await freePort();
  while (p2 === p1) p2 = await freePort(); // the first is free until its server starts
  const primary = join(dir, "primary");
  const standby = join(dir, "standby");
  const opts = (port: number, extra: string[]) =>
    [`-p ${port}`, `-k ${dir}`, ...COMMON, ...extra].join(" ");
  const start = (data: string, port: number, extra: string[]) =>
    tool(bin, "pg_ctl", [
      "-D",
      data,
      "start",
      "-w",
      "-t",
      "60",
      "-l",
      `${data}.log`,
      "-o",
      opts(port, extra),
    ]);
  const stop = (data: string) =>
    tool(bin, "pg_ctl", ["-D", data, "stop", "-m", "immediate", "-w"]).catch(() => "");
  let destroyed: Promise<void> | undefined;
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      await stop(standby);
      await stop(primary);
      rmSync(dir, { recursive: true, force: true });
    })();
    return destroyed;
  };
  try {
    await tool(bin, "initdb", ["-D", primary, "-U", "postgres", "-A", "trust", "--no-sync"]);
    await start(primary, p1, [
      "-c wal_level=replica",
      "-c max_wal_senders=5",
      "-c synchronous_standby_names='*'",
    ]);
    await tool(bin, "pg_basebackup", [
      "-h",
      "127.0.0.1",
      "-p",
      String(p1),
      "-U",
      "postgres",
      "-D",
      standby,
      "-R",
      "-X",
      "stream",
      "--no-sync",
    ]);
    await start(standby, p2, ["-c hot_standby=on"]);
  } catch (err) {
    await destroy();
    throw err;
  }
  const url = (hosts: string) => `postgres://postgres@${hosts}/postgres`;
  return {
    url: `${url(`127.0.0.1:${p1},127.0.0.1:${p2}`)}?target_session_attrs=read-write`,
    primaryUrl: url(`127.0.0.1:${p1}`),
    standbyUrl: url(`127.0.0.1:${p2}`),
    killPrimary() {
      const pid = Number(readFileSync(join(primary, "postmaster.pid"), "utf8").split("\n")[0]);
      process.kill(pid, "SIGKILL");
    },
    async promote() {
      await tool(bin, "pg_ctl", ["-D", standby, "promote", "-w", "-t", "60"]);
    },
    destroy,
  };
}
