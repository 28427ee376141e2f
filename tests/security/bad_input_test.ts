/**
 * Hostile and bad input, data-driven: worker options, `enqueue` arguments,
 * schema names, strings full of SQL, operator calls, channel configuration,
 * destinations refused by the channels at send time, and the program's flags.
 *
 * Every refusal must be a typed `InvalidArgumentError` whose `field` (and
 * message) names the culprit, and must leave every row of Herald's tables as
 * it was: a checksum of the three tables, seeded first, is compared before and
 * after each case on the real Postgres. Destinations are checked in two
 * layers: `enqueue` only checks their generic shape; the channels refuse the
 * rest at send time, which ends the route `failed` with a clear, secret-free
 * `last_error` and leaves every other row unchanged.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type postgres from "postgres";
import { InvalidArgumentError } from "../../core/errors.ts";
import { enqueue, PostgresStore } from "../../store.ts";
import { Worker } from "../../worker.ts";
import type { WorkerOptions } from "../../worker.ts";
import type { Channel } from "../../channels/channel.ts";
import { logChannel } from "../../channels/log.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { slackChannel } from "../../channels/slack.ts";
import { emailChannel } from "../../channels/email.ts";
import { smsChannel } from "../../channels/sms.ts";
import { telegramChannel } from "../../channels/telegram.ts";
import type { Logger } from "../../observe/logger.ts";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { checksum, seed } from "../_helpers/hostile_db.ts";
import { inBatches, runProgramWithin } from "../_helpers/hostile_http.ts";
import { RUNTIME } from "../_helpers/spawn.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** A refusal: `run` must throw an InvalidArgumentError naming `field`. */
interface Refusal {
  readonly name: string;
  readonly field: string;
  readonly run: () => unknown;
  /** Extra check on the message. */
  readonly message?: RegExp;
  /** A known Herald bug: the case is reported, not enforced, until fixed. */
  readonly todo?: string;
}

const NO_ID = "00000000-0000-0000-0000-000000000000";
const SECRET = "Zq7SECRETtokenVw3"; // planted in destinations; must never be echoed
const LOG = logChannel({ write: () => {} });

// --- Worker options -------------------------------------------------------------------------

const noStore = new PostgresStore({ url: "postgres://nobody@127.0.0.1:1/none" });
const workerWith = (overrides: Record<string, unknown>) => () =>
  new Worker({ store: noStore, channels: { log: LOG }, ...overrides } as WorkerOptions);

const WORKER: Refusal[] = [
  { name: "options is null", field: "options", run: () => new Worker(null as Any) },
  { name: "options is a string", field: "options", run: () => new Worker("fast" as Any) },
  { name: "store missing", field: "store", run: workerWith({ store: undefined }) },
  { name: "store is a plain object", field: "store", run: workerWith({ store: {} }) },
  { name: "store is a URL string", field: "store", run: workerWith({ store: DATABASE_URL }) },
  { name: "channels null", field: "channels", run: workerWith({ channels: null }) },
  { name: "channels an array", field: "channels", run: workerWith({ channels: [LOG] }) },
  {
    name: "channel name with a space",
    field: "channels",
    run: workerWith({ channels: { "my log": LOG } }),
  },
  {
    name: "channel name full of SQL",
    field: "channels",
    run: workerWith({ channels: { "log'; DROP TABLE notifications; --": LOG } }),
  },
  { name: "channel name upper-case", field: "channels", run: workerWith({ channels: { LOG } }) },
  {
    name: "channel without send()",
    field: "channels.log",
    run: workerWith({ channels: { log: {} } }),
  },
  { name: "channel null", field: "channels.log", run: workerWith({ channels: { log: null } }) },
  { name: "interval a string", field: "interval", run: workerWith({ interval: "5s" }) },
  { name: "interval NaN", field: "interval", run: workerWith({ interval: Number.NaN }) },
  { name: "interval Infinity", field: "interval", run: workerWith({ interval: Infinity }) },
  { name: "interval above 2^31-1", field: "interval", run: workerWith({ interval: 2 ** 31 }) },
  { name: "routesPerTick 0", field: "routesPerTick", run: workerWith({ routesPerTick: 0 }) },
  { name: "routesPerTick 1.5", field: "routesPerTick", run: workerWith({ routesPerTick: 1.5 }) },
  {
    name: "routesPerTick too big",
    field: "routesPerTick",
    run: workerWith({ routesPerTick: 100_001 }),
  },
  {
    name: "routesPerTransaction -1",
    field: "routesPerTransaction",
    run: workerWith({ routesPerTransaction: -1 }),
  },
  { name: "concurrency 0", field: "concurrency", run: workerWith({ concurrency: 0 }) },
  { name: "concurrency a string", field: "concurrency", run: workerWith({ concurrency: "4" }) },
  { name: "concurrency 1001", field: "concurrency", run: workerWith({ concurrency: 1001 }) },
  { name: "maxAttempts 0", field: "maxAttempts", run: workerWith({ maxAttempts: 0 }) },
  { name: "maxAttempts 1e9", field: "maxAttempts", run: workerWith({ maxAttempts: 1e9 }) },
  { name: "maxAttempts NaN", field: "maxAttempts", run: workerWith({ maxAttempts: Number.NaN }) },
  { name: "sendTimeoutMs 0", field: "sendTimeoutMs", run: workerWith({ sendTimeoutMs: 0 }) },
  {
    name: "sendTimeoutMs negative",
    field: "sendTimeoutMs",
    run: workerWith({ sendTimeoutMs: -5 }),
  },
  {
    name: "sendTimeoutMs 2^31",
    field: "sendTimeoutMs",
    run: workerWith({ sendTimeoutMs: 2 ** 31 }),
  },
  {
    name: "shutdownTimeoutMs -1",
    field: "shutdownTimeoutMs",
    run: workerWith({ shutdownTimeoutMs: -1 }),
  },
  {
    name: "shutdownTimeoutMs Infinity",
    field: "shutdownTimeoutMs",
    run: workerWith({ shutdownTimeoutMs: Infinity }),
  },
  {
    name: "retry.baseMs negative",
    field: "retry.baseMs",
    run: workerWith({ retry: { baseMs: -1 } }),
  },
  {
    name: "retry.maxMs NaN",
    field: "retry.maxMs",
    run: workerWith({ retry: { maxMs: Number.NaN } }),
  },
  {
    name: "retry.maxMs 1e16 (Postgres would refuse the interval)",
    field: "retry.maxMs",
    run: workerWith({ retry: { maxMs: 1e16 } }),
  },
  {
    name: "retry.baseMs over 30 days",
    field: "retry.baseMs",
    run: workerWith({ retry: { baseMs: 31 * 86_400_000 } }),
  },
  {
    name: "retry.maxMs below baseMs",
    field: "retry.maxMs",
    run: workerWith({ retry: { baseMs: 10, maxMs: 5 } }),
  },
  { name: "listen 'yes'", field: "listen", run: workerWith({ listen: "yes" }) },
  { name: "logger without log()", field: "logger", run: workerWith({ logger: {} }) },
  { name: "logger.log not a function", field: "logger", run: workerWith({ logger: { log: "x" } }) },
  { name: "random a number", field: "random", run: workerWith({ random: 0.5 }) },
  { name: "now a Date", field: "now", run: workerWith({ now: new Date() }) },
  { name: "sleep a string", field: "sleep", run: workerWith({ sleep: "later" }) },
  {
    name: "shutdown({ timeoutMs: -1 })",
    field: "timeoutMs",
    run: () => workerWith({})().shutdown({ timeoutMs: -1 }),
  },
];

