/**
 * Reading the fields a channel's default rendering needs from a route's
 * payload. A payload that lacks them cannot succeed on a retry, so the
 * failure is permanent.
 *
 * @module
 */
import { PermanentError } from "../core/errors.ts";
import type { Route } from "../core/route.ts";
import { redact } from "../core/_redact.ts";

/** `payload[field]` when the payload is an object and the field a string. */
export function stringField(route: Route, field: string): string | undefined {
  const payload = route.payload;
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) return undefined;
  const value = (payload as { readonly [key: string]: unknown })[field];
  return typeof value === "string" ? value : undefined;
}

/** `payload.text`, or a `PermanentError` saying what is missing and how to fix it. */
export function requireText(route: Route, channel: string): string {
  const text = stringField(route, "text");
  if (text === undefined || text === "") {
    throw new PermanentError(
      `${channel}: the payload of kind ${JSON.stringify(route.kind)} has no string 'text' ` +
        `and the channel has no template`,
    );
  }
  return text;
}

/** Runs a user template, turning its exceptions into permanent failures. */
export function applyTemplate<T>(template: (route: Route) => T, route: Route, channel: string): T {
  try {
    return template(route);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new PermanentError(`${channel}: the template failed: ${redact(why.slice(0, 200))}`);
  }
}

/**
 * `text` cut to at most `max` code points, the last being "…" when cut. Counts
 * and cuts by code points, not UTF-16 units, so a character outside the BMP
 * (an emoji) is never split into a lone surrogate, and a provider that counts
 * characters (Discord's 2000) gets no more than it allows.
 */
export function truncate(text: string, max: number): string {
  // Fewer UTF-16 units than the limit means fewer code points too.
  if (text.length <= max) return text;
  let points = 0;
  let keep = 0; // UTF-16 length of the first max - 1 code points
  for (const char of text) {
    points++;
    if (points > max) return `${text.slice(0, keep)}…`;
    if (points < max) keep += char.length;
  }
  return text;
}
