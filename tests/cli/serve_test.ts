/**
 * The node:http bridge that serves /metrics and the dashboard: whatever a
 * client sends (a malformed Host, a path that reads as a host, an absolute
 * target) and whatever the handler does (throw), one request ends, never the
 * process, and the URL a handler sees never takes its host from the client.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import type { Server } from "node:http";
import { loopbackOnly, portOf, serve, stop } from "../../cli/_serve.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

/** Sends `head` (request line and headers) raw; resolves with the status line and body. */
function raw(port: number, head: string): Promise<{ status: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      port,
      "127.0.0.1",
      () => socket.end(`${head}\r\nConnection: close\r\n\r\n`),
    );
    let text = "";
    socket.on("data", (d) => (text += d));
    socket.on("error", reject);
    socket.on("close", () => {
      const [status = "", ...rest] = text.split("\r\n");
      resolve({ status, body: rest.join("\r\n").split("\r\n\r\n").slice(1).join("\r\n\r\n") });
    });
  });
}

describe("the node:http bridge", () => {
  let server: Server;
  let port: number;
  before(async () => {
    server = await serve(async (request) => {
      if (new URL(request.url).pathname === "/throw") throw new Error("handler failed");
      const body = request.method === "POST" ? await request.text() : "";
      return new Response(
        `${request.method} ${request.url} host=${request.headers.get("host")} ${body}`,
        {
          headers: [["set-cookie", "a=1"], ["set-cookie", "b=2"]],
        },
      );
    }, { host: "127.0.0.1", port: 0 });
    port = portOf(server);
  });
  after(async () => {
    await stop(server);
  });

  it("never builds the URL from the Host header", async () => {
    const bad = await raw(port, "GET /x HTTP/1.1\r\nHost: a b:99999");
    assert.match(bad.status, /^HTTP\/1.1 (200|400)/, "answered, not crashed");
    const ok = await raw(port, "GET /page?q=1 HTTP/1.1\r\nHost: attacker.example");
    assert.match(ok.status, /200/);
    assert.match(ok.body, /GET http:\/\/localhost\/page\?q=1 host=attacker.example/);
  });

  it("keeps a path that reads as a host a path, and refuses an absolute target", async () => {
    const slashes = await raw(port, "GET //evil.example/x HTTP/1.1\r\nHost: localhost");
    assert.match(slashes.body, /GET http:\/\/localhost\/evil.example\/x /);
    const absolute = await raw(port, "GET http://evil.example/ HTTP/1.1\r\nHost: localhost");
    assert.match(absolute.status, /400/);
  });

  it("a handler that throws gets a 500, and the next request is served", async () => {
    assert.match((await raw(port, "GET /throw HTTP/1.1\r\nHost: localhost")).status, /500/);
    const res = await fetch(`http://127.0.0.1:${port}/after`, { method: "POST", body: "hello" });
    assert.equal(res.status, 200);
    assert.deepEqual(res.headers.getSetCookie(), ["a=1", "b=2"], "each cookie its own header");
    assert.match(await res.text(), /POST http:\/\/localhost\/after .* hello$/);
  });

  it("a port already taken is refused naming the host and port, on every runtime", async () => {
    await assert.rejects(
      serve(() => Promise.resolve(new Response("")), { host: "127.0.0.1", port }),
      (err: unknown) =>
        err instanceof Error && err.message.startsWith(`cannot listen on 127.0.0.1:${port}: `) &&
        /EADDRINUSE/.test(err.message),
    );
  });
});

describe("loopbackOnly: /metrics on a loopback address answers only this machine's names", () => {
  const ok = () => Promise.resolve(new Response("metrics"));
  const asked = (host: string | undefined) =>
    new Request("http://localhost/metrics", host === undefined ? {} : { headers: { host } });

  it("refuses a page whose DNS name was rebound to 127.0.0.1 (its own name as Host)", async () => {
    const guarded = loopbackOnly(ok, "127.0.0.1");
    for (
      const host of ["attacker.example", "attacker.example:9464", "127.0.0.1.", "localhost.evil"]
    ) {
      assert.equal((await guarded(asked(host))).status, 403, host);
    }
    for (const host of ["127.0.0.1:9464", "localhost:9464", "[::1]:9464", "LOCALHOST", undefined]) {
      assert.equal((await guarded(asked(host))).status, 200, String(host));
    }
  });

  it("listening beyond loopback (a scraper elsewhere), any name is answered", async () => {
    for (const listen of ["0.0.0.0", "10.1.2.3", "::"]) {
      assert.equal((await loopbackOnly(ok, listen)(asked("prometheus.internal:9464"))).status, 200);
    }
    assert.equal((await loopbackOnly(ok, "::1")(asked("evil.example"))).status, 403);
  });
});