// --- enqueue arguments ----------------------------------------------------------------------

const OK_ROUTE = { channel: "log", destination: "ops" };
const OK_NOTE = { kind: "k" };

function nested(depth: number, wrap: (inner: unknown) => unknown): unknown {
  let v: unknown = "leaf";
  for (let i = 0; i < depth; i++) v = wrap(v);
  return v;
}
const cyclic: Record<string, unknown> = { a: 1 };
cyclic["self"] = cyclic;
const cyclicArray: unknown[] = [];
cyclicArray.push(cyclicArray);
const throwingGetter = {
  get boom(): string {
    throw new Error("getter ran");
  },
};

/** [name, notification, routes, field] */
const ENQUEUE_TABLE: [string, unknown, unknown, string, string?][] = [
  ["notification null", null, [OK_ROUTE], "notification"],
  ["notification a string", "order.shipped", [OK_ROUTE], "notification"],
  ["notification an array", [OK_NOTE], [OK_ROUTE], "notification"],
  ["notification a Date", new Date(), [OK_ROUTE], "notification"],
  ["kind missing", {}, [OK_ROUTE], "notification.kind"],
  ["kind empty", { kind: "" }, [OK_ROUTE], "notification.kind"],
  ["kind a number", { kind: 42 }, [OK_ROUTE], "notification.kind"],
  ["kind 256 characters", { kind: "k".repeat(256) }, [OK_ROUTE], "notification.kind"],
  ["kind with NUL", { kind: "a\u0000b" }, [OK_ROUTE], "notification.kind"],
  ["kind with a lone surrogate", { kind: "x\ud800" }, [OK_ROUTE], "notification.kind"],
  [
    "idempotencyKey empty",
    { kind: "k", idempotencyKey: "" },
    [OK_ROUTE],
    "notification.idempotencyKey",
  ],
  [
    "idempotencyKey 256 chars",
    { kind: "k", idempotencyKey: "i".repeat(256) },
    [OK_ROUTE],
    "notification.idempotencyKey",
  ],
  [
    "idempotencyKey a number",
    { kind: "k", idempotencyKey: 42 },
    [OK_ROUTE],
    "notification.idempotencyKey",
  ],
  [
    "idempotencyKey with NUL",
    { kind: "k", idempotencyKey: "k\u0000" },
    [OK_ROUTE],
    "notification.idempotencyKey",
  ],
  // Payloads
  ["payload 1 MiB + 1 of ASCII", { kind: "k", payload: { blob: "x".repeat(1_048_576) } }, [
    OK_ROUTE,
  ], "notification.payload"],
  [
    "payload 1.2 MB of 2-byte characters",
    { kind: "k", payload: "é".repeat(600_000) },
    [OK_ROUTE],
    "notification.payload",
  ],
  [
    "payload 70 objects deep",
    { kind: "k", payload: nested(70, (v) => ({ a: v })) },
    [OK_ROUTE],
    `notification.payload${".a".repeat(65)}`,
  ],
  [
    "payload 10,000 arrays deep",
    { kind: "k", payload: nested(10_000, (v) => [v]) },
    [OK_ROUTE],
    `notification.payload${"[0]".repeat(65)}`,
  ],
  [
    "payload cyclic object",
    { kind: "k", payload: cyclic },
    [OK_ROUTE],
    "notification.payload.self",
  ],
  [
    "payload cyclic array",
    { kind: "k", payload: cyclicArray },
    [OK_ROUTE],
    "notification.payload[0]",
  ],
  ["payload a BigInt", { kind: "k", payload: 10n }, [OK_ROUTE], "notification.payload"],
  [
    "payload with a nested BigInt",
    { kind: "k", payload: { amount: 2n ** 70n } },
    [OK_ROUTE],
    "notification.payload.amount",
  ],
  ["payload NaN", { kind: "k", payload: { x: Number.NaN } }, [OK_ROUTE], "notification.payload.x"],
  [
    "payload -Infinity",
    { kind: "k", payload: [1, -Infinity] },
    [OK_ROUTE],
    "notification.payload[1]",
  ],
  [
    "payload with undefined in an array",
    { kind: "k", payload: [1, undefined] },
    [OK_ROUTE],
    "notification.payload[1]",
  ],
  [
    "payload with a function",
    { kind: "k", payload: { f: () => 1 } },
    [OK_ROUTE],
    "notification.payload.f",
  ],
  [
    "payload with a symbol",
    { kind: "k", payload: { s: Symbol("x") } },
    [OK_ROUTE],
    "notification.payload.s",
  ],
  [
    "payload with a Date",
    { kind: "k", payload: { when: new Date(0) } },
    [OK_ROUTE],
    "notification.payload.when",
  ],
  [
    "payload with a Map",
    { kind: "k", payload: { m: new Map([[1, 2]]) } },
    [OK_ROUTE],
    "notification.payload.m",
  ],
  [
    "payload with bytes",
    { kind: "k", payload: { b: new Uint8Array(4) } },
    [OK_ROUTE],
    "notification.payload.b",
  ],
  [
    "payload with a lying toJSON",
    { kind: "k", payload: { toJSON: () => ({}) } },
    [OK_ROUTE],
    "notification.payload.toJSON",
  ],
  [
    "payload string with NUL",
    { kind: "k", payload: { note: "a\u0000b" } },
    [OK_ROUTE],
    "notification.payload.note",
  ],
  [
    "payload key with NUL",
    { kind: "k", payload: { ["a\u0000"]: 1 } },
    [OK_ROUTE],
    "notification.payload key",
  ],
  [
    "payload lone high surrogate",
    { kind: "k", payload: { name: "\ud83d" } },
    [OK_ROUTE],
    "notification.payload.name",
  ],
  [
    "payload lone low surrogate",
    { kind: "k", payload: ["ok", "\ude00"] },
    [OK_ROUTE],
    "notification.payload[1]",
  ],
  [
    "payload key with a lone surrogate",
    { kind: "k", payload: { ["\udfff"]: 1 } },
    [OK_ROUTE],
    "notification.payload key",
  ],
  [
    "payload with a throwing getter",
    { kind: "k", payload: throwingGetter },
    [OK_ROUTE],
    "notification.payload.boom",
  ],
  // Routes
  ["routes null", OK_NOTE, null, "routes"],
  ["routes an object", OK_NOTE, { 0: OK_ROUTE }, "routes"],
  ["routes empty", OK_NOTE, [], "routes"],
  ["1001 routes", OK_NOTE, Array.from({ length: 1001 }, () => OK_ROUTE), "routes"],
  ["route null", OK_NOTE, [null], "routes[0]"],
  ["route a string", OK_NOTE, ["log:ops"], "routes[0]"],
  ["channel upper-case", OK_NOTE, [{ channel: "LOG", destination: "x" }], "routes[0].channel"],
  [
    "channel full of SQL",
    OK_NOTE,
    [{ channel: "log'; DROP TABLE x; --", destination: "x" }],
    "routes[0].channel",
  ],
  [
    "channel 64 characters",
    OK_NOTE,
    [{ channel: "c".repeat(64), destination: "x" }],
    "routes[0].channel",
  ],
  [
    "channel starting with a digit",
    OK_NOTE,
    [{ channel: "1log", destination: "x" }],
    "routes[0].channel",
  ],
  ["channel a number", OK_NOTE, [{ channel: 7, destination: "x" }], "routes[0].channel"],
  ["destination missing", OK_NOTE, [{ channel: "log" }], "routes[0].destination"],
  ["destination a number", OK_NOTE, [{ channel: "log", destination: 42 }], "routes[0].destination"],
  [
    "destination blank",
    OK_NOTE,
    [{ channel: "log", destination: " \t\n " }],
    "routes[0].destination",
  ],
  ["destination with leading space", OK_NOTE, [{
    channel: "webhook",
    destination: " https://a.example/",
  }], "routes[0].destination"],
  [
    "destination 4097 characters",
    OK_NOTE,
    [{ channel: "log", destination: "d".repeat(4097) }],
    "routes[0].destination",
  ],
  [
    "destination with a 10 kB host name",
    OK_NOTE,
    [{ channel: "webhook", destination: `https://${"a".repeat(10_240)}.example.com/${SECRET}` }],
    "routes[0].destination",
  ],
  ["destination with NUL", OK_NOTE, [{
    channel: "webhook",
    destination: "https://a.example/\u0000",
  }], "routes[0].destination"],
  [
    "destination with a lone surrogate",
    OK_NOTE,
    [{ channel: "log", destination: "ops\udbff" }],
    "routes[0].destination",
  ],
  [
    "second route bad",
    OK_NOTE,
    [OK_ROUTE, { channel: "log", destination: "x\u0000" }],
    "routes[1].destination",
  ],
  ["deliverAt a string", OK_NOTE, [{ ...OK_ROUTE, deliverAt: "tomorrow" }], "routes[0].deliverAt"],
  [
    "deliverAt an invalid Date",
    OK_NOTE,
    [{ ...OK_ROUTE, deliverAt: new Date(Number.NaN) }],
    "routes[0].deliverAt",
  ],
  [
    "deliverAt epoch milliseconds",
    OK_NOTE,
    [{ ...OK_ROUTE, deliverAt: 1_700_000_000_000 }],
    "routes[0].deliverAt",
  ],
  ["priority 1.5", OK_NOTE, [{ ...OK_ROUTE, priority: 1.5 }], "routes[0].priority"],
  ["priority 2^31", OK_NOTE, [{ ...OK_ROUTE, priority: 2 ** 31 }], "routes[0].priority"],
  ["priority a string", OK_NOTE, [{ ...OK_ROUTE, priority: "1" }], "routes[0].priority"],
  ["priority NaN", OK_NOTE, [{ ...OK_ROUTE, priority: Number.NaN }], "routes[0].priority"],
  ["maxAttempts 0", OK_NOTE, [{ ...OK_ROUTE, maxAttempts: 0 }], "routes[0].maxAttempts"],
  ["maxAttempts 1001", OK_NOTE, [{ ...OK_ROUTE, maxAttempts: 1001 }], "routes[0].maxAttempts"],
  ["maxAttempts 2.5", OK_NOTE, [{ ...OK_ROUTE, maxAttempts: 2.5 }], "routes[0].maxAttempts"],
];

