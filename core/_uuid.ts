/**
 * Time-ordered identifiers (UUID version 7, RFC 9562): 48 bits of Unix
 * milliseconds, then random bits. Rows enqueued together sit together in
 * the primary-key indexes, so the claim's and the finalise's lookups of
 * recent routes touch a few hot index pages instead of random ones across a
 * table of millions (what version 4 ids cost at scale).
 *
 * @module
 */

/** A new version 7 UUID, from `now` (milliseconds) and the web-standard random source. */
export function uuidv7(now: number = Date.now()): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let ms = Math.floor(now);
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = 0x70 | (b[6]! & 0x0f); // version 7
  b[8] = 0x80 | (b[8]! & 0x3f); // the RFC's variant
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}
