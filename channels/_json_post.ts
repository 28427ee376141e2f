/**
 * The shape shared by chat channels whose destination is a webhook URL
 * (Slack, Discord, Teams): render the route to a JSON message, guard the
 * URL, POST it.
 *
 * @module
 */
import type { Channel, SendContext } from "./channel.ts";
import type { DeliveryDetails } from "../core/errors.ts";
import type { Route } from "../core/route.ts";
import { addressGuard } from "./_address.ts";
import { type HttpAnswer, postHttp, resolveHttp } from "./_http.ts";
import type { JsonObject, WebhookUrlChannelOptions } from "./options.ts";
import { applyTemplate } from "./_payload.ts";

/** Request headers a provider adds per send, and the secrets among them. */
export interface ExtraRequest {
  /** Headers besides `content-type` and `user-agent`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Values to mask in every message (a bearer token). */
  readonly secrets?: readonly string[];
}

/** What makes one URL channel different from the others. */
export interface JsonUrlSpec {
  /** Channel name, the prefix of every message. */
  readonly name: string;
  /** The default rendering, used when there is no template. */
  readonly render: (route: Route) => JsonObject;
  /** Provider-specific reading of the answer (see `HttpCall.classify`). */
  readonly classify?: (answer: HttpAnswer, where: string) => Error | undefined;
  /** Rewrites the destination before the guard checks it (Discord adds `wait=true`). */
  readonly target?: (destination: string) => string;
  /**
   * Runs before the request with the destination and the serialised body:
   * throws to refuse the send (Teams' size limit), returns extra headers.
   */
  readonly prepare?: (destination: string, body: string) => Promise<ExtraRequest>;
  /** Read limit for the answer (a success body that must be read whole). */
  readonly maxBodyBytes?: number;
}

/** Builds a channel that POSTs `render(route)` (or the template's output) to the route's URL. */
export function jsonUrlChannel(spec: JsonUrlSpec, options: WebhookUrlChannelOptions): Channel {
  const http = resolveHttp(options);
  const guard = addressGuard(options);
  const { name, render, classify, target, prepare, maxBodyBytes } = spec;
  const template = options.template;
  return {
    async send(route: Route, ctx: SendContext): Promise<DeliveryDetails> {
      const message = template === undefined ? render(route) : applyTemplate(template, route, name);
      const body = JSON.stringify(message);
      const extra = prepare === undefined ? {} : await prepare(route.destination, body);
      return await postHttp(
        {
          channel: name,
          target: target === undefined ? route.destination : target(route.destination),
          headers: { "content-type": "application/json", ...extra.headers },
          body,
          secrets: extra.secrets ?? [],
          guard,
          ...(classify === undefined ? {} : { classify }),
          ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }),
        },
        ctx,
        http,
      );
    },
  };
}
