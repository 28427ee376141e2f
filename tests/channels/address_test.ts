import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { addressGuard } from "../../channels/_address.ts";
import type { Resolver } from "../../channels/options.ts";
import { formatIp, nonGlobalClass, parseIp } from "../../channels/_ip.ts";
import { HeraldError, InvalidArgumentError, PermanentError } from "../../core/errors.ts";
import { rejection } from "../_helpers/http_route.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

const signal = new AbortController().signal;
const resolveTo = (...addresses: string[]): Resolver => () => Promise.resolve(addresses);

/** Every literal must be refused, with its class named in the message. */
const REFUSED: readonly [string, RegExp][] = [
  ["0.0.0.0", /unspecified/],
  ["0.1.2.3", /this-network/],
  ["10.0.0.1", /private/],
  ["100.64.0.1", /carrier-grade NAT/],
  ["100.127.255.254", /carrier-grade NAT/],
  ["127.0.0.1", /loopback/],
  ["127.255.0.9", /loopback/],
  // WHATWG URL parsing turns these spellings into 127.0.0.1 before the check.
  ["2130706433", /loopback/],
  ["0x7f.1", /loopback/],
  ["169.254.169.254", /link-local/],
  ["172.16.0.1", /private/],
  ["172.31.255.255", /private/],
  ["192.0.0.8", /IETF protocol/],
  ["192.0.2.10", /documentation/],
  ["192.88.99.1", /6to4 relay/],
  ["192.168.1.1", /private/],
  ["198.18.0.1", /benchmarking/],
  ["198.19.255.255", /benchmarking/],
  ["198.51.100.7", /documentation/],
  ["203.0.113.9", /documentation/],
  ["224.0.0.1", /multicast/],
  ["239.255.255.250", /multicast/],
  ["240.0.0.1", /reserved/],
  ["255.255.255.255", /broadcast/],
  ["[::]", /unspecified/],
  ["[::1]", /loopback/],
  ["[::ffff:127.0.0.1]", /loopback \(IPv4-mapped\)/],
  ["[::ffff:a9fe:a9fe]", /link-local \(IPv4-mapped\)/],
  ["[::127.0.0.1]", /IPv4-compatible/],
  ["[64:ff9b::10.0.0.1]", /private \(NAT64\)/],
  ["[64:ff9b:1::1]", /local-use NAT64/],
  ["[2002:c0a8:0101::1]", /private \(6to4\)/],
  ["[100::1]", /discard-only/],
  ["[2001:db8::1]", /documentation/],
  ["[2001::1]", /IETF protocol/],
  ["[3fff::1]", /documentation/],
  ["[fc00::1]", /unique-local/],
  ["[fd12:3456::1]", /unique-local/],
  ["[fe80::1]", /link-local/],
  ["[fec0::1]", /site-local/],
  ["[ff02::1]", /multicast/],
  ["[4000::1]", /reserved/],
];

/** A guard whose resolver answers with one public address. */
const guard = addressGuard({ resolve: resolveTo("93.184.216.34") });

checkLeaks();

describe("address guard", () => {
  for (const [host, kind] of REFUSED) {
    it(`refuses the literal ${host}`, async () => {
      const err = await rejection(
        guard.check(`http://${host}:8080/secret-path`, "webhook", signal),
      );
      assert.ok(err instanceof PermanentError, String(err));
      assert.match(err.message, kind);
      assert.equal(err.message.includes("secret-path"), false);
    });
  }

  it("accepts global literals and public host names", async () => {
    for (const host of ["93.184.216.34", "8.8.8.8", "[2606:4700::1111]", "[64:ff9b::8.8.8.8]"]) {
      const url = await guard.check(`https://${host}/x`, "webhook", signal);
      assert.equal(url.pathname, "/x");
    }
    await guard.check("https://hooks.example.com/x", "webhook", signal);
  });
});

