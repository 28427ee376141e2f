/**
 * IP literal parsing and the special-purpose address ranges (IANA's IPv4 and
 * IPv6 special-purpose registries) that a notification must never reach
 * unless an operator allows them: an outgoing webhook is an SSRF primitive.
 *
 * @module
 */

/** An address as bytes: 4 for IPv4, 16 for IPv6. */
export type IpBytes = Uint8Array;

/** One range: a prefix of `bits` bits and the class name it reports. */
interface _Range {
  readonly net: IpBytes;
  readonly bits: number;
  readonly label: string;
}

/** Parses a strict dotted quad (`1.2.3.4`); `undefined` for anything else. */
export function parseIpv4(text: string): IpBytes | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? "";
    // Leading zeros are refused: some stacks read them as octal.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/**
 * Parses an IPv6 literal, with `::` compression, a trailing dotted quad and
 * an optional zone (`fe80::1%eth0`, the zone is ignored); brackets allowed.
 */
export function parseIpv6(input: string): IpBytes | undefined {
  let text = input.startsWith("[") && input.endsWith("]") ? input.slice(1, -1) : input;
  const zone = text.indexOf("%");
  if (zone !== -1) text = text.slice(0, zone);
  if (text === "" || !text.includes(":")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = _groups(halves[0] ?? "");
  const tail = halves.length === 2 ? _groups(halves[1] ?? "") : [];
  if (head === undefined || tail === undefined) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 2 ? total > 7 : total !== 8) return undefined;
  const words = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** Parses either family; `undefined` when `text` is not an IP literal. */
export function parseIp(text: string): IpBytes | undefined {
  return parseIpv4(text) ?? parseIpv6(text);
}

/**
 * Parses `addr` or `addr/bits` into a range; `undefined` when malformed.
 * Used for the `allowAddresses` option.
 */
export function parseCidr(text: string): { net: IpBytes; bits: number } | undefined {
  const [addr = "", bitsText, ...rest] = text.trim().split("/");
  if (rest.length > 0) return undefined;
  const net = parseIp(addr);
  if (net === undefined) return undefined;
  const max = net.length * 8;
  if (bitsText === undefined) return { net, bits: max };
  if (!/^[0-9]{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  return bits <= max ? { net, bits } : undefined;
}

/** Whether `ip` lies in `net/bits` (same family only). */
export function inRange(ip: IpBytes, net: IpBytes, bits: number): boolean {
  if (ip.length !== net.length) return false;
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3;
    const mask = 0x80 >> (i & 7);
    if (((ip[byte] ?? 0) & mask) !== ((net[byte] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Names the special-purpose class `ip` belongs to ("loopback", "private",
 * ...), or returns `undefined` for an ordinary global unicast address.
 * IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by
 * the address they embed, so `::ffff:127.0.0.1` is loopback.
 */
export function nonGlobalClass(ip: IpBytes): string | undefined {
  if (ip.length === 4) return _match(ip, _V4);
  const embedded = _embeddedIpv4(ip);
  if (embedded !== undefined) {
    const inner = nonGlobalClass(embedded.v4);
    return inner === undefined ? undefined : `${inner} (${embedded.form})`;
  }
  const special = _match(ip, _V6);
  if (special !== undefined) return special;
  // Only 2000::/3 is allocated as global unicast; everything else is reserved.
  return ((ip[0] ?? 0) & 0xe0) === 0x20 ? undefined : "reserved";
}

/** Formats bytes back into a canonical-enough literal for messages. */
export function formatIp(ip: IpBytes): string {
  if (ip.length === 4) return ip.join(".");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((ip[i] ?? 0) << 8) | (ip[i + 1] ?? 0));
  // Compress the longest run of two or more zero words into "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(":");
  if (best === -1) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

function _groups(text: string): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? "";
    if (i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      continue;
    }
    if (!/^[0-9a-f]{1,4}$/i.test(part)) return undefined;
    out.push(parseInt(part, 16));
  }
  return out;
}

function _embeddedIpv4(ip: IpBytes): { v4: IpBytes; form: string } | undefined {
  if (inRange(ip, _MAPPED, 96)) return { v4: ip.slice(12), form: "IPv4-mapped" };
  if (inRange(ip, _NAT64, 96)) return { v4: ip.slice(12), form: "NAT64" };
  if (inRange(ip, _SIX_TO_FOUR, 16)) return { v4: ip.slice(2, 6), form: "6to4" };
  return undefined;
}

function _match(ip: IpBytes, table: readonly _Range[]): string | undefined {
  return table.find((r) => inRange(ip, r.net, r.bits))?.label;
}

function _r(cidr: string, label: string): _Range {
  const parsed = parseCidr(cidr);
  if (parsed === undefined) throw new Error(`bad built-in range ${cidr}`);
  return { net: parsed.net, bits: parsed.bits, label };
}

const _MAPPED = parseIpv6("::ffff:0:0") as IpBytes;
const _NAT64 = parseIpv6("64:ff9b::") as IpBytes;
const _SIX_TO_FOUR = parseIpv6("2002::") as IpBytes;

// Order matters where ranges nest: the narrower, more telling label first.
const _V4: readonly _Range[] = [
  _r("0.0.0.0/32", "unspecified"),
  _r("0.0.0.0/8", "this-network"),
  _r("10.0.0.0/8", "private"),
  _r("100.64.0.0/10", "carrier-grade NAT"),
  _r("127.0.0.0/8", "loopback"),
  _r("169.254.0.0/16", "link-local"),
  _r("172.16.0.0/12", "private"),
  _r("192.0.0.0/24", "IETF protocol assignment"),
  _r("192.0.2.0/24", "documentation"),
  _r("192.88.99.0/24", "reserved (6to4 relay)"),
  _r("192.168.0.0/16", "private"),
  _r("198.18.0.0/15", "benchmarking"),
  _r("198.51.100.0/24", "documentation"),
  _r("203.0.113.0/24", "documentation"),
  _r("224.0.0.0/4", "multicast"),
  _r("255.255.255.255/32", "broadcast"),
  _r("240.0.0.0/4", "reserved"),
];

const _V6: readonly _Range[] = [
  _r("::/128", "unspecified"),
  _r("::1/128", "loopback"),
  _r("::/96", "reserved (IPv4-compatible)"),
  _r("64:ff9b:1::/48", "private (local-use NAT64)"),
  _r("100::/64", "reserved (discard-only)"),
  _r("2001:db8::/32", "documentation"),
  _r("2001::/23", "IETF protocol assignment"),
  _r("3fff::/20", "documentation"),
  _r("5f00::/16", "reserved (SRv6)"),
  _r("fc00::/7", "unique-local"),
  _r("fe80::/10", "link-local"),
  _r("fec0::/10", "site-local"),
  _r("ff00::/8", "multicast"),
];
