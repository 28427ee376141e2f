/**
 * Checks a Postgres connection URL before the driver reads it. The driver
 * takes what it cannot parse as best it can: `postgres:/user:pw@host/db` (one
 * slash) becomes a database named `user:pw@host/db`, password and all, which
 * the server then echoes back in its error (and writes to its log). So a URL
 * is refused here, with the field named and never its value.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";

const SCHEME = /^postgres(?:ql)?:\/\//i;
const ENCODE_HINT =
  "percent-encode '/', '@', '?', '#' and '%' in the user name and password (%2F, %40, %3F, %23, %25)";

/**
 * Throws an {@link InvalidArgumentError} naming `field` unless `url` is a
 * `postgres://` or `postgresql://` URL the driver reads as written. The
 * message never holds the URL: it may carry a password.
 */
export function checkConnectionUrl(field: string, url: string): void {
  if (!SCHEME.test(url)) {
    throw new InvalidArgumentError(field, "must start with postgres:// or postgresql://");
  }
  const rest = url.slice(url.indexOf("://") + 3);
  const authority = rest.split(/[?/]/)[0]!;
  const after = rest.slice(authority.length);
  // An unencoded '/' or '?' in a password ends the authority early, and the
  // rest of it turns up in the path or query, '@' and all.
  const beforeValue = after.split("=")[0]!;
  if (beforeValue.includes("@")) {
    throw new InvalidArgumentError(field, `has an '@' after its host: ${ENCODE_HINT}`);
  }
  const hosts = authority.slice(authority.lastIndexOf("@") + 1);
  try {
    decodeURIComponent(authority);
    // As the driver parses it: several hosts (h1:5432,h2:5432) are read as the first.
    const parsed = new URL(url.replace(hosts, hosts.split(",")[0]!));
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    throw new InvalidArgumentError(field, `is not a valid URL: ${ENCODE_HINT}`);
  }
}
