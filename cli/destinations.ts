/**
 * `herald destinations`: the destinations' health, and the operator's
 * controls (pause, resume, disable, enable, set). A destination is named by
 * its channel and its key, or by any route address of it (a URL reduces to
 * its destination; the secret in it is never printed).
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { CHANNEL_WIDE, destinationKey, isSingleUrlKey } from "../core/destination_key.ts";
import type {
  DestinationAction,
  DestinationInfo,
  DestinationSettings,
} from "../core/destination.ts";
import { CHANNEL_NAME } from "../core/_validate.ts";
import { redactDestination } from "../core/_redact.ts";
import { defined, numberFlag } from "./_flags.ts";
import type { Values } from "./_flags.ts";
import { withDatabase } from "./_command.ts";
import type { Command, Io } from "./_command.ts";
import { formatDuration, formatTime, table } from "./_format.ts";

const ACTIONS: readonly DestinationAction[] = ["pause", "resume", "disable", "enable"];

/** `herald destinations` */
export const destinationsCommand: Command = {
  summary: "destinations' health (breaker state, in flight, failures, queue) and their controls",
  usage: `herald destinations [list] [--json] [options]
herald destinations show CHANNEL DESTINATION [--json]
herald destinations pause|disable CHANNEL DESTINATION [--reason TEXT]
herald destinations resume|enable CHANNEL DESTINATION
herald destinations set CHANNEL DESTINATION [--max-in-flight N] [--rate R] [--burst B]
                        [--failure-threshold N] [--cooldown MS]
                        (each also takes 'default': back to the worker's or channel's)

  DESTINATION   a key as 'list' prints it (an origin such as https://api.example.com, or *
                for a channel's one provider), or any route address of it: a URL is reduced
                to its destination
  pause         hold its queued routes (they stay queued and spend nothing) until resume
  disable       the same, as Herald does itself after failing for days (and on HTTP 410
                from a webhook on a shared host such as hooks.slack.com)
  resume, enable  release its held routes, each due when it was, and close its breaker
  --rate R      sends a second across the fleet (0.5: one every two seconds); a route over
                the limit waits, spending nothing. Slack webhooks default to 1, a Telegram
                bot to 30, a Twilio number to 1
  --burst B     sends allowed back to back within the rate (default 1)`,
  options: {
    json: { type: "boolean" },
    reason: { type: "string" },
    "max-in-flight": { type: "string" },
    "failure-threshold": { type: "string" },
    cooldown: { type: "string" },
    rate: { type: "string" },
    burst: { type: "string" },
  },
  positionals: 3,
  run(values, args, common, io) {
    const [verb = "list", channel, destination] = args;
    if (verb === "list") {
      if (args.length > 1) throw new InvalidArgumentError("list", "takes no arguments");
      return withDatabase(common, io, async ({ store }) => {
        const all = await store.destinations();
        if (values["json"]) { for (const d of all) io.out(JSON.stringify(d)); }
        else io.out(all.length === 0 ? "no destinations yet" : listTable(all));
        return 0;
      });
    }
    const verbs = ["show", "set", ...ACTIONS];
    if (!verbs.includes(verb)) {
      throw new InvalidArgumentError("COMMAND", `must be list or one of ${verbs.join(", ")}`, verb);
    }
    const { name, key } = named(channel, destination);
    const ahead = (store: Known) => noteIfUnknown(store, io, name, key, destination!);
    if (verb === "set") {
      const settings = readSettings(values);
      return withDatabase(common, io, async ({ store }) => {
        await ahead(store);
        await store.configureDestination(name, key, settings);
        io.out(
          values["json"]
            ? JSON.stringify({ channel: name, destination: key, updated: true })
            : `${name} ${key}: settings updated`,
        );
        return 0;
      });
    }
    if (verb !== "show") {
      const reason = typeof values["reason"] === "string" ? values["reason"] : undefined;
      return withDatabase(common, io, async ({ store }) => {
        const action = verb as DestinationAction;
        // Pausing ahead of the first route is fine; resuming a name that matches nothing is a typo.
        if ((action === "resume" || action === "enable") && !(await store.destination(name, key))) {
          io.err(`herald: no destination ${name} ${key} (see 'herald destinations')`);
          return 1;
        }
        if (action === "pause" || action === "disable") await ahead(store);
        const state = await store.setDestinationState(name, key, action, reason);
        io.out(
          values["json"]
            ? JSON.stringify({ channel: name, destination: key, state })
            : `${name} ${key}: ${state}`,
        );
        return 0;
      });
    }
    return withDatabase(common, io, async ({ store }) => {
      const d = await store.destination(name, key);
      if (!d) {
        io.err(`herald: no destination ${name} ${key} (no row and no queued route)`);
        return 1;
      }
      io.out(values["json"] ? JSON.stringify(d) : detail(d));
      return 0;
    });
  },
};

/** What {@link noteIfUnknown} reads of a store. */
interface Known {
  destination(channel: string, key: string): Promise<unknown>;
}

