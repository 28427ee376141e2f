/**
 * Secrets never leave the program: `herald run --once` with every secret in
 * its environment sends to the hostile local receivers, then `stats`,
 * `routes` and `show` read what it left; all of their output is scanned for
 * any piece of a planted secret (the in-process scan is secrets_test.ts).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { inBatches, runProgramWithin } from "../_helpers/hostile_http.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import {
  assertNoLeaks,
  BOT_TOKEN,
  collect,
  type Corpus,
  DB_URL,
  EMAIL_KEY,
  type Peers,
  QUERY_TOKEN,
  SLACK_PATH,
  TWILIO_SID,
  TWILIO_TOKEN,
  usePeers,
  WHSEC,
} from "./_secrets.ts";

checkLeaks();

/** The program's environment: the database (password planted) and every channel's secret. */
function programEnv(p: Peers): Record<string, string> {
  return {
    DATABASE_URL: DB_URL,
    HERALD_SCHEMA: p.schema,
    HERALD_LOG_LEVEL: "debug",
    HERALD_MAX_ATTEMPTS: "1",
    HERALD_ALLOW_HOSTS: "127.0.0.1",
    HERALD_HTTP_TIMEOUT_MS: "2000",
    HERALD_WEBHOOK_SECRET: WHSEC,
    HERALD_EMAIL_PROVIDER: "resend",
    HERALD_EMAIL_API_KEY: EMAIL_KEY,
    HERALD_EMAIL_FROM: "a@example.com",
    HERALD_EMAIL_BASE_URL: p.bad400.url,
    HERALD_TWILIO_ACCOUNT_SID: TWILIO_SID,
    HERALD_TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    HERALD_TWILIO_FROM: "+15005550006",
    HERALD_TWILIO_BASE_URL: p.bad503.url,
    HERALD_TELEGRAM_BOT_TOKEN: BOT_TOKEN,
    HERALD_TELEGRAM_API_URL: p.tg400.url,
  };
}

/** Enqueues one route per channel, secrets planted in the destinations; their ids. */
async function enqueueLeaky(p: Peers): Promise<readonly string[]> {
  const before = await p.admin`SELECT route_id FROM ${p.admin(p.schema)}.notification_routes`;
  const known = new Set(before.map((r) => r["route_id"] as string));
  const { routeIds } = await p.store.enqueue(
    { kind: "leak.cli", payload: { text: "hello", subject: "s", html: "<p>x</p>" } },
    [
      { channel: "webhook", destination: `${p.bad400.url}/hook?token=${QUERY_TOKEN}` },
      { channel: "slack", destination: `${p.bad503.url}${SLACK_PATH}` },
      { channel: "slack", destination: `http://127.0.0.1:${p.closed}${SLACK_PATH}` },
      // Spellings the URL parser takes (and a channel sends to) without "//"; each to
      // an origin of its own (Slack's default rate is per destination, 1 a second).
      { channel: "slack", destination: `${p.bad400.url.replace("//", "")}${SLACK_PATH}` },
      { channel: "slack", destination: `${p.tg400.url}${SLACK_PATH}`.replaceAll("/", "\\") },
      { channel: "email", destination: "ada@example.com" },
      { channel: "sms", destination: "+4915112345678" },
      { channel: "telegram", destination: "@heraldtest" },
    ],
  );
  assert.ok(routeIds.every((id) => !known.has(id)));
  return routeIds;
}

/** The read commands run after `run --once`; the last one must fail (exit 2). */
function readCommands(routeIds: readonly string[]): string[][] {
  return [
    ["stats"],
    ["stats", "--json"],
    ["routes", "--limit", "200"],
    ["routes", "--json", "--limit", "200"],
    ...routeIds.slice(0, 5).map((id) => ["show", id, "--json"]),
    ["show", routeIds[1]!],
    // A bad flag next to a password-bearing --database-url.
    ["routes", "--database-url", DB_URL, "--limit", "zero"],
  ];
}

describe(`no secret leaks on ${RUNTIME}`, () => {
  const peers = usePeers();

  it("the program: run --once with secrets in its environment, then stats, routes and show", async () => {
    const p = peers();
    const corpus: Corpus = [];
    const routeIds = await enqueueLeaky(p);
    const env = programEnv(p);
    const ran = await runProgramWithin(["run", "--once"], env, 60_000);
    assert.equal(ran.code, 0, ran.stderr);
    collect(corpus, "run --once stdout", ran.stdout);
    collect(corpus, "run --once stderr", ran.stderr);
    for (const id of routeIds) {
      assert.equal((await p.store.getRoute(id))?.status, "failed", `route ${id}`);
    }
    const reads = readCommands(routeIds);
    const outs = await inBatches(reads.map((args) => () => runProgramWithin(args, env, 60_000)), 4);
    outs.forEach((o, i) => {
      const args = reads[i]!.join(" ");
      assert.equal(o.code, i === reads.length - 1 ? 2 : 0, `${args}: ${o.stderr}`);
      collect(corpus, `herald ${args} stdout`, o.stdout);
      collect(corpus, `herald ${args} stderr`, o.stderr);
    });
    assert.match(outs[3]!.stdout, /\/\[redacted\]/, "destinations are printed cut down");
    assertNoLeaks(corpus.filter((c) => c.where.includes("herald") || c.where.startsWith("run")));
  });
});
