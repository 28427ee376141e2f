/**
 * Hostile input, the program's flags and environment: each must exit 2 with a short
 * message naming the culprit, echo no secret and change no row.
 *
 * @module
 */
import { SECRET } from "./_hostile.ts";

/** [args, extra environment, what stderr must name, a known bug (reported, not enforced)] */
export type CliCase = [args: string[], env: Record<string, string>, stderr: RegExp, todo?: string];

/** Bad command lines. */
export const CLI: readonly CliCase[] = [
  [["enqueue", "--channel", "log", "--to", "x", "--priority", "1.5"], {}, /priority/],
  [["enqueue", "--channel", "log", "--to", "x", "--max-attempts", "0"], {}, /max-?attempts/i],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--payload", '{"a":"\\u0000"}'],
    {},
    /'--payload': at payload\.a: must not contain NUL/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--payload", '["\\ud800"]'],
    {},
    /'--payload': at payload\[0\]: must not contain lone/,
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
    /'--payload': at payload\.n: must be a finite number/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--kind", "k".repeat(300)],
    {},
    /'--kind'/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--idempotency-key", "i".repeat(300)],
    {},
    /'--idempotency-key'/,
  ],
  [["enqueue", "--channel", "log", "--to", ""], {}, /'--to': the 1st: /],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--to", ` https://hooks.example.com/${SECRET}`],
    {},
    /'--to': the 2nd: must not start or end with whitespace/,
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
  [
    ["enqueue", "--channel", "log", "--to", "x", "--deliver-at", "2030-02-30T00:00:00Z"],
    {},
    /'--deliver-at': must be an ISO 8601 time/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--deliver-at", "99999999d"],
    {},
    /'--deliver-at': names a time outside the years 1 to 9999/,
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
  // Named as given: from the environment, the variable; and decimal only (not hex's 16).
  [["run", "--once"], { HERALD_CONCURRENCY: "abc" }, /'HERALD_CONCURRENCY': must be a number/],
  [["run", "--once"], { HERALD_CONCURRENCY: "0x10" }, /'HERALD_CONCURRENCY': must be a number/],
  [["run", "--once"], { HERALD_CONCURRENCY: "-1" }, /'HERALD_CONCURRENCY': must be an integer/],
  [["routes", "--limit", "0b11"], {}, /'--limit': must be a number/],
  [["run", "--once"], { HERALD_METRICS_PORT: "70000" }, /'HERALD_METRICS_PORT': must be a port/],
  [
    ["run", "--once"],
    { HERALD_DISABLE_AFTER: "abc" },
    /'HERALD_DISABLE_AFTER': must be a duration/,
  ],
  [
    ["enqueue", "--channel", "log", "--to", "x", "--deliver-at", "0000-06-01T00:00:00Z"],
    {},
    /'--deliver-at': names a time outside the years 1 to 9999/,
  ],
  [["run", "--once"], { HERALD_WEBHOOK_SECRET: `whsec_${SECRET}!` }, /'HERALD_WEBHOOK_SECRET'/],
  [["run", "--once"], { HERALD_ALLOW_ADDRESSES: "10.0.0.0/99" }, /'HERALD_ALLOW_ADDRESSES'/],
  [["run", "--once"], { HERALD_EMAIL_PROVIDER: "resend" }, /'HERALD_EMAIL_API_KEY': is required/],
  [["retry", "--failed", "--since", "2026-13-45"], {}, /'--since'/],
  [["prune", "--older-than=-1d"], {}, /'--older-than'/],
  [["cancel", "'; DELETE FROM notification_routes; --"], {}, /'ROUTE_ID'/],
];