// --- Schema names ---------------------------------------------------------------------------

const SCHEMAS: [string, unknown, string?][] = [
  ["quote and DROP", 'herald"; DROP SCHEMA public CASCADE; --'],
  ["single quote", "herald'--"],
  ["upper-case", "Herald"],
  ["leading digit", "1herald"],
  ["empty", ""],
  ["64 characters", "s".repeat(64)],
  ["dotted", "herald.notifications"],
  ["trailing space", "herald "],
  ["NUL", "herald\u0000x"],
  ["non-ASCII", "héràld"],
  ["semicolon", "herald;"],
  ["already quoted", '"herald"'],
  ["a number", 42],
  [
    "a system schema (pg_catalog)",
    "pg_catalog",
  ],
];

// --- Channel configuration ------------------------------------------------------------------

const SID = `AC${"0".repeat(32)}`;
const CONFIG: Refusal[] = [
  {
    name: "webhook secret not whsec_/base64",
    field: "secret",
    run: () => webhookChannel({ secret: "whsec_!!!" }),
  },
  {
    name: "webhook allowAddresses bad CIDR",
    field: "allowAddresses",
    run: () => webhookChannel({ allowAddresses: ["10.0.0.0/99"] }),
  },
  {
    name: "webhook allowAddresses a host name",
    field: "allowAddresses",
    run: () => webhookChannel({ allowAddresses: ["example.com"] }),
  },
  { name: "webhook timeoutMs 0", field: "timeoutMs", run: () => webhookChannel({ timeoutMs: 0 }) },
  {
    name: "slack timeoutMs NaN",
    field: "timeoutMs",
    run: () => slackChannel({ timeoutMs: Number.NaN }),
  },
  {
    name: "email provider unknown",
    field: "provider",
    run: () => emailChannel({ provider: "mailgun" as Any, apiKey: "k", from: "a@example.com" }),
  },
  {
    name: "email apiKey blank",
    field: "apiKey",
    run: () => emailChannel({ provider: "resend", apiKey: " ", from: "a@example.com" }),
  },
  {
    name: "email from with CRLF (header injection)",
    field: "from",
    run: () =>
      emailChannel({
        provider: "resend",
        apiKey: "k",
        from: "a@example.com\r\nBcc: all@example.com",
      }),
  },
  {
    name: "email baseUrl with credentials",
    field: "baseUrl",
    run: () =>
      emailChannel({
        provider: "resend",
        apiKey: "k",
        from: "a@example.com",
        baseUrl: `https://u:${SECRET}@api.example.com`,
      }),
  },
  {
    name: "email baseUrl non-http scheme carrying credentials",
    field: "baseUrl",
    run: () =>
      emailChannel({
        provider: "resend",
        apiKey: "k",
        from: "a@example.com",
        baseUrl: `ftp://u:${SECRET}@api.example.com`,
      }),
    message: new RegExp(`^((?!${SECRET}).)*$`, "s"),
  },
  {
    name: "sms accountSid malformed",
    field: "accountSid",
    run: () => smsChannel({ accountSid: "AC123", authToken: "t", from: "+15005550006" }),
  },
  {
    name: "sms authToken missing",
    field: "authToken",
    run: () => smsChannel({ accountSid: SID, authToken: "", from: "+15005550006" }),
  },
  {
    name: "sms baseUrl with a query",
    field: "baseUrl",
    run: () =>
      smsChannel({
        accountSid: SID,
        authToken: "t",
        from: "+1",
        baseUrl: "https://x.example/?a=1",
      }),
  },
  {
    name: "telegram botToken malformed",
    field: "botToken",
    run: () => telegramChannel({ botToken: `bot ${SECRET}` }),
  },
  {
    name: "telegram apiUrl javascript:",
    field: "apiUrl",
    run: () => telegramChannel({ botToken: "1:a", apiUrl: "javascript:alert(1)" }),
  },
];

