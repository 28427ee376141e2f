/**
 * Secrets never leave Herald: webhook URLs with tokens, signing secrets, API
 * keys, auth tokens, bot tokens and the database password are planted in the
 * configuration and the destinations; real sends go to local receivers that
 * answer with errors echoing the whole request back (the nastiest case), or
 * refuse the connection, or never answer. Then everything Herald produced is
 * scanned: every log line (as handed to the logger, before its own
 * redaction), every event, every thrown error, `last_error` and the attempt
 * log on the real Postgres, the program's output (`run --once`, `stats`,
 * `routes`, `show`), and the metrics text.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { PostgresStore } from "../../store.ts";
import { Worker } from "../../worker.ts";
import { Metrics, metricsHandler } from "../../observe/metrics.ts";
import type { Channel } from "../../channels/channel.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { slackChannel } from "../../channels/slack.ts";
import { emailChannel } from "../../channels/email.ts";
import { smsChannel } from "../../channels/sms.ts";
import { telegramChannel } from "../../channels/telegram.ts";
import { jsonLogger, type Logger } from "../../observe/logger.ts";
import { DATABASE_URL, uniqueSchema } from "../_helpers/pg.ts";
import { closedPort, startServer, type TestServer } from "../_helpers/http_server.ts";
import { makeCtx, makeRoute } from "../_helpers/http_route.ts";
import { echoServer, inBatches, leakOf, runProgramWithin } from "../_helpers/hostile_http.ts";
import { RUNTIME } from "../_helpers/spawn.ts";

// Distinctive planted secrets; a leak of any 10-character piece of one fails the test.
const SLACK_TEAM = "T0PLANTED1";
const SLACK_HOOK = "B0PLANTED2";
const SLACK_TOKEN = "SlackPathTok3nQ9zXw";
const QUERY_TOKEN = "QryTok3nHz81kLmNp";
const WHSEC = `whsec_${btoa("PlantedSigningSecret1234")}`;
const EMAIL_KEY = "re_PlantedEmailKey7Yt2";
const TWILIO_SID = `AC${"f".repeat(32)}`;
const TWILIO_TOKEN = "PlantedTwilioAuthTok9";
const BOT_TOKEN = "987654:PlantedTelegramBotTok3n_x";
const DB_PASSWORD = "PlantedDbPassw0rdK4";

const SECRETS: Readonly<Record<string, string>> = {
  "Slack team segment": SLACK_TEAM,
  "Slack hook segment": SLACK_HOOK,
  "Slack path token": SLACK_TOKEN,
  "webhook query token": QUERY_TOKEN,
  "whsec_ signing secret": WHSEC,
  "signing secret key": WHSEC.slice("whsec_".length),
  "email API key": EMAIL_KEY,
  "Twilio auth token": TWILIO_TOKEN,
  "Twilio Basic credential": btoa(`${TWILIO_SID}:${TWILIO_TOKEN}`),
  "Telegram bot token": BOT_TOKEN,
  "Telegram bot secret": BOT_TOKEN.split(":")[1]!,
  "DATABASE_URL password": DB_PASSWORD,
};

/** Everything Herald produced, with where it came from. */
const corpus: { where: string; text: string }[] = [];
const collect = (where: string, text: unknown): void => {
  corpus.push({ where, text: typeof text === "string" ? text : JSON.stringify(text) });
};

