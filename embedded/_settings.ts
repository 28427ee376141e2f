/**
 * How PGlite is started for Herald: the server settings that keep it light,
 * fsync on or off, and the one piece of plumbing that makes fsync real.
 *
 * Memory: PGlite's default `shared_buffers` is 128 MB, and Emscripten zeroes
 * the whole shared memory segment at start, so every open touched about
 * 160 MB of WebAssembly memory. Herald's tables are small and the operating
 * system caches the files anyway: 16 MB of buffers is plenty.
 *
 * Durability: PGlite starts Postgres with `-F` (fsync off), and its Node
 * filesystem (Emscripten's NODEFS) has no fsync either: `fdatasync` is a no-op
 * and `fsync` finds no handler. With `fsync: true` Herald drops `-F`, points
 * the WAL at `fsync()` (`wal_sync_method=fsync`) and gives NODEFS the handler,
 * so a commit returns only once its WAL is on the disk.
 *
 * @module
 */
import { fsyncSync } from "node:fs";

/** The server settings on top of PGlite's own start parameters. */
const SETTINGS = [
  "shared_buffers=16MB",
  // VACUUM and CREATE INDEX take this much at most; PGlite's 64 MB default is a server's.
  "maintenance_work_mem=16MB",
];

/**
 * The command line PGlite starts Postgres with: PGlite's defaults, without
 * `-F` when `fsync` is on, plus Herald's settings.
 */
export function startParams(defaults: readonly string[], fsync: boolean): string[] {
  const params = defaults.filter((p) => !(fsync && p === "-F"));
  if (!fsync && !params.includes("-F")) params.push("-F");
  const settings = fsync ? [...SETTINGS, "wal_sync_method=fsync"] : SETTINGS;
  for (const s of settings) params.push("-c", s);
  return params;
}

/** The part of an Emscripten module the fsync handler needs. */
interface NodeFsModule {
  readonly NODEFS?: {
    stream_ops: Record<string, unknown>;
    tryFSOperation?: <T>(fn: () => T) => T;
  };
}

/** The file descriptor NODEFS keeps on an open stream. */
interface NodeFsStream {
  readonly nfd?: number;
}

/**
 * A PGlite "extension" that only amends the Emscripten options: before
 * Postgres starts, NODEFS streams get an `fsync` that calls the real one
 * (`sync` is injectable so a test can count the calls).
 */
export function durableNodeFs(sync: (fd: number) => void = fsyncSync): {
  name: string;
  setup(pg: unknown, opts: { preRun?: unknown[] }): Promise<{ emscriptenOpts: unknown }>;
} {
  const install = (mod: NodeFsModule): void => {
    const nodefs = mod.NODEFS;
    if (!nodefs) return;
    const attempt = nodefs.tryFSOperation ?? (<T>(fn: () => T): T => fn());
    nodefs.stream_ops["fsync"] = (stream: NodeFsStream): number => {
      if (stream.nfd !== undefined) attempt(() => sync(stream.nfd!));
      return 0;
    };
  };
  return {
    name: "herald-durable-nodefs",
    setup: (_pg, opts) =>
      Promise.resolve({
        emscriptenOpts: { ...opts, preRun: [...(opts.preRun ?? []), install] },
      }),
  };
}

/**
 * Keeps the last lines Postgres wrote to standard error (PGlite swallows
 * them unless debugging), so a failed open can say why.
 */
export class StderrTail {
  readonly #lines: string[] = [];

  /** For PGlite's `onStderr`. */
  readonly push = (text: string): boolean => {
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      this.#lines.push(line);
      if (this.#lines.length > 50) this.#lines.shift();
    }
    return false;
  };

  /** The lines kept, oldest first. */
  lines(): readonly string[] {
    return this.#lines;
  }
}