// --- Destinations refused by the channels at send time --------------------------------------

/** [channel, destination (PORT is the live server's port), what last_error must say] */
const DESTINATIONS: [string, string, RegExp][] = [
  ["webhook", `not a url ${SECRET}`, /not a valid absolute URL/],
  ["webhook", `//hooks.example.com/${SECRET}`, /not a valid absolute URL/],
  ["webhook", `/relative/${SECRET}`, /not a valid absolute URL/],
  ["webhook", `ftp://files.example.com/drop/${SECRET}`, /scheme "ftp:" is not http\(s\)/],
  ["webhook", "file:///etc/passwd", /scheme "file:" is not http\(s\)/],
  ["webhook", "javascript:alert(document.cookie)", /scheme "javascript:" is not http\(s\)/],
  ["webhook", "data:text/plain,hello", /scheme "data:" is not http\(s\)/],
  ["webhook", "gopher://127.0.0.1:6379/_FLUSHALL", /scheme "gopher:" is not http\(s\)/],
  ["webhook", `http://admin:${SECRET}@hooks.example.com/x`, /must not contain credentials/],
  ["webhook", `https://:${SECRET}@hooks.example.com/`, /must not contain credentials/],
  ["webhook", `https://${SECRET}@hooks.example.com/`, /must not contain credentials/],
  ["webhook", `http://127.0.0.1:PORT/${SECRET}`, /loopback address \(127\.0\.0\.1\)/],
  ["webhook", `http://localhost:PORT/${SECRET}`, /resolves to a loopback address/],
  ["webhook", "http://[::1]:PORT/", /loopback address \(::1\)/],
  ["webhook", "http://0.0.0.0:PORT/", /unspecified address/],
  ["webhook", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", /link-local/],
  ["webhook", "http://10.0.0.1/", /private address/],
  ["webhook", "http://100.64.0.1/", /carrier-grade NAT/],
  ["webhook", "http://0x7f.0.0.1:PORT/", /loopback/],
  ["webhook", "http://2130706433:PORT/", /loopback/],
  ["webhook", "http://0177.0.0.1:PORT/", /loopback/],
  ["webhook", "http://[::ffff:127.0.0.1]:PORT/", /loopback \(IPv4-mapped\)/],
  ["webhook", "http://１２７．０．０．１:PORT/", /loopback address \(127\.0\.0\.1\)/],
  ["webhook", "http://bücher.example/", /resolves to a private address/],
  ["webhook", "http://xn--80ak6aa92e.com/", /resolves to a private address/],
  ["webhook", `http://${"a".repeat(4000)}.example/`, /resolves to a private address|not a valid/],
  ["webhook", "http://hooks.example.com:99999/", /not a valid absolute URL/],
  ["webhook", "http://[fe80::1%25eth0]/", /not a valid absolute URL/],
  ["webhook", "http://hooks.exa\tmple.com/", /resolves to a private address/],
  ["webhook", "http://hooks.example.com\\@127.0.0.1/", /resolves to a private address/],
  ["webhook", "http://127.0.0.1.nip.io/", /resolves to a private address/],
  ["webhook-https", `http://hooks.example.com/${SECRET}`, /is not https \(https-only mode\)/],
  [
    "slack",
    `https://hooks.slack.com.evil.internal/services/T0/B0/${SECRET}`,
    /slack: refused destination: host resolves to a private/,
  ],
  ["slack", `slack://general/${SECRET}`, /slack: the destination scheme "slack:"/],
  ["slack", "http://[::]/", /unspecified/],
  ["email", "not-an-address", /not a single e-mail address/],
  ["email", "ada@example.com\r\nBcc: everyone@example.com", /not a single e-mail address/],
  ["email", "Ada <ada@example.com>", /not a single e-mail address/],
  ["email", "a@example.com, b@example.com", /not a single e-mail address/],
  ["email", `"'; DROP TABLE notification_routes; --"@example.com`, /not a single e-mail address/],
  ["email", `${"a".repeat(250)}@example.com`, /not a single e-mail address/],
  ["sms", "5551234", /not an E\.164 phone number/],
  ["sms", "+0123456789", /not an E\.164 phone number/],
  ["sms", "+1 555 123 4567", /not an E\.164 phone number/],
  ["sms", "+15551234567; DROP TABLE x", /not an E\.164 phone number/],
  ["sms", "+1555123456789012345", /not an E\.164 phone number/],
  ["telegram", "@ab", /numeric chat id or an @channel username/],
  ["telegram", "chat-123", /numeric chat id or an @channel username/],
  ["telegram", "123456789012345678901", /numeric chat id or an @channel username/],
  ["telegram", "@channel/../../sendMessage", /numeric chat id or an @channel username/],
];

// --- The program's flags --------------------------------------------------------------------

/** [args, extra env, what stderr must name] */
const CLI: [string[], Record<string, string>, RegExp, string?][] = [
  [["enqueue", "--channel", "log", "--to", "x", "--priority", "1.5"], {}, /priority/],
  [["enqueue", "--channel", "log", "--to", "x", "--max-attempts", "0"], {}, /max-?attempts/i],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--payload", '{"a":"\\u0000"}'],
    {},
    /'notification\.payload\.a': must not contain NUL/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--payload", '["\\ud800"]'],
    {},
    /'notification\.payload\[0\]': must not contain lone/,
  ],
  [
    [
      "enqueue",
      "--channel",
      "log",
      "--to",
      "x",
      "--payload",
      `${"[".repeat(100)}${"]".repeat(100)}`,
    ],
    {},
    /nests deeper than 64/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--payload", '{"n":1e400}'],
    {},
    /'notification\.payload\.n': must be a finite number/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--kind", "k".repeat(300)],
    {},
    /'notification\.kind'/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--idempotency-key", "i".repeat(300)],
    {},
    /'notification\.idempotencyKey'/,
  ],
  [["enqueue", "--channel", "log", "--to", ""], {}, /'routes\[0\]\.destination'/],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--to", ` https://hooks.example.com/${SECRET}`],
    {},
    /'routes\[1\]\.destination': must not start or end with whitespace/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--payload", "{}", "--payload-file", "/dev/null"],
    {},
    /'--payload': give --payload or --payload-file/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--payload-file", "/nonexistent/herald/p.json"],
    {},
    /'--payload-file': cannot be read \(ENOENT\)/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--deliver-at", "2026-02-30T25:00:00Z"],
    {},
    /'--deliver-at'/,
  ],
  [["stats", "--schema", 'herald"; DROP SCHEMA public CASCADE; --'], {}, /'schema'/],
  [["routes"], { HERALD_SCHEMA: "Robert'); DROP TABLE notifications; --" }, /'schema'/],
  [["routes", "--limit", "0"], {}, /'--limit'/],
  [["routes", "--limit", "lots"], {}, /'--limit': must be a number/],
  [["run", "--interval", "Infinity"], {}, /'--interval'/],
  [
    ["run", "--send-timeout", "0"],
    {},
    /--send-timeout/,
  ],
  [
    ["run", "--shutdown-timeout=-1"],
    {},
    /--shutdown-timeout/,
  ],
  [["run", "--metrics-port", "80.5"], {}, /'--metrics-port'/],
  [["run", "--once"], { HERALD_LISTEN: "perhaps" }, /'HERALD_LISTEN'/],
  [["run", "--once"], { HERALD_WEBHOOK_SECRET: `whsec_${SECRET}!` }, /'HERALD_WEBHOOK_SECRET'/],
  [["run", "--once"], { HERALD_ALLOW_ADDRESSES: "10.0.0.0/99" }, /'HERALD_ALLOW_ADDRESSES'/],
  [["run", "--once"], { HERALD_EMAIL_PROVIDER: "resend" }, /'HERALD_EMAIL_API_KEY': is required/],
  [["retry", "--failed", "--since", "2026-13-45"], {}, /'--since'/],
  [["prune", "--older-than=-1d"], {}, /'--older-than'/],
  [["cancel", "'; DELETE FROM notification_routes; --"], {}, /'ROUTE_ID'/],
];

