/**
 * The shape shared by chat channels whose destination is a webhook URL
 * (Slack, Discord, Teams): render the route to a JSON message, guard the
 * URL, POST it.
 *
 * @module
 */
import type { Channel, SendContext } from "./channel.ts";
import type { DeliveryDetails } from "../errors.ts";
import type { JsonValue, Route } from "../route.ts";
import { addressGuard, type AddressGuardOptions } from "./_address.ts";
import { type HttpAnswer, type HttpOptions, postHttp, resolveHttp } from "./_http.ts";
import { applyTemplate } from "./_payload.ts";

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

/** Builds a channel that POSTs `render(route)` (or the template's output) to the route's URL. */
export function jsonUrlChannel(
  name: string,
  options: WebhookUrlChannelOptions,
  render: (route: Route) => JsonObject,
  classify?: (answer: HttpAnswer, where: string) => Error | undefined,
): Channel {
  const http = resolveHttp(options);
  const guard = addressGuard(options);
  const template = options.template;
  return {
    async send(route: Route, ctx: SendContext): Promise<DeliveryDetails> {
      const message = template === undefined ? render(route) : applyTemplate(template, route, name);
      return await postHttp(
        {
          channel: name,
          target: route.destination,
          headers: { "content-type": "application/json" },
          body: JSON.stringify(message),
          secrets: [],
          guard,
          ...(classify === undefined ? {} : { classify }),
        },
        ctx,
        http,
      );
    },
  };
}