describe("address guard: host names and allow lists", () => {
  it("refuses a host name that resolves to loopback (real resolver: localhost)", async () => {
    const err = await rejection(addressGuard({}).check("http://localhost:1/", "webhook", signal));
    assert.ok(err instanceof PermanentError, String(err));
    assert.match(err.message, /resolves to a loopback address/);
  });

  it("refuses when any resolved address is private (injected resolver)", async () => {
    const mixed = addressGuard({ resolve: resolveTo("93.184.216.34", "10.1.2.3") });
    const err = await rejection(mixed.check("https://rebind.example/", "slack", signal));
    assert.ok(err instanceof PermanentError);
    assert.match(
      err.message,
      /^slack: refused destination: host resolves to a private address \(10\.1\.2\.3\)/,
    );
    const v6 = addressGuard({ resolve: resolveTo("fd00::5") });
    assert.match(
      String(await rejection(v6.check("https://v6.example/", "slack", signal))),
      /unique-local/,
    );
  });

  it("lets allowHosts and allowAddresses through", async () => {
    const byHost = addressGuard({ allowHosts: ["127.0.0.1", "LOCALHOST", "::1"] });
    await byHost.check("http://127.0.0.1:9/", "webhook", signal);
    await byHost.check("http://localhost:9/", "webhook", signal);
    await byHost.check("http://[0:0::1]:9/", "webhook", signal);
    const byAddress = addressGuard({
      allowAddresses: ["10.0.0.0/8", "fd00::/8"],
      resolve: resolveTo("10.9.8.7", "fd00::1"),
    });
    await byAddress.check("https://internal.example/", "webhook", signal);
    await byAddress.check("https://10.1.1.1/", "webhook", signal);
    const err = await rejection(byAddress.check("https://192.168.0.1/", "webhook", signal));
    assert.ok(err instanceof PermanentError);
  });

  it("validates allowAddresses at construction", () => {
    assert.throws(
      () => addressGuard({ allowAddresses: ["10.0.0.0/33"] }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "allowAddresses",
    );
  });
});

describe("address guard: URLs and resolvers", () => {
  it("refuses credentials, other schemes, malformed URLs and http in https-only mode", async () => {
    const cases: [string, RegExp][] = [
      ["https://user:pa55@hooks.example.com/", /must not contain credentials/],
      ["ftp://hooks.example.com/", /scheme "ftp:" is not http\(s\)/],
      ["file:///etc/passwd", /scheme "file:" is not http\(s\)/],
      ["not a url", /not a valid absolute URL/],
      ["/relative/path", /not a valid absolute URL/],
    ];
    for (const [url, why] of cases) {
      const err = await rejection(guard.check(url, "webhook", signal));
      assert.ok(err instanceof PermanentError, url);
      assert.match(err.message, why);
      assert.equal(err.message.includes("pa55"), false);
    }
    const strict = addressGuard({ httpsOnly: true, resolve: resolveTo("93.184.216.34") });
    assert.match(
      String(await rejection(strict.check("http://hooks.example.com/t0ken", "webhook", signal))),
      /is not https/,
    );
    await strict.check("https://hooks.example.com/", "webhook", signal);
  });

  it("treats a resolution failure as transient", async () => {
    const failing = addressGuard({ resolve: () => Promise.reject(new Error("ENOTFOUND")) });
    const err = await rejection(failing.check("https://nxdomain.example/", "webhook", signal));
    assert.ok(err instanceof HeraldError && err.code === "HERALD_NETWORK", String(err));
  });

  it("stops waiting for the resolver when the send is aborted", async () => {
    const hanging = addressGuard({ resolve: () => new Promise(() => {}) });
    const ac = new AbortController();
    const checking = hanging.check("https://slow.example/", "webhook", ac.signal);
    ac.abort(new Error("stop"));
    assert.equal(await rejection(checking), ac.signal.reason);
  });
});

describe("IP parsing", () => {
  it("parses and formats both families", () => {
    assert.equal(formatIp(parseIp("::ffff:127.0.0.1") ?? new Uint8Array()), "::ffff:7f00:1");
    assert.equal(
      formatIp(parseIp("2001:db8:0:0:1:0:0:1") ?? new Uint8Array()),
      "2001:db8::1:0:0:1",
    );
    assert.equal(formatIp(parseIp("fe80::1%eth0") ?? new Uint8Array()), "fe80::1");
    for (const bad of ["1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "12345::", "::g", ""]) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });
  it("classifies global unicast as global", () => {
    for (const ok of ["1.1.1.1", "100.128.0.1", "172.32.0.1", "2a00:1450::1"]) {
      assert.equal(nonGlobalClass(parseIp(ok) ?? new Uint8Array(4)), undefined, ok);
    }
  });
});
