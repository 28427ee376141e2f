/**
 * Secrets never leave Herald, in process: webhook URLs with tokens, signing
 * secrets, API keys, auth tokens, bot tokens and the database password are
 * planted in the configuration and the destinations; real sends go to local
 * receivers that answer with errors echoing the whole request back (the
 * nastiest case), or redirect, or refuse the connection, or never answer.
 * Then everything Herald produced is scanned: every log line (as handed to
 * the logger, before its own redaction), every event, every thrown error,
 * `last_error` and the attempt log on the real Postgres, and the metrics
 * text. The program's output is scanned in secrets_program_test.ts.
 */
import { withoutRateLimits } from "../_helpers/kit.ts";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostgresStore } from "../../store.ts";
import { Worker } from "../../worker.ts";
import { Metrics, metricsHandler } from "../../observe/metrics.ts";
import { jsonLogger, type Logger } from "../../observe/logger.ts";
import { slackChannel } from "../../channels/slack.ts";
import { makeCtx, makeRoute } from "../_helpers/http_route.ts";
import { closedPort } from "../_helpers/http_server.ts";
import { uniqueSchema } from "../_helpers/pg.ts";
import { type EchoOptions, echoServer } from "../_helpers/hostile_http.ts";
import { checkLeaks, trackClose, trackWorker } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import {
  assertNoLeaks,
  BOT_TOKEN,
  channelsFor,
  collect,
  type Corpus,
  DB_URL,
  EMAIL_KEY,
  errorText,
  LOCAL,
  type Peers,
  QUERY_TOKEN,
  SLACK_PATH,
  SLACK_TOKEN,
  usePeers,
} from "./_secrets.ts";

checkLeaks();

/** One destination per channel on receiver `base`, secrets planted where they travel. */
function destinationsAt(base: string): [string, string][] {
  return [
    ["webhook", `${base}/hook?token=${QUERY_TOKEN}`],
    ["slack", `${base}${SLACK_PATH}`],
    ["email", "ada@example.com"],
    ["postmark", "ada@example.com"],
    ["sendgrid", "ada@example.com"],
    ["sms", "+4915112345678"],
    ["telegram", "-1001234567890"],
  ];
}

/** A logger that collects every line raw and also passes it to a JSON logger writing `lines`. */
function collectingLogger(corpus: Corpus, lines: string[]): Logger {
  const json = jsonLogger({ level: "debug", write: (l) => lines.push(l) });
  return {
    log: (level, msg, fields) => {
      collect(corpus, `logger(${level})`, { msg, ...fields });
      json.log(level, msg, fields);
    },
  };
}

/**
 * Sends one route per channel to receiver `base` through a worker (twice: the
 * first attempt, then the due-at-once retry, which gives up), then calls the
 * same channels directly; every event and thrown error goes into `corpus`.
 * Returns how many routes it enqueued.
 */
async function sendThrough(
  p: Peers,
  label: string,
  base: string,
  out: { corpus: Corpus; logger: Logger; metrics: Metrics },
): Promise<number> {
  // Two ticks must take every route to its end: no provider's rate limit may defer one.
  const channels = withoutRateLimits(channelsFor(base));
  const worker = trackWorker(
    new Worker({
      store: p.store,
      channels,
      logger: out.logger,
      maxAttempts: 2,
      retry: { baseMs: 0, maxMs: 0 },
      // Batch mode: a receiver's seven routes are sent concurrently.
      routesPerTransaction: 10,
      sendTimeoutMs: 5_000,
    }),
  );
  out.metrics.observe(worker);
  for (const name of ["claimed", "sent", "retry", "failed"]) {
    worker.addEventListener(
      name,
      (e) => collect(out.corpus, `event ${name}`, (e as CustomEvent).detail),
    );
  }
  const destinations = destinationsAt(base);
  await p.store.enqueue(
    { kind: `leak.${label}`, payload: { text: "hello", subject: "s", html: "<p>x</p>" } },
    destinations.map(([channel, destination]) => ({ channel, destination })),
  );
  await worker.tick();
  await worker.tick();
  await Promise.all(destinations.map(async ([channel, destination]) => {
    try {
      await channels[channel]!.send(makeRoute({ channel, destination }), makeCtx());
      collect(out.corpus, `direct ${channel} → ${label}`, "sent");
    } catch (err) {
      collect(out.corpus, `thrown by ${channel} → ${label}`, errorText(err));
    }
  }));
  return destinations.length;
}

