/**
 * The `email` channel: sends one e-mail per route through an HTTP e-mail API
 * (Resend, Postmark or SendGrid, chosen by configuration).
 *
 * @module
 */
import type { Channel, SendContext } from "./channel.ts";
import { type DeliveryDetails, InvalidArgumentError, PermanentError } from "../core/errors.ts";
import type { Route } from "../core/route.ts";
import { postHttp, resolveHttp } from "./_http.ts";
import type { HttpOptions } from "./options.ts";
import { applyTemplate, stringField } from "./_payload.ts";
import {
  baseUrl,
  HTTP_OPTIONS,
  refuseUnknownOptions,
  requireString,
  requireToken,
} from "./_options.ts";
import { EMAIL_APIS, EMAIL_PROVIDERS } from "./_email_providers.ts";
import type { EmailMessage, EmailProvider } from "./options.ts";

export type { EmailMessage, EmailProvider } from "./options.ts";

/** Options of {@link emailChannel}. */
export interface EmailChannelOptions extends HttpOptions {
  /** `"resend"`, `"postmark"` or `"sendgrid"`. */
  readonly provider: EmailProvider;
  /** The provider's API key (Postmark: the server token). Never logged. */
  readonly apiKey: string;
  /** Sender, `"alerts@example.com"` or `"Alerts <alerts@example.com>"`; must be verified with the provider. */
  readonly from: string;
  /** API base URL; defaults to the provider's public endpoint. For tests and EU regions. */
  readonly baseUrl?: string;
  /** Postmark message stream; default `"outbound"`. */
  readonly messageStream?: string;
  /**
   * Renders a route to `{ subject, text?, html? }`. By default the payload's
   * own `subject`, `text` and `html` strings are used.
   */
  readonly template?: (route: Route) => EmailMessage;
}

/**
 * Creates the e-mail channel. The destination is one recipient address
 * (`"ada@example.com"`). Resend receives the route id as `Idempotency-Key`;
 * Postmark (`Metadata.herald_route_id`) and SendGrid
 * (`custom_args.herald_route_id`) have no idempotency key, so they get it as
 * metadata for tracing only. Invalid recipients (a 4xx answer) are permanent;
 * Postmark's maintenance and rate-limit error codes, SendGrid's "temporarily
 * blocked" 403 and its `X-RateLimit-Reset` are read as pauses (retried).
 *
 * @example
 * ```ts
 * import { emailChannel } from "./email.ts";
 * const email = emailChannel({
 *   provider: "resend",
 *   apiKey: "re_123456789",
 *   from: "Herald <alerts@example.com>",
 *   template: (route) => ({ subject: `[${route.kind}]`, text: JSON.stringify(route.payload) }),
 * });
 * ```
 */
export function emailChannel(options: EmailChannelOptions): Channel {
  refuseUnknownOptions<EmailChannelOptions>(options, {
    ...HTTP_OPTIONS,
    provider: true,
    apiKey: true,
    from: true,
    baseUrl: true,
    messageStream: true,
    template: true,
  }, "emailChannel");
  const http = resolveHttp(options);
  if (!(EMAIL_PROVIDERS as readonly string[]).includes(options.provider)) {
    throw new InvalidArgumentError(
      "provider",
      `must be one of ${EMAIL_PROVIDERS.join(", ")}`,
      options.provider,
    );
  }
  const api = EMAIL_APIS[options.provider];
  const apiKey = requireToken(options.apiKey, "apiKey");
  const from = requireString(options.from, "from");
  if (/[\r\n]/.test(from)) throw new InvalidArgumentError("from", "must be a single line", from);
  const target = `${baseUrl(options.baseUrl ?? api.defaultBaseUrl, "baseUrl")}${api.path}`;
  const template = options.template;
  const stream = options.messageStream;
  return {
    async send(route: Route, ctx: SendContext): Promise<DeliveryDetails> {
      const to = route.destination.trim();
      if (!_isAddress(to)) {
        throw new PermanentError("email: the destination is not a single e-mail address");
      }
      const message = template === undefined
        ? _fromPayload(route)
        : _checked(applyTemplate(template, route, "email"));
      const params = {
        apiKey,
        from,
        to,
        message,
        route,
        ...(stream === undefined ? {} : { messageStream: stream }),
      };
      const classify = api.classify;
      return await postHttp(
        {
          channel: "email",
          target,
          headers: api.headers(params),
          body: JSON.stringify(api.body(params)),
          secrets: [apiKey],
          ...(classify === undefined ? {} : { classify }),
        },
        ctx,
        http,
      );
    },
  };
}

function _fromPayload(route: Route): EmailMessage {
  const subject = stringField(route, "subject");
  const text = stringField(route, "text");
  const html = stringField(route, "html");
  return _checked({
    subject: subject ?? "",
    ...(text === undefined ? {} : { text }),
    ...(html === undefined ? {} : { html }),
  });
}

function _checked(message: EmailMessage): EmailMessage {
  if (typeof message.subject !== "string" || message.subject === "") {
    throw new PermanentError("email: the message has no subject (payload.subject or a template)");
  }
  if (/[\r\n]/.test(message.subject)) {
    throw new PermanentError("email: the subject must be a single line");
  }
  if (typeof message.text !== "string" && typeof message.html !== "string") {
    throw new PermanentError("email: the message has neither text nor html");
  }
  return message;
}

/** One plain address: no display name, no list, no header injection. */
function _isAddress(text: string): boolean {
  return text.length <= 254 &&
    /^[^\s@<>(),;:"\\[\]]+@[^\s@<>(),;:"\\[\]]+\.[^\s@<>(),;:"\\[\]]+$/.test(text);
}

// The types the API mentions, so this entry point documents them all.
export type { DeliveryDetails } from "../core/errors.ts";
export type { JsonValue, Route } from "../core/route.ts";
export type { HttpOptions } from "./options.ts";
export type { Channel, SendContext } from "./channel.ts";
