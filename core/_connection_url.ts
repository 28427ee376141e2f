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
  // The driver takes the hosts after the first '@' (the URL standard, after
  // the last): with several hosts, an '@' in the password moves into a host.
  const hosts = authority.slice(authority.indexOf("@") + 1);
  if (hosts.includes("@") && hosts.includes(",")) {
    throw new InvalidArgumentError(field, `has several '@' before its hosts: ${ENCODE_HINT}`);
  }
  let parsed: URL;
  try {
    decodeURIComponent(authority);
    // As the driver parses it: several hosts (h1:5432,h2:5432) are read as the first.
    parsed = new URL(url.replace(hosts, hosts.split(",")[0]!));
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    throw new InvalidArgumentError(field, `is not a valid URL: ${ENCODE_HINT}`);
  }
  // An unencoded '/' or '?' in a password ends the authority early, and the
  // rest turns up as the database name (`pw@host/db`) or a query key, which
  // the server would echo back. A database named `a@b` alone is let be.
  const keys = [...parsed.searchParams.keys()];
  if (/@[^/]*[/:]/.test(parsed.pathname.slice(1)) || keys.some((k) => k.includes("@"))) {
    throw new InvalidArgumentError(field, `has an '@' after its host: ${ENCODE_HINT}`);
  }
}
