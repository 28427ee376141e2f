/**
 * Serves a web-standard `fetch` handler with `node:http`, which Deno, Bun and
 * Node all have: one server for `/metrics` and the dashboard on every runtime.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { Readable } from "node:stream";
import { hostName, isLoopbackName } from "../core/_host.ts";

/** Where to listen. */
export interface Listen {
  readonly host: string;
  readonly port: number;
}

/** Starts serving `handle` at `host:port`; resolves once it listens (`port` 0: any free one). */
export function serve(
  handle: (request: Request) => Promise<Response>,
  { host, port }: Listen,
): Promise<Server> {
  const server = createServer((req, res) => {
    const answered = (async () => {
      const request = toRequest(req);
      if (request === undefined) return void res.writeHead(400).end("bad request target");
      const response = await handle(request);
      const headers: Record<string, string | string[]> = {};
      response.headers.forEach((value, name) => {
        headers[name] = name === "set-cookie" ? response.headers.getSetCookie() : value;
      });
      const body = req.method === "HEAD" ? undefined : Buffer.from(await response.arrayBuffer());
      res.writeHead(response.status, headers);
      res.end(body);
    })();
    // Whatever goes wrong with one request (a handler that throws, a client
    // gone mid-answer) ends that request, never the process.
    answered.catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  return new Promise((resolve, reject) => {
    // Named here: Bun's own errors (`EINVAL: invalid argument, listen`,
    // `Failed to start server`) say neither the host nor the port.
    const refused = (err: Error): void => {
      const code = (err as { code?: unknown }).code;
      const why = typeof code === "string" && !err.message.includes(code)
        ? `${code}: ${err.message}`
        : err.message;
      reject(new Error(`cannot listen on ${host}:${port}: ${why}`, { cause: err }));
    };
    server.once("error", refused);
    server.listen(port, host, () => {
      server.off("error", refused);
      resolve(server);
    });
  });
}

/**
 * `handle`, answering only requests that name this machine in their `Host`
 * when it listens on a loopback address: a web page whose DNS name was
 * rebound to 127.0.0.1 sends its own name, and is refused (403). Listening
 * elsewhere (for a scraper on another host), it answers whatever the name.
 */
export function loopbackOnly(
  handle: (request: Request) => Promise<Response>,
  listenHost: string,
): (request: Request) => Promise<Response> {
  if (!isLoopbackName(listenHost)) return handle;
  return (request) => {
    const host = request.headers.get("host");
    if (host === null || isLoopbackName(hostName(host))) return handle(request);
    return Promise.resolve(
      new Response("Herald: this address answers only requests to 127.0.0.1 or localhost.\n", {
        status: 403,
      }),
    );
  };
}

/** The port a server listens on. */
export function portOf(server: Server): number {
  const address = server.address();
  return typeof address === "object" && address !== null ? address.port : 0;
}

/** Closes a server and the connections it holds open (a browser's keep-alive). */
export function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/**
 * The request as a web `Request`, or `undefined` for a target that is not a
 * path. The URL's origin is fixed: the `Host` header (any client can send
 * any) stays a header, for the handler to judge, and never makes a URL.
 */
function toRequest(req: IncomingMessage): Request | undefined {
  const target = req.url ?? "/";
  if (!target.startsWith("/")) return undefined;
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const method = req.method ?? "GET";
  const body = method === "GET" || method === "HEAD"
    ? null
    : (Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>);
  // "//x" would read as a host: keep it a path.
  return new Request(new URL(target.replace(/^\/+/, "/"), "http://localhost"), {
    method,
    headers,
    ...(body === null ? {} : { body, duplex: "half" }),
  } as RequestInit);
}
