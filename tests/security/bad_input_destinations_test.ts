/**
 * Destinations the channels refuse at send time: every row of
 * _cases_destinations.ts ends its route `failed` at the first attempt, with
 * a clear, secret-free `last_error` and attempt-log row, nothing sent over
 * the network, and every other row unchanged.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "../../worker.ts";
import type { Channel } from "../../channels/channel.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { slackChannel } from "../../channels/slack.ts";
import { emailChannel } from "../../channels/email.ts";
import { smsChannel } from "../../channels/sms.ts";
import { telegramChannel } from "../../channels/telegram.ts";
import type { Logger } from "../../observe/logger.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { checkLeaks, trackClose, trackWorker } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import { type HostileEnv, SECRET, SID, sum, useHostileDb } from "./_hostile.ts";
import { type DestinationCase, DESTINATIONS } from "./_cases_destinations.ts";
import { withoutRateLimits } from "../_helpers/kit.ts";

checkLeaks();

/** Every channel, configured with planted secrets; the providers' base URL is `url`. */
function channelsWithSecrets(url: string): Record<string, Channel> {
  // Every name resolves to a private address, except localhost, which is loopback: no
  // test depends on the network, and a host name can never slip past the guard.
  const resolve = (host: string) =>
    Promise.resolve(host === "localhost" ? ["127.0.0.1", "::1"] : ["10.20.30.40"]);
  return {
    webhook: webhookChannel({ resolve, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
    "webhook-https": webhookChannel({ resolve, httpsOnly: true }),
    slack: slackChannel({ resolve }),
    email: emailChannel({
      provider: "resend",
      apiKey: `re_${SECRET}`,
      from: "a@example.com",
      baseUrl: url,
    }),
    sms: smsChannel({ accountSid: SID, authToken: SECRET, from: "+15005550006", baseUrl: url }),
    telegram: telegramChannel({ botToken: `123:${SECRET}`, apiUrl: url }),
  };
}

/** What one case runs with. */
interface SendTime {
  readonly env: HostileEnv;
  readonly server: TestServer;
  readonly worker: Worker;
  readonly logged: string[];
}

/** Enqueues the case's route, ticks once, and checks how the route failed. */
async function refusedAtSend(
  { env, server, worker, logged }: SendTime,
  [channel, template, expected]: DestinationCase,
): Promise<void> {
  const { store } = env;
  const destination = template.replaceAll("PORT", String(server.port));
  const { notificationId, routeIds: [id] } = await store.enqueue(
    { kind: "hostile", payload: { text: "hi", subject: "s" } },
    [{ channel, destination }],
  );
  const others = await sum(env, [notificationId]);
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
  assert.equal(await sum(env, [notificationId]), others, "every other row is unchanged");
}

describe(`hostile input on ${RUNTIME}`, () => {
  const env = useHostileDb();

  describe("destinations refused by the channels at send time", () => {
    let sendTime: SendTime | undefined;
    before(async () => {
      const server = trackClose("the test server", await startServer());
      const logged: string[] = [];
      const logger: Logger = {
        log: (level, msg, fields) => logged.push(JSON.stringify({ level, msg, ...fields })),
      };
      // Each case is one tick: no provider's rate limit may defer the next one.
      const channels = withoutRateLimits(channelsWithSecrets(server.url));
      const worker = trackWorker(
        new Worker({ store: env().store, channels, logger, sendTimeoutMs: 5_000 }),
      );
      sendTime = { env: env(), server, worker, logged };
    });
    after(async () => {
      await sendTime?.server.close();
    });

    for (const c of DESTINATIONS) {
      it(`${c[0]}: ${JSON.stringify(c[1].slice(0, 70))}`, () => refusedAtSend(sendTime!, c));
    }
  });
});
