/**
 * Hostile input, `enqueue` arguments: one row per bad notification or route, naming the field
 * the refusal must name. Both `store.enqueue` and `enqueue(tx)` are given each row.
 *
 * @module
 */
import { OK_NOTE, OK_ROUTE, SECRET } from "./_hostile.ts";

/** [name, notification, routes, the field the refusal names, a known bug (reported, not enforced)] */
export type EnqueueCase = [
  name: string,
  notification: unknown,
  routes: unknown,
  field: string,
  todo?: string,
];

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

/** Bad `enqueue` arguments, each refused naming the field. */
export const ENQUEUE: readonly EnqueueCase[] = [
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
  [
    "destination with a 4,000-character host name (under the length limit)",
    OK_NOTE,
    [{ channel: "webhook", destination: `https://${"a".repeat(4_000)}.com/${SECRET}` }],
    "routes[0].destination",
  ],
  [
    "destination with a 254-character host name, spelt without '//'",
    OK_NOTE,
    [{ channel: "slack", destination: `https:${"h".repeat(250)}.com/${SECRET}` }],
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
  [
    // The driver writes it as +275760-09-13T…, which Postgres misreads.
    "deliverAt the last Date there is",
    OK_NOTE,
    [{ ...OK_ROUTE, deliverAt: new Date(8.64e15) }],
    "routes[0].deliverAt",
  ],
  ["priority 1.5", OK_NOTE, [{ ...OK_ROUTE, priority: 1.5 }], "routes[0].priority"],
  ["priority 2^31", OK_NOTE, [{ ...OK_ROUTE, priority: 2 ** 31 }], "routes[0].priority"],
  ["priority a string", OK_NOTE, [{ ...OK_ROUTE, priority: "1" }], "routes[0].priority"],
  ["priority NaN", OK_NOTE, [{ ...OK_ROUTE, priority: Number.NaN }], "routes[0].priority"],
  ["maxAttempts 0", OK_NOTE, [{ ...OK_ROUTE, maxAttempts: 0 }], "routes[0].maxAttempts"],
  ["maxAttempts 1001", OK_NOTE, [{ ...OK_ROUTE, maxAttempts: 1001 }], "routes[0].maxAttempts"],
  ["maxAttempts 2.5", OK_NOTE, [{ ...OK_ROUTE, maxAttempts: 2.5 }], "routes[0].maxAttempts"],
  // A misspelt field would otherwise be dropped: sent now, not tomorrow.
  [
    "a route field misspelt (deliver_at)",
    OK_NOTE,
    [{ ...OK_ROUTE, deliver_at: new Date(Date.now() + 86_400_000) }],
    "routes[0].deliver_at",
  ],
  [
    "an unknown field behind a getter that throws (never run)",
    OK_NOTE,
    [{
      ...OK_ROUTE,
      get deliver_at(): Date {
        throw new Error("the getter ran");
      },
    }],
    "routes[0].deliver_at",
  ],
  [
    "a notification field misspelt (idempotency_key), its value a secret",
    { ...OK_NOTE, idempotency_key: SECRET },
    [OK_ROUTE],
    "notification.idempotency_key",
  ],
];
