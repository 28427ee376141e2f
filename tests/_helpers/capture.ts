/**
 * The channel tests' one capture helper: a real local server answers with a
 * test's handler, one send goes to it, and the test gets what the provider
 * received and what the send returned or threw. The server is closed either
 * way (and leak-checked).
 *
 * @example
 * ```ts
 * import { captureSend } from "../_helpers/capture.ts";
 * import { slackChannel } from "../../channels/slack.ts";
 *
 * const { req, result } = await captureSend(slackChannel({ allowHosts: ["127.0.0.1"] }), {
 *   destination: "/services/T000/B000/XXXXXXXX",
 * });
 * ```
 *
 * @module
 */
import type { Channel } from "../../channels/channel.ts";
import type { Route } from "../../core/route.ts";
import { makeCtx, makeRoute } from "./http_route.ts";
import {
  type RecordedRequest,
  startServer,
  type TestHandler,
  type TestServer,
} from "./http_server.ts";
import { trackClose } from "./leaks.ts";

/** What one send left behind. */
export interface Capture {
  /** The first request the server received, if any. */
  readonly req: RecordedRequest | undefined;
  /** Every request it received, in order. */
  readonly reqs: readonly RecordedRequest[];
  /** What the send resolved to, or what it threw. */
  readonly result: unknown;
}

/**
 * Starts a server answering with `handler` (default 204), runs `send` against
 * it (a channel pointed at `server.url`, by its destination or its base URL),
 * and returns what the server received and the send's value or error.
 */
export async function capture(
  handler: TestHandler | undefined,
  send: (server: TestServer) => Promise<unknown>,
): Promise<Capture> {
  const server = trackClose("a capture server", await startServer(handler));
  try {
    let result: unknown;
    try {
      result = await send(server);
    } catch (err) {
      result = err;
    }
    return { req: server.requests[0], reqs: [...server.requests], result };
  } finally {
    await server.close();
  }
}

/**
 * Sends `route` through `channel` to a capture server; the route's
 * `destination` (default `/`) is the path appended to the server's URL.
 */
export function captureSend(
  channel: Channel,
  route: Partial<Route> = {},
  handler?: TestHandler,
): Promise<Capture> {
  return capture(handler, (server) =>
    channel.send(
      makeRoute({ ...route, destination: `${server.url}${route.destination ?? "/"}` }),
      makeCtx(),
    ));
}
