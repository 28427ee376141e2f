/**
 * The `herald` program: picks the subcommand, parses its flags, and turns
 * errors into messages and exit codes. This (with the signal wiring of
 * `_signals.ts`, which `run`, `dashboard` and `prune` use, the exit of a
 * prune's second signal, and the V8 flags `_command.ts` sets before opening
 * the embedded database on Node) is the only place that touches
 * process-wide things; the library never does.
 *
 * Exit codes: 0 success, 1 runtime failure (database unreachable, data
 * directory locked, route not found), 2 usage error (unknown command, bad
 * flag or value), 130 or 143 a prune stopped by SIGINT or SIGTERM.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { HeraldError, InvalidArgumentError } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import { redact } from "../core/_redact.ts";
import { COMMON_HELP, COMMON_OPTIONS, readCommon } from "./_flags.ts";
import type { Values } from "./_flags.ts";
import type { Command, Io } from "./_command.ts";
import { enqueueCommand } from "./enqueue.ts";
import { routesCommand, showCommand, statsCommand } from "./inspect.ts";
import { cancelCommand, migrateCommand, pruneCommand, retryCommand } from "./change.ts";
import { runCommand } from "./run.ts";
import { guardUncaught, letClosedPipesGo } from "./_guard.ts";
import { demoCommand } from "./demo.ts";
import { destinationsCommand } from "./destinations.ts";
import { dashboardCommand } from "./dashboard.ts";

export type { Io } from "./_command.ts";

const COMMANDS: Readonly<Record<string, Command>> = {
  run: runCommand,
  demo: demoCommand,
  migrate: migrateCommand,
  enqueue: enqueueCommand,
  stats: statsCommand,
  routes: routesCommand,
  show: showCommand,
  retry: retryCommand,
  cancel: cancelCommand,
  prune: pruneCommand,
  destinations: destinationsCommand,
  dashboard: dashboardCommand,
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const list = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `herald ${VERSION}: a Postgres-backed notification dispatcher

Usage: herald [COMMAND] [options]      (COMMAND defaults to run)

Commands:
${list.join("\n")}

Run 'herald COMMAND --help' for a command's options.

${COMMON_HELP}

Without DATABASE_URL, Herald runs on an embedded Postgres (PGlite) in ${"./.herald/data"}:
one connection, so concurrency 1; for development and demos. Set DATABASE_URL for
real deployments.

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 130/143 prune stopped by SIGINT/SIGTERM.`;
}

/** Runs the program with `argv` (without the runtime and script); resolves with the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  const args = [...argv];
  const early = topLevel(args, io);
  if (early !== undefined) return early;
  const name = takeCommand(args) ?? "run";
  const command = COMMANDS[name];
  if (!command) {
    io.err(`herald: unknown command '${name.slice(0, 40)}'\nRun 'herald --help' for the commands.`);
    return 2;
  }
  const parsed = parse(name, command, args, io);
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  const secrets = [
    io.env["DATABASE_URL"],
    io.env["HERALD_LISTEN_URL"],
    typeof values["database-url"] === "string" ? values["database-url"] : "",
    typeof values["listen-url"] === "string" ? values["listen-url"] : "",
  ]
    .filter((s): s is string => typeof s === "string" && s.length > 0);
  let unguard = (): void => {};
  try {
    const common = readCommon(values, io.env);
    const unpipe = letClosedPipesGo();
    const unguardUncaught = guardUncaught(common.logger, secrets);
    unguard = () => {
      unguardUncaught();
      unpipe();
    };
    return await command.run(values, positionals, common, io);
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      io.err(`herald ${name}: ${redact(err.message, secrets)}`);
      return 2;
    }
    const code = err instanceof HeraldError ? ` [${err.code}]` : "";
    const message = err instanceof Error ? err.message : String(err);
    io.err(`herald ${name}: ${redact(message, secrets)}${code}`);
    return 1;
  } finally {
    unguard();
  }
}

/**
 * Removes and returns the command's name: the first argument that is neither
 * a flag nor a common flag's value, so common flags may come before it
 * (`herald --schema s stats`); `undefined` when there is none (run).
 */
function takeCommand(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return undefined;
    if (!arg.startsWith("-")) return args.splice(i, 1)[0];
    const option = COMMON_OPTIONS[arg.slice(2) as keyof typeof COMMON_OPTIONS];
    if (option?.type === "string") i++; // its value
  }
  return undefined;
}

/**
 * `--flag -1` as `--flag=-1`: a string flag's value may be a negative
 * number, which `parseArgs` would otherwise read as a short flag.
 */
function negativeValues(args: readonly string[], options: Record<string, { type: string }>) {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const option = arg.startsWith("--") && !arg.includes("=") ? options[arg.slice(2)] : undefined;
    if (option?.type === "string" && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** `--version`, `--help`, `help [COMMAND]`: answered before any command runs. */
function topLevel(args: readonly string[], io: Io): number | undefined {
  if (args[0] === "--version" || args[0] === "-V") {
    io.out(VERSION);
    return 0;
  }
  if (args[0] === "--help" || args[0] === "-h") {
    io.out(usage());
    return 0;
  }
  if (args[0] === "help") {
    const topic = args[1] === undefined ? undefined : COMMANDS[args[1]];
    io.out(topic ? commandHelp(topic) : usage());
    return 0;
  }
  return undefined;
}

/** The command's flags and arguments, or the exit code when they are wrong (or `--help`). */
function parse(
  name: string,
  command: Command,
  args: readonly string[],
  io: Io,
): { values: Values; positionals: string[] } | number {
  let values: Values;
  let positionals: string[];
  try {
    const options = { ...COMMON_OPTIONS, ...command.options };
    ({ values, positionals } = parseArgs({
      args: negativeValues(args, options),
      options,
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    io.err(
      `herald ${name}: ${(err as Error).message}\nRun 'herald ${name} --help' for its options.`,
    );
    return 2;
  }
  if (values["help"]) {
    io.out(commandHelp(command));
    return 0;
  }
  if (positionals.length > command.positionals) {
    io.err(
      `herald ${name}: unexpected argument '${positionals[command.positionals]?.slice(0, 40)}'`,
    );
    return 2;
  }
  return { values, positionals };
}

function commandHelp(command: Command): string {
  return `${command.summary}\n\nUsage: ${command.usage}\n\n${COMMON_HELP}`;
}

function defaultIo(): Io {
  return {
    env: process.env,
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    ...(process.stderr.isTTY
      ? {
        progress: {
          update: (text: string) => void process.stderr.write(`\r${text}\x1b[K`),
          end: () => void process.stderr.write("\n"),
        },
      }
      : {}),
  };
}
