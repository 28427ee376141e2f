/**
 * Validation of operator configuration shared by the provider channels.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import type { FieldNames } from "../core/_fields.ts";
import type { AddressGuardOptions, HttpOptions, WebhookUrlChannelOptions } from "./options.ts";

export { refuseUnknownOptions } from "../core/_fields.ts";

/** The options every HTTP channel takes. */
export const HTTP_OPTIONS: FieldNames<HttpOptions> = { fetch: true, timeoutMs: true, now: true };

/** The options of the channels that post to a URL they are given. */
export const GUARD_OPTIONS: FieldNames<AddressGuardOptions> = {
  allowHosts: true,
  allowAddresses: true,
  httpsOnly: true,
  resolve: true,
};

/** Slack's and Discord's options; Teams' are these and its bearer token's. */
export const WEBHOOK_URL_OPTIONS: FieldNames<WebhookUrlChannelOptions> = {
  ...HTTP_OPTIONS,
  ...GUARD_OPTIONS,
  template: true,
};

/**
 * Checks a provider base URL (`https://api.example.com`, or a local test
 * server) and returns it without a trailing slash. Throws
 * `InvalidArgumentError` naming `field`.
 */
export function baseUrl(value: string, field: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not echoed: a malformed URL may still carry a key.
    throw new InvalidArgumentError(field, "must be an absolute http(s) URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new InvalidArgumentError(field, "must be an absolute http(s) URL", url.protocol);
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw new InvalidArgumentError(field, "must not contain credentials, a query or a fragment");
  }
  return url.href.replace(/\/+$/, "");
}

/** Checks that a required string option is present and non-empty. */
export function requireString(value: unknown, field: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new InvalidArgumentError(field, "is required");
  }
  return value;
}

/**
 * Checks a credential that goes into a header: printable ASCII with no
 * space, as providers issue them. One pasted with a line break would
 * otherwise fail every send as a network error, retried for ever.
 */
export function requireToken(value: unknown, field: string): string {
  const token = requireString(value, field);
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new InvalidArgumentError(field, "must be printable ASCII with no spaces or line breaks");
  }
  return token;
}