/** Says so when a change names a destination no route has gone to: often a typo. */
async function noteIfUnknown(
  store: Known,
  io: Io,
  name: string,
  key: string,
  given: string,
): Promise<void> {
  if (await store.destination(name, key)) return;
  const wide = key === CHANNEL_WIDE && given !== CHANNEL_WIDE
    ? ` ('${redactDestination(given)}' is not an http(s) URL, so it names the channel-wide ` +
      "destination '*')"
    : "";
  io.err(
    `herald: note: no route has gone to ${name} ${key} yet${wide}; set ahead of its first ` +
      "route (see 'herald destinations' for the names in use)",
  );
}

/** The channel and the destination key the arguments name. */
function named(channel: string | undefined, destination: string | undefined) {
  if (channel === undefined || !CHANNEL_NAME.test(channel)) {
    throw new InvalidArgumentError("CHANNEL", "a channel name is required", channel);
  }
  if (destination === undefined || destination === "") {
    throw new InvalidArgumentError("DESTINATION", "is required (see 'herald destinations')");
  }
  const isKey = destination === CHANNEL_WIDE || isSingleUrlKey(destination);
  return { name: channel, key: isKey ? destination : destinationKey(destination) };
}

function readSettings(values: Values): DestinationSettings {
  const setting = (flag: string, fraction = false): number | null | undefined => {
    const raw = values[flag];
    if (typeof raw !== "string") return undefined;
    if (raw === "default") return null;
    let n: number | undefined;
    try {
      n = numberFlag(`--${flag}`, raw);
    } catch {
      n = undefined; // said below, with the unit
    }
    if (n === undefined || !(n > 0) || (!fraction && !Number.isInteger(n))) {
      const what = fraction
        ? "a positive number"
        : `a positive integer${flag === "cooldown" ? " of milliseconds" : ""}`;
      throw new InvalidArgumentError(`--${flag}`, `must be ${what} or 'default'`, raw);
    }
    return n;
  };
  const settings = {
    maxInFlight: setting("max-in-flight"),
    failureThreshold: setting("failure-threshold"),
    cooldownMs: setting("cooldown"),
    ratePerSecond: setting("rate", true),
    burst: setting("burst"),
  };
  const given = defined(settings);
  if (Object.keys(given).length === 0) {
    throw new InvalidArgumentError(
      "set",
      "give at least one of --max-in-flight, --rate, --burst, --failure-threshold, --cooldown",
    );
  }
  return given;
}

function listTable(all: readonly DestinationInfo[]): string {
  const now = Date.now();
  return table(
    [
      "channel",
      "destination",
      "state",
      "in flight",
      "failures",
      "1h fail rate",
      "queued",
      "deferred",
      "oldest due",
    ],
    all.map((d) => [
      d.channel,
      d.key,
      d.state === "open" && d.openUntil
        ? `open ${formatDuration(d.openUntil.getTime() - now)}`
        : d.state,
      d.inFlight === null
        ? "-"
        : `${d.inFlight}${d.settings.maxInFlight ? `/${d.settings.maxInFlight}` : ""}`,
      String(d.consecutiveFailures),
      d.attemptsLastHour === 0
        ? "-"
        : `${
          Math.round((100 * d.failuresLastHour) / d.attemptsLastHour)
        }% of ${d.attemptsLastHour}`,
      String(d.queued),
      String(d.deferred),
      d.oldestDueAt ? formatDuration(now - d.oldestDueAt.getTime()) : "-",
    ]),
  );
}

function detail(d: DestinationInfo): string {
  const setting = (
    v: number | null,
    unit = "",
  ): string => (v === null ? "worker's default" : `${v}${unit}`);
  return [
    `channel:              ${d.channel}`,
    `destination:          ${d.key}`,
    `state:                ${d.state}${d.reason ? ` (${d.reason})` : ""}`,
    `open until:           ${formatTime(d.openUntil)}`,
    `consecutive failures: ${d.consecutiveFailures} (trips in a row: ${d.trips})`,
    `failing since:        ${formatTime(d.failingSince)}`,
    `last failure:         ${formatTime(d.lastFailureAt)}${d.lastError ? `: ${d.lastError}` : ""}`,
    `last success:         ${formatTime(d.lastSuccessAt)}`,
    `in flight:            ${d.inFlight ?? "- (no cap)"}`,
    `last hour:            ${d.attemptsLastHour} attempt(s), ${d.failuresLastHour} failed`,
    `queued:               ${d.queued}, oldest due ${formatTime(d.oldestDueAt)}`,
    `deferred by its rate: ${d.deferred} due route(s) waiting for a token`,
    `max in flight:        ${setting(d.settings.maxInFlight)}`,
    // The rate and burst default to the channel's own limit (none, or its provider's).
    `rate:                 ${
      d.settings.ratePerSecond === null ? "the channel's" : `${d.settings.ratePerSecond}/s`
    }, burst ${d.settings.burst ?? "the channel's (1 when it sets none)"}`,
    `failure threshold:    ${setting(d.settings.failureThreshold)}`,
    `cooldown:             ${setting(d.settings.cooldownMs, " ms")}`,
  ].join("\n");
}