const COUNTS = {
  worker: WORKER.length,
  enqueue: ENQUEUE_TABLE.length,
  schema: SCHEMAS.length,
  sql: 12,
  operator: 10,
  channelConfig: CONFIG.length,
  destination: DESTINATIONS.length,
  cli: CLI.length,
};
const TOTAL = Object.values(COUNTS).reduce((a, b) => a + b, 0);
console.log(`bad_input_test: ${TOTAL} hostile cases ${JSON.stringify(COUNTS)}`);

// --- The tests ------------------------------------------------------------------------------

function isRefusal(err: unknown, field: string): err is InvalidArgumentError {
  return err instanceof InvalidArgumentError && err.code === "HERALD_INVALID_ARGUMENT" &&
    err.field === field && err.message.includes(`'${field}'`);
}

async function refused(run: () => unknown, field: string, message?: RegExp): Promise<void> {
  let thrown: unknown;
  try {
    await run();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, `expected a refusal naming '${field}', got success`);
  assert.ok(
    isRefusal(thrown, field),
    `expected InvalidArgumentError naming '${field}', got ${String(thrown).slice(0, 300)}`,
  );
  if (message) assert.match(thrown.message, message);
  assert.ok(thrown.message.length < 400, "messages stay short");
  assert.equal(thrown.message.includes(SECRET), false, "the message echoes no secret");
}

