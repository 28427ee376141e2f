/**
 * The destination guard for channels that POST to a URL taken from a route
 * (webhook, Slack, Discord, Teams). Routes come from application data, so
 * without this guard anyone who can enqueue a notification could make the
 * worker call internal services (SSRF).
 *
 * Known limitation (DNS rebinding): the host is resolved here and then again
 * by `fetch`, which cannot be pinned to an address with web-standard APIs. A
 * hostile DNS server can answer a public address first and a private one
 * second. Run the worker where egress to private ranges is firewalled if that
 * matters to you.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { HeraldError, InvalidArgumentError, PermanentError } from "../core/errors.ts";
import { redactUrl } from "../core/_redact.ts";
import { formatIp, inRange, type IpBytes, nonGlobalClass, parseCidr, parseIp } from "./_ip.ts";
import { raceAbort } from "../core/_async.ts";
import type { AddressGuardOptions } from "./options.ts";

/** A prepared guard: parse-and-check a destination URL before each send. */
export interface AddressGuard {
  /** Parses `destination`, then checks its host; throws a `PermanentError` on refusal. */
  check(destination: string, channel: string, signal: AbortSignal): Promise<URL>;
}

/**
 * Builds a guard from `options`, validating the allowlists once so that a
 * typo fails at start-up, not on the first send.
 */
export function addressGuard(
  options: AddressGuardOptions,
  field = "allowAddresses",
): AddressGuard {
  const hosts = new Set((options.allowHosts ?? []).map(_normaliseHost));
  const ranges = (options.allowAddresses ?? []).map((text) => {
    const range = parseCidr(text);
    if (range === undefined) {
      throw new InvalidArgumentError(field, "each entry must be an IP address or CIDR range", text);
    }
    return range;
  });
  const resolve = options.resolve ?? _systemResolve;
  const httpsOnly = options.httpsOnly ?? false;
  const allowed = (ip: IpBytes): boolean => ranges.some((r) => inRange(ip, r.net, r.bits));

  return {
    async check(destination: string, channel: string, signal: AbortSignal): Promise<URL> {
      const url = parseDestinationUrl(destination, channel, httpsOnly);
      const host = _normaliseHost(url.hostname);
      if (hosts.has(host)) return url;
      const literal = parseIp(host);
      if (literal !== undefined) {
        _refuseIfSpecial(literal, allowed, channel, "is");
        return url;
      }
      let addresses: readonly string[];
      try {
        // `lookup` takes no signal, so stop waiting for it when the send is aborted.
        addresses = await raceAbort(resolve(host), signal);
      } catch (err) {
        if (signal.aborted) throw err;
        // Resolution failures are usually passing (a DNS outage), so retry.
        throw new HeraldError(
          "HERALD_NETWORK",
          `${channel}: could not resolve the destination host ${JSON.stringify(host)}`,
        );
      }
      if (addresses.length === 0) {
        throw new HeraldError(
          "HERALD_NETWORK",
          `${channel}: the destination host has no addresses`,
        );
      }
      for (const text of addresses) {
        const ip = parseIp(text);
        if (ip === undefined) {
          throw new PermanentError(`${channel}: the resolver returned a malformed address`);
        }
        _refuseIfSpecial(ip, allowed, channel, "resolves to");
      }
      return url;
    },
  };
}

/**
 * Parses a destination URL: must be absolute `https:` (or `http:` unless
 * `httpsOnly`) without user info. Messages never echo the URL itself, which
 * may carry a token (Slack and Discord webhook URLs do).
 */
export function parseDestinationUrl(destination: string, channel: string, httpsOnly: boolean): URL {
  let url: URL;
  try {
    url = new URL(destination);
  } catch {
    throw new PermanentError(`${channel}: the destination is not a valid absolute URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new PermanentError(
      `${channel}: the destination scheme ${JSON.stringify(url.protocol)} is not http(s)`,
    );
  }
  if (httpsOnly && url.protocol !== "https:") {
    throw new PermanentError(
      `${channel}: the destination ${redactUrl(url.href)} is not https (https-only mode)`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new PermanentError(`${channel}: the destination URL must not contain credentials`);
  }
  return url;
}

function _refuseIfSpecial(
  ip: IpBytes,
  allowed: (ip: IpBytes) => boolean,
  channel: string,
  verb: string,
): void {
  if (allowed(ip)) return;
  const kind = nonGlobalClass(ip);
  if (kind === undefined) return;
  throw new PermanentError(
    `${channel}: refused destination: host ${verb} a ${kind} address (${formatIp(ip)}); ` +
      `add it to allowHosts or allowAddresses to permit it`,
  );
}

function _normaliseHost(host: string): string {
  const lower = host.toLowerCase();
  const bare = lower.startsWith("[") && lower.endsWith("]") ? lower.slice(1, -1) : lower;
  // Compare IP literals in one spelling so "::1" and "0:0::1" match.
  const ip = parseIp(bare);
  return ip === undefined ? bare.replace(/\.$/, "") : formatIp(ip);
}

async function _systemResolve(hostname: string): Promise<readonly string[]> {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}
