/**
 * Reading the fields a channel's default rendering needs from a route's
 * payload. A payload that lacks them cannot succeed on a retry, so the
 * failure is permanent.
 *
 * @module
 */
import { PermanentError } from "../errors.ts";
import type { Route } from "../route.ts";
import { redact } from "../_redact.ts";

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
