/**
 * The conditions the embedded database's error tests create: another user
 * (tests run as root here, and root may write anywhere, so an open that must
 * be refused runs in a child process as `nobody` through `runuser`), and a
 * small disk (a tmpfs, which root can mount). Where a condition cannot be
 * made, `unavailable()` says why, for `t.skip()`.
 *
 * @module
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { collect, scriptArgs } from "../_helpers/spawn.ts";
import { track } from "../_helpers/leaks.ts";

/** What the child prints: the open's outcome. */
export interface ChildOutcome {
  readonly ok?: boolean;
  readonly code?: string;
  readonly name?: string;
  readonly field?: string;
  readonly message?: string;
  /** How it ended, when it printed nothing (killed by a signal). */
  readonly exit?: { readonly code: number | null; readonly signal: string | null };
  readonly stderr?: string;
}

const RUNUSER = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].find(existsSync);
const NOBODY = 65534;

/** Why an unprivileged child cannot be run here, or `undefined` when it can. */
export function noOtherUser(): string | undefined {
  if (process.getuid?.() !== 0) return "not root: cannot run a child as another user";
  if (RUNUSER === undefined) return "runuser is not installed: cannot run a child as nobody";
  // The child runs this checkout's runtime and test file: a clone in a directory
  // other users cannot enter (`mktemp -d` makes 0700 ones) cannot be run as nobody.
  const child = fileURLToPath(new URL("./_open_child.ts", import.meta.url));
  const [runtime] = scriptArgs(child, []);
  try {
    const test = ["-u", "nobody", "--", "test", "-x", runtime, "-a", "-r", child];
    execFileSync(RUNUSER, test, { stdio: "ignore" });
  } catch {
    return `nobody cannot run ${child} with ${runtime}: put the checkout where other users can enter`;
  }
  return undefined;
}

/** Gives `nobody` the tree at `path` (it becomes the owner, as a user's own directory would). */
export function giveToNobody(path: string): void {
  chownSync(path, NOBODY, NOBODY);
  for (const entry of readdirSync(path, { recursive: true })) {
    chownSync(join(path, String(entry)), NOBODY, NOBODY);
  }
}

/** Lets other users walk down to `path` (the fixture's temporary directory is 0700). */
export function traversable(...dirs: string[]): void {
  for (const dir of dirs) chmodSync(dir, 0o755);
}

/**
 * Runs tests/embedded/_open_child.ts as `nobody` (or as this user when
 * `asNobody` is false) under this test's runtime; resolves with its outcome.
 */
export function openInChild(
  dataDir: string,
  asNobody: boolean,
  fileSizeLimitKb?: number,
): Promise<ChildOutcome> {
  const script = fileURLToPath(new URL("./_open_child.ts", import.meta.url));
  let [command, argv] = scriptArgs(script, [dataDir]);
  if (fileSizeLimitKb !== undefined) {
    argv = ["-c", `ulimit -f ${fileSizeLimitKb} && exec "$@"`, "sh", command, ...argv];
    command = "/bin/sh";
  }
  if (asNobody) [command, argv] = [RUNUSER!, ["-u", "nobody", "--", command, ...argv]];
  const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let gone = false;
  track("an open child", () => gone ? undefined : `pid ${child.pid} still running`);
  return collect(child).then(({ code, signal, stdout, stderr }) => {
    gone = true;
    const line = stdout.trim().split("\n").pop() ?? "";
    if (line === "") return { exit: { code, signal }, stderr };
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`the child printed no outcome: ${stdout} ${stderr}`);
    }
  });
}

/** A mounted tmpfs, removed by `close()`. */
export interface SmallDisk {
  readonly path: string;
  close(): void;
}

/**
 * Mounts a tmpfs of `options` (e.g. `size=4m`) at `path` (created if
 * missing); `undefined` with the reason where mounting is not allowed.
 */
export function mountTmpfs(path: string, options: string): SmallDisk | string {
  if (process.getuid?.() !== 0) return "not root: cannot mount a small tmpfs for a full disk";
  try {
    execFileSync("mkdir", ["-p", path]);
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", path], { stdio: "pipe" });
  } catch (err) {
    return `cannot mount a tmpfs here (${String((err as Error).message).split("\n")[0]})`;
  }
  let mounted = true;
  track("a tmpfs mount", () => mounted ? `${path} still mounted` : undefined);
  return {
    path,
    close() {
      if (!mounted) return;
      execFileSync("umount", [path]);
      mounted = false;
    },
  };
}

/** Fills the file system holding `dir` to the last byte with a file `filler` in it. */
export function fill(dir: string): string {
  const filler = join(dir, "filler");
  const avail = execFileSync("df", ["-B1", "--output=avail", dir], { encoding: "utf8" })
    .trim().split("\n").pop()!.trim();
  if (Number(avail) > 0) execFileSync("fallocate", ["-l", avail, filler]);
  return filler;
}

/** A scratch directory under `root`, for a test's own files. */
export function scratch(root: string, name: string): string {
  const dir = mkdtempSync(join(root, `${name}-`));
  return dir;
}

/** Removes `path` (files a child of another user made included: we are root). */
export function remove(path: string): void {
  rmSync(path, { recursive: true, force: true });
}
