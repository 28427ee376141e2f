/**
 * How long a provider asked us to wait: `Retry-After` (delay seconds or an
 * HTTP-date), `X-RateLimit-Reset` (epoch seconds) and a body's `retry_after`,
 * each turned into milliseconds and capped. HTTP-dates are parsed per RFC 9110
 * §5.6.7 (the IMF-fixdate and the two obsolete forms a recipient must still
 * accept) and nothing else: `Date.parse` accepts almost anything ("2001",
 * "1.5") and made `Retry-After: 1.5` a date in 2001.
 *
 * @module
 */

/**
 * No delay a provider asks for (`Retry-After`, `X-RateLimit-Reset`, a body's
 * `retry_after`) exceeds 30 days, so a far-future date cannot produce an
 * interval Postgres refuses. It is longer than `setTimeout` accepts
 * (2^31 - 1 ms, about 24.8 days): whoever arms a timer with it clamps it.
 */
export const MAX_RETRY_DELAY_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Parses a `Retry-After` value into a delay in milliseconds from `now`:
 * delay seconds (decimals accepted, `1.5`) or an HTTP-date (IMF-fixdate or
 * one of the two obsolete forms). A past date is 0; every delay is capped at
 * {@link MAX_RETRY_DELAY_MS}. `undefined` when absent or anything else.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^[0-9]+(?:\.[0-9]+)?$/.test(trimmed)) return delayFromSeconds(Number(trimmed));
  const at = parseHttpDate(trimmed, now);
  return at === undefined ? undefined : _capped(at - now);
}

/**
 * Parses an `X-RateLimit-Reset` value given as Unix epoch seconds (SendGrid)
 * into a delay from `now`, like {@link parseRetryAfter}: 0 when past, capped,
 * `undefined` when absent or malformed.
 */
export function parseRateLimitReset(value: string | null, now: number): number | undefined {
  const trimmed = value?.trim() ?? "";
  if (!/^[0-9]+(?:\.[0-9]+)?$/.test(trimmed)) return undefined;
  return _capped(Number(trimmed) * 1000 - now);
}

/**
 * A delay in seconds from a provider's answer body (Discord's and Telegram's
 * `retry_after`) in milliseconds, capped; `undefined` unless a number >= 0.
 */
export function delayFromSeconds(seconds: unknown): number | undefined {
  if (typeof seconds !== "number" || Number.isNaN(seconds) || seconds < 0) return undefined;
  return _capped(Math.ceil(seconds * 1000));
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTH = MONTHS.join("|");
const DAY = "Mon|Tue|Wed|Thu|Fri|Sat|Sun";
const DAY_LONG = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday";
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";

/** `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^(?:${DAY}), (\\d{2}) (${MONTH}) (\\d{4}) ${TIME} GMT$`);
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete RFC 850 form) */
const RFC850_DATE = new RegExp(`^(?:${DAY_LONG}), (\\d{2})-(${MONTH})-(\\d{2}) ${TIME} GMT$`);
/** `Sun Nov  6 08:49:37 1994` (obsolete ANSI C asctime() form) */
const ASCTIME_DATE = new RegExp(`^(?:${DAY}) (${MONTH}) ((?:\\d| )\\d) ${TIME} (\\d{4})$`);

/**
 * Parses an HTTP-date into epoch milliseconds; `undefined` for anything that
 * is not exactly one of the three forms, or names a day that does not exist
 * (31 Feb). `now` (epoch ms) places the two-digit year of the RFC 850 form.
 */
export function parseHttpDate(text: string, now: number): number | undefined {
  let m = IMF_FIXDATE.exec(text);
  if (m !== null) return _utc(m[3], m[2], m[1], m.slice(4));
  m = RFC850_DATE.exec(text);
  if (m !== null) return _utc(_fullYear(Number(m[3]), now), m[2], m[1], m.slice(4));
  m = ASCTIME_DATE.exec(text);
  if (m !== null) return _utc(m[6], m[1], m[2], m.slice(3, 6));
  return undefined;
}

/**
 * RFC 9110: a two-digit year that would lie more than 50 years in the future
 * is the most recent past year with the same last two digits.
 */
function _fullYear(twoDigits: number, now: number): number {
  const current = new Date(now).getUTCFullYear();
  const year = current - (current % 100) + twoDigits;
  return year > current + 50 ? year - 100 : year;
}

function _utc(
  yearText: string | number | undefined,
  monthName: string | undefined,
  dayText: string | undefined,
  time: readonly (string | undefined)[],
): number | undefined {
  const year = Number(yearText);
  const month = MONTHS.indexOf(monthName ?? "");
  const day = Number((dayText ?? "").trim());
  const [hour, minute, second] = time.map(Number);
  if (hour === undefined || minute === undefined || second === undefined) return undefined;
  // 60 is a leap second; the date then rolls over into the next minute.
  if (hour > 23 || minute > 59 || second > 60 || month < 0) return undefined;
  // setUTCFullYear, not Date.UTC, which reads the year 0094 as 1994.
  const midnight = new Date(0);
  midnight.setUTCFullYear(year, month, day);
  // Dates roll 31 Feb over to 2 or 3 Mar: refuse what had to be moved.
  if (midnight.getUTCDate() !== day || midnight.getUTCMonth() !== month) return undefined;
  return midnight.getTime() + ((hour * 60 + minute) * 60 + second) * 1000;
}

function _capped(ms: number): number {
  return Math.min(Math.max(ms, 0), MAX_RETRY_DELAY_MS);
}
