/**
 * The `log` channel prints one line per route instead of delivering it. For
 * development and demos; the destination is only a label.
 *
 * @module
 */
import type { Channel, SendContext } from "./channel.ts";
import type { Route } from "../core/route.ts";
import { refuseUnknownOptions } from "./_options.ts";

/** Options of {@link logChannel}. */
export interface LogChannelOptions {
  /** Where lines go; defaults to `console.log`. */
  readonly write?: (line: string) => void;
}

/**
 * Creates a channel that writes `{"channel":"log","route":…,"kind":…,"to":…,"payload":…}`
 * lines. The destination is printed, so keep secrets out of it.
 *
 * @example
 * ```ts
 * import { logChannel } from "./log.ts";
 * const channels = { log: logChannel() };
 * ```
 */
export function logChannel(options: LogChannelOptions = {}): Channel {
  refuseUnknownOptions<LogChannelOptions>(options, { write: true }, "logChannel");
  const write = options.write ?? ((line: string) => console.log(line));
  return {
    send(route: Route, ctx: SendContext): Promise<void> {
      write(JSON.stringify({
        channel: "log",
        route: route.id,
        attempt: ctx.attempt,
        kind: route.kind,
        to: route.destination,
        payload: route.payload,
      }));
      return Promise.resolve();
    },
  };
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../core/errors.ts";
export type { JsonValue, Route } from "../core/route.ts";
export type { Channel, SendContext } from "./channel.ts";
