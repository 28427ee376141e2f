/**
 * The commands that change things: `herald migrate`, `retry`, `cancel` and
 * `prune`. None waits on a route a worker is sending: it is skipped and
 * counted.
 *
 * @module
 */
import process from "node:process";
import { InvalidArgumentError } from "../core/errors.ts";
import { checkPrune } from "../core/operator.ts";
import type { PrunableStatus, PruneOptions } from "../core/operator.ts";
import { numberFlag, parseDuration, parseTime } from "./_flags.ts";
import { checkRouteIds, openDatabase, withDatabase } from "./_command.ts";
import { Progress } from "./_progress.ts";
import { onStopSignals } from "./_signals.ts";
import type { StopSignal } from "./_signals.ts";
import type { Command, Io } from "./_command.ts";
import type { PostgresStore } from "../store.ts";

/** `herald migrate` */
export const migrateCommand: Command = {
  summary: "apply migrations and print the schema version",
  usage: "herald migrate [options]",
  options: {},
  positionals: 0,
  async run(values, _args, common, io) {
    const db = await openDatabase(common, io);
    try {
      const version = await db.store.migrate();
      io.out(
        values["json"]
          ? JSON.stringify({ schema: common.schema, version })
          : `schema "${common.schema}" is at version ${version}`,
      );
      return 0;
    } finally {
      await db.close();
    }
  },
};

/** `herald retry` */
export const retryCommand: Command = {
  summary: "make routes due now with a fresh budget (held if their destination is paused or open)",
  usage: `herald retry ROUTE_ID... [--force] [options]
herald retry --failed [--channel C] [--since TIME] [--dry-run] [options]

  --force          also retry routes already sent
  --failed         every failed or poisoned route (of --channel, updated since --since)
  --since TIME     ISO 8601 time, or a duration ago such as 1h
  --dry-run        with --failed: count what would be retried, change nothing`,
  options: {
    force: { type: "boolean" },
    failed: { type: "boolean" },
    channel: { type: "string" },
    since: { type: "string" },
    "dry-run": { type: "boolean" },
  },
  positionals: Infinity,
  run(values, args, common, io) {
    const failed = values["failed"] === true;
    if (failed === (args.length > 0)) {
      throw new InvalidArgumentError("ROUTE_ID", "give route ids or --failed (one of the two)");
    }
    for (const flag of ["channel", "since", "dry-run"]) {
      if (!failed && values[flag] !== undefined) {
        throw new InvalidArgumentError(`--${flag}`, "goes with --failed");
      }
    }
    checkRouteIds(args);
    const since = typeof values["since"] === "string"
      ? parseTime("--since", values["since"], "ago")
      : undefined;
    const dryRun = values["dry-run"] === true;
    return withDatabase(common, io, async ({ store }) => {
      const res = failed
        ? await store.retry({
          failed: true,
          ...(typeof values["channel"] === "string" ? { channel: values["channel"] } : {}),
          ...(since ? { since } : {}),
        }, { dryRun })
        : await store.retry({ ids: args }, { force: values["force"] === true });
      if (values["json"]) io.out(JSON.stringify({ ...res, dryRun }));
      else io.out(`${dryRun ? "would retry" : "retried"} ${res.changed} route(s)`);
      if (res.refusedSent > 0) {
        io.err(`herald: ${res.refusedSent} route(s) already sent: left alone (use --force)`);
      }
      if (res.skipped > 0) io.err(`herald: ${res.skipped} route(s) skipped (being sent right now)`);
      for (const id of res.notFound) io.err(`herald: no route ${id}`);
      return res.notFound.length > 0 ? 1 : 0;
    });
  },
};

/** `herald cancel` */
export const cancelCommand: Command = {
  summary: "cancel queued routes",
  usage: "herald cancel ROUTE_ID... [options]",
  options: {},
  positionals: Infinity,
  run(values, args, common, io) {
    if (args.length === 0) throw new InvalidArgumentError("ROUTE_ID", "is required");
    checkRouteIds(args);
    return withDatabase(common, io, async ({ store }) => {
      const res = await store.cancel(args);
      if (values["json"]) io.out(JSON.stringify(res));
      else io.out(`cancelled ${res.changed} route(s)`);
      if (res.skipped > 0) {
        io.err(`herald: ${res.skipped} route(s) skipped (not queued, or being sent right now)`);
      }
      for (const id of res.notFound) io.err(`herald: no route ${id}`);
      return res.notFound.length > 0 ? 1 : 0;
    });
  },
};

