/**
 * Host names as a `Host` header or a URL gives them: the name alone, and
 * whether it names this machine only.
 *
 * @module
 */

/** `host:port`, `[v6]:port` or a bare name, lower-cased, without the port. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return colon >= 0 && h.indexOf(":") === colon ? h.slice(0, colon) : h;
}

/** True for a name of this machine alone: `localhost`, `127.x.x.x`, `[::1]` or `::1`. */
export function isLoopbackName(name: string): boolean {
  return /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|::1)$/i.test(name);
}
