/**
 * The dashboard's guards, as Hono middleware: response headers, the token,
 * the `Host` check that stands in for a token on loopback, and the POST
 * guard (read-only, CSRF, body size).
 *
 * @module
 */
import { hostName } from "../core/_host.ts";
import type { MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { bodyLimit } from "hono/body-limit";
import { timingSafeEqual } from "hono/utils/buffer";

const COOKIE = "herald_dashboard";
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/** The largest form a POST may carry; the dashboard's own are a few hundred bytes. */
const MAX_FORM_BYTES = 16 * 1024;

/** Sets the headers every response carries: the CSP, no sniffing, no framing, no caching. */
export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.res.headers.set("Content-Security-Policy", CSP);
  c.res.headers.set("X-Content-Type-Options", "nosniff");
  c.res.headers.set("X-Frame-Options", "DENY");
  c.res.headers.set("Referrer-Policy", "same-origin");
  if (!c.res.headers.has("Cache-Control")) c.res.headers.set("Cache-Control", "no-store");
};

/**
 * Requires `token` of every request: as a bearer token, or as the session
 * cookie that `?token=` sets once (holding an HMAC of the token, never the
 * token itself, so no other service of the host that sees the cookie learns it).
 */
export function tokenGuard(token: string, base: string): MiddlewareHandler {
  const session = hmac(token, "herald dashboard session");
  return async (c, next) => {
    const offered = c.req.query("token");
    if (c.req.method === "GET" && offered !== undefined && await timingSafeEqual(offered, token)) {
      const url = new URL(c.req.url);
      setCookie(c, COOKIE, await session, {
        httpOnly: true,
        sameSite: "Lax",
        path: base || "/",
        secure: url.protocol === "https:" || c.req.header("x-forwarded-proto") === "https",
      });
      url.searchParams.delete("token");
      // A path of this origin only ("//host" would leave it).
      return c.redirect(url.pathname.replace(/^\/+/, "/") + url.search, 303);
    }
    const header = c.req.header("authorization");
    const ok = header?.startsWith("Bearer ")
      ? await timingSafeEqual(header.slice(7), token)
      : await timingSafeEqual(getCookie(c, COOKIE) ?? "", await session);
    if (!ok) return c.text("Herald dashboard: a token is required (HERALD_DASHBOARD_TOKEN).", 401);
    await next();
  };
}

/**
 * Without a token, answers only requests addressed to one of `hosts` (by
 * default the loopback names): a page elsewhere whose DNS name was rebound
 * to 127.0.0.1 sends its own name, and is refused.
 */
export function hostGuard(hosts: readonly string[]): MiddlewareHandler {
  const allowed = new Set(hosts.map((h) => h.toLowerCase()));
  return async (c, next) => {
    const name = hostName(c.req.header("host") ?? new URL(c.req.url).host);
    if (!allowed.has(name)) {
      return c.text(
        "Herald dashboard: this address is not one the dashboard answers without a token " +
          "(set HERALD_DASHBOARD_TOKEN, or the 'hosts' option).",
        403,
      );
    }
    await next();
  };
}

/** The host names a dashboard without a token answers by default. */
export const LOOPBACK_HOSTS: readonly string[] = ["127.0.0.1", "localhost", "[::1]", "::1"];

/** Refuses every POST when read-only; else requires the CSRF token and a same-origin form. */
export function postGuard(readOnly: boolean, csrf: string): MiddlewareHandler[] {
  return [
    async (c, next) => {
      if (readOnly) return c.text("Herald dashboard: read-only; nothing was changed.", 403);
      await next();
    },
    bodyLimit({
      maxSize: MAX_FORM_BYTES,
      onError: (c) => c.text("Herald dashboard: the form is too large.", 413),
    }),
    async (c, next) => {
      const site = c.req.header("sec-fetch-site");
      const given = (await c.req.parseBody())["csrf"];
      if (
        (site !== undefined && site !== "same-origin" && site !== "none") ||
        typeof given !== "string" || !(await timingSafeEqual(given, csrf))
      ) {
        return c.text(
          "Herald dashboard: the form's CSRF token is missing or wrong; nothing was changed.",
          403,
        );
      }
      await next();
    },
  ];
}

async function hmac(key: string, message: string): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(message));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