/** Collects what the database and the metrics hold after the sends. */
async function collectStored(
  p: Peers,
  corpus: Corpus,
  metrics: Metrics,
  routes: number,
): Promise<void> {
  const s = p.admin(p.schema);
  const rows = await p.admin`SELECT route_id, status, last_error FROM ${s}.notification_routes`;
  assert.equal(rows.length, routes);
  assert.ok(rows.every((r) => r["status"] === "failed"), "every route ended failed");
  for (const r of rows) collect(corpus, `last_error of ${r["route_id"]}`, r["last_error"] ?? "");
  const attempts = await p.admin`SELECT t::text AS row FROM ${s}.route_attempts t`;
  assert.ok(attempts.length >= routes);
  for (const a of attempts) collect(corpus, "route_attempts row", a["row"]);
  collect(corpus, "metrics.render", metrics.render(await p.store.stats()));
  const served = await metricsHandler(metrics, p.store)(new Request("http://x/metrics"));
  collect(corpus, "GET /metrics", await served.text());
}

describe(`no secret leaks on ${RUNTIME}`, () => {
  const peers = usePeers();

  it("in-process: sends to echoing, refusing and silent receivers leak nothing anywhere", async () => {
    const p = peers();
    const servers = {
      "echo 400": p.bad400.url,
      "echo 503": p.bad503.url,
      "echo JSON 400": p.tg400.url,
      redirect: p.redirect.url,
      hang: p.hang.url,
      refused: `http://127.0.0.1:${p.closed}`,
    };
    const corpus: Corpus = [];
    const lines: string[] = [];
    const out = { corpus, logger: collectingLogger(corpus, lines), metrics: new Metrics() };
    let routes = 0;
    // One worker per receiver for the provider channels (their base URL is configuration).
    for (const [label, base] of Object.entries(servers)) {
      routes += await sendThrough(p, label, base, out);
    }
    for (const line of lines) collect(corpus, "jsonLogger line", line);
    await collectStored(p, corpus, out.metrics, routes);

    // The receivers did get the secrets (so the scan is meaningful) ...
    const got = [p.bad400, p.bad503, p.tg400].flatMap((srv) => srv.requests)
      .map((r) => JSON.stringify(r));
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
});

/** Sends a Slack route to an echo server answering 400 as `echo` says; scans its error. */
async function slackErrorLeaksNothing(echo: EchoOptions): Promise<void> {
  const srv = trackClose("a receiver", await echoServer({ status: 400, ...echo }));
  try {
    let text = "";
    try {
      await slackChannel(LOCAL).send(
        makeRoute({ destination: `${srv.url}${SLACK_PATH}` }),
        makeCtx(),
      );
    } catch (err) {
      text = errorText(err);
    }
    assert.match(text, /HTTP 400/);
    assertNoLeaks([{ where: "slack error", text }]);
  } finally {
    await srv.close();
  }
}

describe(`no secret leaks on ${RUNTIME}: cut excerpts, a database out of reach`, () => {
  it("a secret cut by the 300-character detail excerpt does not leak its prefix", async () => {
    // Slack path token placed so that the excerpt's cut falls inside it.
    await slackErrorLeaksNothing({ pad: 285 - "POST ".length - SLACK_PATH.indexOf(SLACK_TOKEN) });
  });

  it("a secret cut by the answer's size cap does not leak its prefix", async () => {
    // Blank filler (folded to one space in the excerpt) puts the 4 KiB cap inside
    // the path token: what is left of it would otherwise reach the excerpt whole.
    const pad = 4_096 - "POST ".length - SLACK_PATH.indexOf(SLACK_TOKEN) - 15;
    await slackErrorLeaksNothing({ pad, padWith: " " });
  });

  it("a database that cannot be reached: errors and logs keep the password out", async () => {
    const unreachable = new URL(DB_URL);
    unreachable.port = String(await closedPort());
    const dead = trackClose(
      "the unreachable store",
      new PostgresStore({ url: unreachable.href, schema: uniqueSchema("herald_sec"), max: 1 }),
    );
    const found: Corpus = [];
    try {
      await assert.rejects(dead.migrate(), (err) => {
        found.push({ where: "migrate() rejection", text: errorText(err) });
        return true;
      });
      const worker = trackWorker(
        new Worker({
          store: dead,
          channels: {},
          logger: {
            log: (_l, msg, f) =>
              found.push({ where: "logger", text: JSON.stringify({ msg, ...f }) }),
          },
        }),
      );
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
});