/** `herald prune` */
export const pruneCommand: Command = {
  summary: "delete finished routes older than a duration",
  usage: `herald prune --older-than DURATION [--status sent,failed,cancelled] [options]

  --older-than D   e.g. 30d, 12h (finished longer ago than this)
  --status LIST    which finished statuses (default all three); queued routes are never pruned
  --batch-size N   routes per batch, each one short transaction (default 1000)
  --duty-cycle F   share of the time spent deleting, above 0 to 1 (default 0.25: after each
                   batch, rest three times as long as it took, so workers keep the database)
  --dry-run        count what would be deleted, delete nothing

Ctrl-C (SIGINT) or SIGTERM stops it after the batch running, says how far it got and exits 130
(143); a second signal quits at once, and that batch is rolled back.`,
  options: {
    "older-than": { type: "string" },
    status: { type: "string" },
    "batch-size": { type: "string" },
    "duty-cycle": { type: "string" },
    "dry-run": { type: "boolean" },
  },
  positionals: 0,
  run(values, _args, common, io) {
    const olderThanMs = parseDuration("--older-than", values["older-than"] as string | undefined);
    const statuses = typeof values["status"] === "string"
      ? values["status"].split(",").map((s) => s.trim())
      : undefined;
    const batchSize = numberFlag("--batch-size", values["batch-size"] as string | undefined);
    const dutyCycle = numberFlag("--duty-cycle", values["duty-cycle"] as string | undefined);
    const dryRun = values["dry-run"] === true;
    const selection: PruneOptions = {
      olderThanMs,
      ...(statuses ? { statuses: statuses as PrunableStatus[] } : {}),
      ...(batchSize === undefined ? {} : { batchSize }),
      ...(dutyCycle === undefined ? {} : { dutyCycle }),
    };
    checkFlags(selection, values);
    return withDatabase(common, io, async ({ store }) => {
      const stop = stopBetweenBatches(io);
      try {
        // The count first, so progress can say how much is left.
        const due = await store.prune({ ...selection, dryRun: true });
        if (dryRun) {
          io.out(
            values["json"]
              ? JSON.stringify({ pruned: due, dryRun })
              : `would prune ${due} route(s)`,
          );
          return 0;
        }
        const total = await pruneWithProgress(
          store,
          { ...selection, signal: stop.signal },
          due,
          io,
        );
        const stoppedBy = stop.signal.aborted ? stop.signal.reason as StopSignal : undefined;
        if (values["json"]) {
          io.out(
            JSON.stringify({
              pruned: total,
              dryRun,
              // The count taken before it began, as the text form says "of N".
              ...(stoppedBy ? { of: due, stopped: stoppedBy } : {}),
            }),
          );
        } else if (stoppedBy) {
          io.out(
            `pruned ${total} of ${due} route(s), stopped by ${stoppedBy}; run it again to go on`,
          );
        } else {
          io.out(`pruned ${total} route(s)`);
        }
        return stoppedBy ? EXIT_ON[stoppedBy] : 0;
      } finally {
        stop.unwire();
      }
    });
  },
};

/**
 * The first SIGINT/SIGTERM aborts the returned signal (its reason: the
 * signal's name), which stops a prune after the batch running (it
 * commits); a second ends the process at once, and the database rolls that
 * batch back.
 */
function stopBetweenBatches(io: Io): { signal: AbortSignal; unwire(): void } {
  const stop = new AbortController();
  const unwire = onStopSignals((name, count) => {
    if (count > 1) process.exit(EXIT_ON[name]);
    io.err(`herald: ${name}: stopping after the batch running now (again to quit at once)`);
    stop.abort(name);
  });
  return { signal: stop.signal, unwire };
}

/** Runs the prune, keeping a terminal's progress line (or, in a log, a line every 5 s). */
async function pruneWithProgress(
  store: PostgresStore,
  options: PruneOptions,
  due: number,
  io: Io,
): Promise<number> {
  const progress = new Progress(io, "deleted", due);
  let logged = performance.now();
  try {
    return await store.prune({
      ...options,
      onProgress: (n) => {
        progress.update(n);
        const now = performance.now();
        if (!progress.live && now - logged >= 5_000) {
          logged = now;
          io.err(`herald: deleted ${n} of ${due} route(s) so far`);
        }
      },
    });
  } finally {
    progress.done();
  }
}

/** The exit code of a command a signal stopped: 128 and the signal's number, as shells report it. */
const EXIT_ON: Readonly<Record<StopSignal, number>> = { SIGINT: 130, SIGTERM: 143 };

/** The flag behind each of `PruneOptions`' fields, for errors that name what the operator typed. */
const PRUNE_FLAGS: Readonly<Record<string, string>> = {
  olderThanMs: "--older-than",
  statuses: "--status",
  batchSize: "--batch-size",
  dutyCycle: "--duty-cycle",
};

/** Checks `options` before connecting; an error names the flag, with the value as typed. */
function checkFlags(options: PruneOptions, values: Record<string, unknown>): void {
  try {
    checkPrune(options);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError) || PRUNE_FLAGS[err.field] === undefined) throw err;
    const flag = PRUNE_FLAGS[err.field]!;
    throw new InvalidArgumentError(flag, err.problem, values[flag.slice(2)]);
  }
}