/** An error's message, name, stack and causes, all of it. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let i = 0; i < 5 && current !== undefined && current !== null; i++) {
    if (current instanceof Error) {
      parts.push(String(current), current.stack ?? "", JSON.stringify(current));
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join("\n");
}

function assertNoLeaks(items: readonly { where: string; text: string }[]): void {
  const leaks: string[] = [];
  for (const { where, text } of items) {
    for (const [name, secret] of Object.entries(SECRETS)) {
      const piece = leakOf(text, secret);
      if (piece !== undefined) leaks.push(`${name} (${piece}) in ${where}: ${text.slice(0, 400)}`);
    }
  }
  assert.deepEqual(leaks, [], leaks.join("\n\n"));
}

const SLACK_PATH = `/services/${SLACK_TEAM}/${SLACK_HOOK}/${SLACK_TOKEN}`;
const DB_URL = (() => {
  const u = new URL(DATABASE_URL);
  u.password = DB_PASSWORD; // 127.0.0.1 trusts, so any password connects
  return u.href;
})();

describe(`no secret leaks on ${RUNTIME}`, () => {
  const schema = uniqueSchema("herald_sec");
  let admin: postgres.Sql;
  let store: PostgresStore;
  let bad400: TestServer;
  let bad503: TestServer;
  let tg400: TestServer;
  let redirect: TestServer;
  let hang: TestServer;
  let closed: number;

  before(async () => {
    admin = postgres(DATABASE_URL, { max: 2, onnotice: () => {} });
    store = new PostgresStore({ url: DB_URL, schema, max: 4 });
    await store.migrate();
    [bad400, bad503, tg400] = await Promise.all([
      echoServer({ status: 400 }),
      echoServer({ status: 503 }),
      echoServer({ status: 400, json: true }),
    ]);
    redirect = await startServer((req, res) =>
      void res.writeHead(302, {
        location: `https://collector.example/steal?token=${QUERY_TOKEN}&from=${
          encodeURIComponent(req.path)
        }`,
      }).end()
    );
    hang = await startServer(() => {/* never answers */});
    closed = await closedPort();
  });
  after(async () => {
    await Promise.all([bad400, bad503, tg400, redirect, hang].map((s) => s?.close()));
    await store.close();
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end({ timeout: 5 });
  });

  // Short: one receiver never answers. The others answer in a few milliseconds.
  const local = { allowHosts: ["127.0.0.1"], timeoutMs: 400 };
  const channelsFor = (base: string): Record<string, Channel> => ({
    webhook: webhookChannel({ ...local, secret: WHSEC }),
    slack: slackChannel(local),
    email: emailChannel({
      ...local,
      provider: "resend",
      apiKey: EMAIL_KEY,
      from: "a@example.com",
      baseUrl: base,
    }),
    postmark: emailChannel({
      ...local,
      provider: "postmark",
      apiKey: EMAIL_KEY,
      from: "a@example.com",
      baseUrl: base,
    }),
    sendgrid: emailChannel({
      ...local,
      provider: "sendgrid",
      apiKey: EMAIL_KEY,
      from: "a@example.com",
      baseUrl: base,
    }),
    sms: smsChannel({
      ...local,
      accountSid: TWILIO_SID,
      authToken: TWILIO_TOKEN,
      from: "+15005550006",
      baseUrl: base,
    }),
    telegram: telegramChannel({ ...local, botToken: BOT_TOKEN, apiUrl: base }),
  });

  it("in-process: sends to echoing, refusing and silent receivers leak nothing anywhere", async () => {
    const servers = {
      "echo 400": bad400.url,
      "echo 503": bad503.url,
      "echo JSON 400": tg400.url,
      redirect: redirect.url,
      hang: hang.url,
      refused: `http://127.0.0.1:${closed}`,
    };
    // One worker per receiver for the provider channels (their base URL is configuration).
    const raw: Logger = {
      log: (level, msg, fields) => collect(`logger(${level})`, { msg, ...fields }),
    };
    const lines: string[] = [];
    const json = jsonLogger({ level: "debug", write: (l) => lines.push(l) });
    const logger: Logger = {
      log: (level, msg, fields) => {
        raw.log(level, msg, fields);
        json.log(level, msg, fields);
      },
    };
    const metrics = new Metrics();
    let routes = 0;
    for (const [label, base] of Object.entries(servers)) {
      const channels = channelsFor(base);
      const worker = new Worker({
        store,
        channels,
        logger,
        maxAttempts: 2,
        retry: { baseMs: 0, maxMs: 0 },
        // Batch mode: a receiver's seven routes are sent concurrently.
        routesPerTransaction: 10,
        sendTimeoutMs: 5_000,
      });
      metrics.observe(worker);
      for (const name of ["claimed", "sent", "retry", "failed"]) {
        worker.addEventListener(name, (e) => collect(`event ${name}`, (e as CustomEvent).detail));
      }
      const destinations: [string, string][] = [
        ["webhook", `${base}/hook?token=${QUERY_TOKEN}`],
        ["slack", `${base}${SLACK_PATH}`],
        ["email", "ada@example.com"],
        ["postmark", "ada@example.com"],
        ["sendgrid", "ada@example.com"],
        ["sms", "+4915112345678"],
        ["telegram", "-1001234567890"],
      ];
      await store.enqueue(
        { kind: `leak.${label}`, payload: { text: "hello", subject: "s", html: "<p>x</p>" } },
        destinations.map(([channel, destination]) => ({ channel, destination })),
      );
      routes += destinations.length;
      // Two ticks: the first attempt of each, then the due-at-once retries, which give up.
      await worker.tick();
      await worker.tick();

      // The same channels called directly: every thrown error, whole.
      await Promise.all(destinations.map(async ([channel, destination]) => {
        try {
          await channels[channel]!.send(makeRoute({ channel, destination }), makeCtx());
          collect(`direct ${channel} → ${label}`, "sent");
        } catch (err) {
          collect(`thrown by ${channel} → ${label}`, errorText(err));
        }
      }));
    }
    for (const line of lines) collect("jsonLogger line", line);

    const s = admin(schema);
    const rows = await admin`SELECT route_id, status, last_error FROM ${s}.notification_routes`;
    assert.equal(rows.length, routes);
    assert.ok(rows.every((r) => r["status"] === "failed"), "every route ended failed");
    for (const r of rows) collect(`last_error of ${r["route_id"]}`, r["last_error"] ?? "");
    const attempts = await admin`SELECT t::text AS row FROM ${s}.route_attempts t`;
    assert.ok(attempts.length >= routes);
    for (const a of attempts) collect("route_attempts row", a["row"]);

    collect("metrics.render", metrics.render(await store.stats()));
    const served = await metricsHandler(metrics, store)(new Request("http://x/metrics"));
    collect("GET /metrics", await served.text());

    // The receivers did get the secrets (so the scan is meaningful) ...
    const got = [bad400, bad503, tg400].flatMap((srv) => srv.requests).map((r) =>
      JSON.stringify(r)
    );
    assert.ok(got.some((r) => r.includes(SLACK_TOKEN)), "the Slack token was sent");
    assert.ok(got.some((r) => r.includes(EMAIL_KEY)), "the API key was sent");
    assert.ok(got.some((r) => r.includes(BOT_TOKEN)), "the bot token was sent");
    // ... and the error texts really do come from the echoing bodies.
    const errors = corpus.filter((c) => c.where.startsWith("last_error")).map((c) => c.text);
    assert.ok(
      errors.some((e) => /HTTP 400 from \S+ POST /.test(e)),
      `last_error holds the (redacted) echo: ${errors.join("\n")}`,
    );
    assertNoLeaks(corpus);
  });

  it(
    "a secret cut by the 300-character detail excerpt does not leak its prefix",
    async () => {
      // Slack path token placed so that the excerpt's cut falls inside it.
      const pad = 285 - "POST ".length - SLACK_PATH.indexOf(SLACK_TOKEN);
      const srv = await echoServer({ status: 400, pad });
      try {
        const slack = slackChannel(local);
        let text = "";
        try {
          await slack.send(makeRoute({ destination: `${srv.url}${SLACK_PATH}` }), makeCtx());
        } catch (err) {
          text = errorText(err);
        }
        assert.match(text, /HTTP 400/);
        assertNoLeaks([{ where: "slack error", text }]);
      } finally {
        await srv.close();
      }
    },
  );

  it("a database that cannot be reached: errors and logs keep the password out", async () => {
    const unreachable = new URL(DB_URL);
    unreachable.port = String(closed);
    const dead = new PostgresStore({ url: unreachable.href, schema, max: 1 });
    const found: { where: string; text: string }[] = [];
    try {
      await assert.rejects(dead.migrate(), (err) => {
        found.push({ where: "migrate() rejection", text: errorText(err) });
        return true;
      });
      const worker = new Worker({
        store: dead,
        channels: {},
        logger: {
          log: (_l, msg, f) => found.push({ where: "logger", text: JSON.stringify({ msg, ...f }) }),
        },
      });
      await assert.rejects(worker.tick(), (err) => {
        found.push({ where: "tick() rejection", text: errorText(err) });
        return true;
      });
    } finally {
      await dead.close();
    }
    assert.ok(found.length >= 2);
    assertNoLeaks(found);
  });

  it("the program: run --once with secrets in its environment, then stats, routes and show", async () => {
    const before = await admin`SELECT route_id FROM ${admin(schema)}.notification_routes`;
    const known = new Set(before.map((r) => r["route_id"] as string));
    const { routeIds } = await store.enqueue(
      { kind: "leak.cli", payload: { text: "hello", subject: "s", html: "<p>x</p>" } },
      [
        { channel: "webhook", destination: `${bad400.url}/hook?token=${QUERY_TOKEN}` },
        { channel: "slack", destination: `${bad503.url}${SLACK_PATH}` },
        { channel: "slack", destination: `http://127.0.0.1:${closed}${SLACK_PATH}` },
        { channel: "email", destination: "ada@example.com" },
        { channel: "sms", destination: "+4915112345678" },
        { channel: "telegram", destination: "@heraldtest" },
      ],
    );
    assert.ok(routeIds.every((id) => !known.has(id)));
    const env = {
      DATABASE_URL: DB_URL,
      HERALD_SCHEMA: schema,
      HERALD_LOG_LEVEL: "debug",
      HERALD_MAX_ATTEMPTS: "1",
      HERALD_ALLOW_HOSTS: "127.0.0.1",
      HERALD_HTTP_TIMEOUT_MS: "2000",
      HERALD_WEBHOOK_SECRET: WHSEC,
      HERALD_EMAIL_PROVIDER: "resend",
      HERALD_EMAIL_API_KEY: EMAIL_KEY,
      HERALD_EMAIL_FROM: "a@example.com",
      HERALD_EMAIL_BASE_URL: bad400.url,
      HERALD_TWILIO_ACCOUNT_SID: TWILIO_SID,
      HERALD_TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      HERALD_TWILIO_FROM: "+15005550006",
      HERALD_TWILIO_BASE_URL: bad503.url,
      HERALD_TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      HERALD_TELEGRAM_API_URL: tg400.url,
    };
    const ran = await runProgramWithin(["run", "--once"], env, 60_000);
    assert.equal(ran.code, 0, ran.stderr);
    collect("run --once stdout", ran.stdout);
    collect("run --once stderr", ran.stderr);
    for (const id of routeIds) {
      assert.equal((await store.getRoute(id))?.status, "failed", `route ${id}`);
    }
    const reads: string[][] = [
      ["stats"],
      ["stats", "--json"],
      ["routes", "--limit", "200"],
      ["routes", "--json", "--limit", "200"],
      ...routeIds.slice(0, 3).map((id) => ["show", id, "--json"]),
      ["show", routeIds[1]!],
      // A bad flag next to a password-bearing --database-url.
      ["routes", "--database-url", DB_URL, "--limit", "zero"],
    ];
    const outs = await inBatches(reads.map((args) => () => runProgramWithin(args, env, 60_000)), 4);
    outs.forEach((o, i) => {
      const args = reads[i]!.join(" ");
      assert.equal(o.code, i === reads.length - 1 ? 2 : 0, `${args}: ${o.stderr}`);
      collect(`herald ${args} stdout`, o.stdout);
      collect(`herald ${args} stderr`, o.stderr);
    });
    assert.match(outs[3]!.stdout, /\/\[redacted\]/, "destinations are printed cut down");
    assertNoLeaks(corpus.filter((c) => c.where.includes("herald") || c.where.startsWith("run")));
  });
});