describe(`hostile input on ${RUNTIME}`, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let store: PostgresStore;
  let sql: postgres.Sql;
  let schema: string;
  const sum = (notificationIds?: readonly string[]) =>
    checksum(sql, schema, notificationIds ? { notificationIds } : {});

  before(async () => {
    env = await freshStore();
    ({ store, sql, schema } = env);
    await store.migrate();
    await seed(store, sql);
  });
  after(async () => {
    await env.cleanup();
    await noStore.close();
  });

  /** Runs `body`, then checks that no row of any table changed. */
  const unchanged = async (body: () => Promise<void>): Promise<void> => {
    const before = await sum();
    await body();
    assert.equal(await sum(), before, "the tables' rows are unchanged");
  };

  describe("worker options", () => {
    for (const c of WORKER) {
      it(c.name, () => unchanged(() => refused(c.run, c.field, c.message)));
    }
  });

  describe("enqueue arguments (store.enqueue and enqueue(tx) alike)", () => {
    for (const [name, notification, routes, field, todo] of ENQUEUE_TABLE) {
      it(name, todo ? { todo } : {}, () =>
        unchanged(async () => {
          await refused(() => store.enqueue(notification as Any, routes as Any), field);
          await refused(
            () => sql.begin((tx) => enqueue(tx, notification as Any, routes as Any, { schema })),
            field,
          );
        }));
    }
  });

  describe("schema names are validated before any SQL", () => {
    for (const [name, value, todo] of SCHEMAS) {
      it(name, todo ? { todo } : {}, () =>
        unchanged(async () => {
          await refused(
            () => new PostgresStore({ url: DATABASE_URL, schema: value as Any }),
            "schema",
          );
          await refused(
            () => enqueue(sql, OK_NOTE, [OK_ROUTE], { schema: value as Any }),
            "schema",
          );
          const [row] = await sql`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${
            String(value).replaceAll("\u0000", "")
          }`;
          if (value !== "pg_catalog") assert.equal(row?.["n"], 0, "no such schema was created");
        }));
    }
  });

  describe("strings full of SQL reach Postgres only as parameters", () => {
    const SQLISH = [
      "'); DROP TABLE notifications; --",
      "x' OR '1'='1",
      "$$; DELETE FROM notification_routes; $$",
      "\\'; SELECT pg_sleep(10); --",
      "Robert'); DROP TABLE route_attempts;--",
    ];
    /** Enqueues, then checks the stored text is exactly what was given and nothing else moved. */
    const storedVerbatim = async (
      kind: string,
      destination: string,
      payload: Any,
      key?: string,
    ) => {
      const others = await sum([NO_ID]);
      const res = await store.enqueue(
        { kind, payload, ...(key === undefined ? {} : { idempotencyKey: key }) },
        [{ channel: "log", destination, deliverAt: new Date(Date.now() + 365 * 86_400_000) }],
      );
      const [row] = await sql`
        SELECT n.kind, n.payload, n.idempotency_key, r.destination
        FROM ${sql(schema)}.notifications n
        JOIN ${sql(schema)}.notification_routes r ON r.notification_id = n.id
        WHERE n.id = ${res.notificationId}`;
      assert.deepEqual(
        {
          kind: row?.["kind"],
          payload: row?.["payload"],
          key: row?.["idempotency_key"],
          destination: row?.["destination"],
        },
        { kind, payload, key: key ?? null, destination },
      );
      assert.equal(await sum([res.notificationId]), others, "no other row changed");
      return res;
    };
    SQLISH.forEach((s, i) => {
      it(`stored verbatim: ${s}`, async () => {
        const payload = { [s]: s, list: [s, { nested: s }] };
        await storedVerbatim(s, `${s} #${i}`, payload, `${s}:${i}`);
      });
    });
    it("an SQL-laden idempotency key still deduplicates", async () => {
      const key = "k' OR 1=1; --";
      const first = await storedVerbatim("dup", "x", {}, key);
      const again = await store.enqueue({ kind: "dup", idempotencyKey: key }, [OK_ROUTE]);
      assert.equal(again.duplicate, true);
      assert.deepEqual(again.routeIds, first.routeIds);
    });
    it("listRoutes with an SQL-laden channel filter finds nothing", async () => {
      assert.deepEqual(await store.listRoutes({ channel: "log' OR '1'='1" }), []);
    });
    it("listRoutes refuses an SQL-laden status", () =>
      unchanged(() =>
        refused(() => store.listRoutes({ status: "queued' OR 1=1 --" as Any }), "status")
      ));
    it("getRoute and attempts treat an SQL-laden id as unknown", async () => {
      assert.equal(await store.getRoute("' OR 1=1 --"), undefined);
      assert.deepEqual(await store.attempts("1' OR '1'='1"), []);
    });
    it("cancel refuses SQL-laden ids", () =>
      unchanged(() => refused(() => store.cancel(["x' OR 1=1 --"]), "routeIds")));
    it("retry refuses an id with SQL after a UUID", () =>
      unchanged(() =>
        refused(
          () => store.retry({ ids: ["00000000-0000-0000-0000-000000000000'; --"] }),
          "routeIds",
        )
      ));
    it("retry --failed with an SQL-laden channel changes nothing", async () => {
      const before = await sum();
      const res = await store.retry({ failed: true, channel: "log' OR '1'='1" });
      assert.equal(res.changed, 0);
      assert.equal(await sum(), before);
    });
  });

  describe("operator calls", () => {
    const OPS: Refusal[] = [
      { name: "listRoutes limit 0", field: "limit", run: () => store.listRoutes({ limit: 0 }) },
      {
        name: "listRoutes limit 10001",
        field: "limit",
        run: () => store.listRoutes({ limit: 10_001 }),
      },
      { name: "listRoutes limit 1.5", field: "limit", run: () => store.listRoutes({ limit: 1.5 }) },
      {
        name: "prune olderThanMs -1",
        field: "olderThanMs",
        run: () => store.prune({ olderThanMs: -1 }),
      },
      {
        name: "prune olderThanMs NaN",
        field: "olderThanMs",
        run: () => store.prune({ olderThanMs: Number.NaN }),
      },
      {
        name: "prune queued routes",
        field: "statuses",
        run: () => store.prune({ olderThanMs: 0, statuses: ["queued" as Any] }),
      },
      {
        name: "prune no statuses",
        field: "statuses",
        run: () => store.prune({ olderThanMs: 0, statuses: [] }),
      },
      {
        name: "prune batchSize 0",
        field: "batchSize",
        run: () => store.prune({ olderThanMs: 0, batchSize: 0 }),
      },
      { name: "cancel nothing", field: "routeIds", run: () => store.cancel([]) },
      { name: "retry no ids", field: "routeIds", run: () => store.retry({ ids: [] }) },
    ];
    assert.equal(OPS.length, COUNTS.operator);
    for (const c of OPS) it(c.name, () => unchanged(() => refused(c.run, c.field, c.message)));
  });

  describe("channel configuration", () => {
    for (const c of CONFIG) {
      it(
        c.name,
        c.todo ? { todo: c.todo } : {},
        () => unchanged(() => refused(c.run, c.field, c.message)),
      );
    }
  });

  describe("destinations refused by the channels at send time", () => {
    let server: TestServer;
    let worker: Worker;
    const logged: string[] = [];
    before(async () => {
      server = await startServer((_req, res) => void res.writeHead(204).end());
      // Every name resolves to a private address, except localhost, which is loopback: no
      // test depends on the network, and a host name can never slip past the guard.
      const resolve = (host: string) =>
        Promise.resolve(host === "localhost" ? ["127.0.0.1", "::1"] : ["10.20.30.40"]);
      const logger: Logger = {
        log: (level, msg, fields) => logged.push(JSON.stringify({ level, msg, ...fields })),
      };
      const channels: Record<string, Channel> = {
        webhook: webhookChannel({ resolve, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
        "webhook-https": webhookChannel({ resolve, httpsOnly: true }),
        slack: slackChannel({ resolve }),
        email: emailChannel({
          provider: "resend",
          apiKey: `re_${SECRET}`,
          from: "a@example.com",
          baseUrl: server.url,
        }),
        sms: smsChannel({
          accountSid: SID,
          authToken: SECRET,
          from: "+15005550006",
          baseUrl: server.url,
        }),
        telegram: telegramChannel({ botToken: `123:${SECRET}`, apiUrl: server.url }),
      };
      worker = new Worker({ store, channels, logger, sendTimeoutMs: 5_000 });
    });
    after(async () => {
      await server.close();
    });

    for (const [channel, template, expected] of DESTINATIONS) {
      it(`${channel}: ${JSON.stringify(template.slice(0, 70))}`, async () => {
        const destination = template.replaceAll("PORT", String(server.port));
        const { notificationId, routeIds: [id] } = await store.enqueue(
          { kind: "hostile", payload: { text: "hi", subject: "s" } },
          [{ channel, destination }],
        );
        const others = await sum([notificationId]);
        logged.length = 0;
        assert.equal(await worker.tick(), 1);
        const route = await store.getRoute(id!);
        assert.equal(route?.status, "failed", `${route?.status}: ${route?.lastError}`);
        assert.equal(route?.attempts, 1, "failed at once: permanent");
        assert.match(route?.lastError ?? "", expected);
        assert.doesNotMatch(route?.lastError ?? "", /gave up after/);
        const log = await store.attempts(id!);
        assert.deepEqual(log.map((a) => [a.outcome, a.error]), [["failed", route?.lastError]]);
        const seen = [route?.lastError ?? "", ...logged].join("\n");
        assert.equal(seen.includes(SECRET), false, `a secret leaked: ${seen}`);
        assert.equal(server.requests.length, 0, "nothing reached the network");
        assert.equal(await sum([notificationId]), others, "every other row is unchanged");
      });
    }
  });

  describe("the program's flags (spawned)", () => {
    let results: Awaited<ReturnType<typeof runProgramWithin>>[] = [];
    before(async () => {
      const pg = { DATABASE_URL, HERALD_SCHEMA: schema };
      const before = await sum();
      results = await inBatches(
        CLI.map(([args, extra]) => () => runProgramWithin(args, { ...pg, ...extra }, 60_000)),
        6,
      );
      assert.equal(await sum(), before, "no CLI case changed a row");
    });
    CLI.forEach(([args, extra, pattern, todo], i) => {
      const label = [...Object.entries(extra).map(([k, v]) => `${k}=${v}`), ...args]
        .join(" ").slice(0, 90);
      it(label, todo ? { todo } : {}, () => {
        const r = results[i]!;
        assert.equal(r.timedOut, false, "the program exited by itself");
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, pattern);
        assert.equal((r.stdout + r.stderr).includes(SECRET), false, "no secret echoed");
        assert.ok(r.stderr.length < 1_000, "the message is short");
      });
    });
  });
});
