/**
 * The option types the channels share: how an HTTP channel sends, how a URL
 * destination is checked, and the shapes chat and e-mail channels render.
 *
 * @module
 */
import type { JsonValue, Route } from "../core/route.ts";

/** Options every HTTP channel accepts besides its own. */
export interface HttpOptions {
  /** The `fetch` to send with; defaults to `globalThis.fetch`. Tests inject one. */
  readonly fetch?: typeof fetch;
  /**
   * Per-send limit in milliseconds, covering DNS, connect, headers and the
   * capped body read. Default 30 000. The worker's own signal still applies.
   */
  readonly timeoutMs?: number;
  /** Clock in epoch milliseconds (for `Retry-After` dates, signatures); defaults to `Date.now`. */
  readonly now?: () => number;
}

/** Resolves a host name to every address it has (IPv4 and IPv6 literals). */
export type Resolver = (hostname: string) => Promise<readonly string[]>;

/** Options shared by every channel whose destination is a URL. */
export interface AddressGuardOptions {
  /**
   * Host names (or IP literals) exempt from the address check, compared
   * case-insensitively to the URL's host name, e.g. `["127.0.0.1"]` for
   * local development or `["hooks.internal.example"]`.
   */
  readonly allowHosts?: readonly string[];
  /**
   * Addresses or CIDR ranges allowed even though they are not global, e.g.
   * `["10.1.0.0/16", "::1"]`. Checked against the literal host and against
   * every address a host name resolves to.
   */
  readonly allowAddresses?: readonly string[];
  /** Refuse plain `http:` destinations. Default `false`. */
  readonly httpsOnly?: boolean;
  /** Host name resolver; defaults to `node:dns/promises` `lookup` with `all: true`. */
  readonly resolve?: Resolver;
}

/** A JSON object, the body of a chat message. */
export type JsonObject = { readonly [key: string]: JsonValue };

/** Options of the chat channels whose destination is an incoming-webhook URL. */
export interface WebhookUrlChannelOptions extends HttpOptions, AddressGuardOptions {
  /**
   * Renders a route to the provider's message JSON. Without one, the
   * channel's default rendering of `payload.text` is used. A template that
   * throws fails the route permanently.
   */
  readonly template?: (route: Route) => JsonObject;
}

/** A rendered e-mail. At least one of `text` and `html` is set. */
export interface EmailMessage {
  /** The subject line. */
  readonly subject: string;
  /** Plain-text body. */
  readonly text?: string;
  /** HTML body. */
  readonly html?: string;
}

/** Which e-mail API to call. */
export type EmailProvider = "resend" | "postmark" | "sendgrid";
