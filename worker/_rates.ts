/**
 * The channels' own rate limits, checked when the worker is built.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import type { Channel } from "../channels/channel.ts";
import type { ChannelRate } from "../core/transaction.ts";

/** Each channel's `rateLimit`, checked: a bad one names the channel. */
export function ratesOf(channels: ReadonlyMap<string, Channel>): ChannelRate[] {
  const rates: ChannelRate[] = [];
  for (const [channel, c] of channels) {
    const limit = c.rateLimit;
    if (limit === undefined) continue;
    const { perSecond, burst } = limit;
    if (typeof perSecond !== "number" || !Number.isFinite(perSecond) || perSecond <= 0) {
      throw new InvalidArgumentError(
        `channels.${channel}.rateLimit.perSecond`,
        "must be a positive number",
        perSecond,
      );
    }
    if (!Number.isInteger(burst) || burst < 1) {
      throw new InvalidArgumentError(
        `channels.${channel}.rateLimit.burst`,
        "must be a positive integer",
        burst,
      );
    }
    rates.push({ channel, perSecond, burst });
  }
  return rates;
}
