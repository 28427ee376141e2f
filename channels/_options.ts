/**
 * Validation of operator configuration shared by the provider channels.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";

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
