/**
 * A real HTTP server on 127.0.0.1 for channel tests: ephemeral port, every
 * request recorded (method, path, headers, raw body), closed with all its
 * connections so no runtime's test runner is left waiting on a socket.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** One request as the server saw it. */
export interface RecordedRequest {
  /** HTTP method, e.g. `"POST"`. */
  readonly method: string;
  /** Path and query, e.g. `"/hook?x=1"`. */
  readonly path: string;
  /** Headers with lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body, decoded as UTF-8. */
  readonly body: string;
}

/** Answers one recorded request; may write nothing to leave the client hanging. */
export type TestHandler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

/** A running test server. */
export interface TestServer {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Requests received so far, in order. */
  readonly requests: readonly RecordedRequest[];
  /** Resolves when the next request has been recorded (before the handler runs). */
  nextRequest(): Promise<RecordedRequest>;
  /** Stops listening and destroys open connections; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts a server answering with `handler` (default: 204 No Content).
 *
 * @example
 * ```ts
 * const server = await startServer((_req, res) => res.writeHead(200).end("ok"));
 * try {
 *   await fetch(server.url, { method: "POST", body: "hi" }).then((r) => r.text());
 * } finally {
 *   await server.close();
 * }
 * ```
 */
export async function startServer(
  handler: TestHandler = (_req, res) => void res.writeHead(204).end(),
): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const waiters: ((req: RecordedRequest) => void)[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => {
      const recorded: RecordedRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: _headers(req),
        body: new TextDecoder().decode(_concat(chunks)),
      };
      requests.push(recorded);
      for (const wake of waiters.splice(0)) wake(recorded);
      Promise.resolve(handler(recorded, res)).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  });
  const { url, port, close } = await listenLocal(server);
  return {
    url,
    port,
    requests,
    nextRequest(): Promise<RecordedRequest> {
      return new Promise((resolve) => waiters.push(resolve));
    },
    close,
  };
}

/**
 * Listens on an ephemeral port of 127.0.0.1; `close` stops listening and
 * destroys open connections (hanging clients would otherwise keep it
 * waiting), and is safe to call twice. Every test server here starts so.
 */
export async function listenLocal(
  server: Server,
): Promise<{ url: string; port: number; close(): Promise<void> }> {
  // Idle connections kept a minute, not Node's 5 s: a send that reuses a
  // pooled connection as the server closes it would be reset, and recorded
  // as a retry where the test expects it sent (Bun's fetch pool is shared by
  // every file of the run). close() ends idle connections whatever this is.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** A port that refuses connections: bound once, then released. */
export async function closedPort(): Promise<number> {
  const server = await startServer();
  await server.close();
  return server.port;
}

function _headers(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function _concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
