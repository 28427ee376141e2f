import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { webhookChannel } from "../../channels/webhook.ts";
import {
  delayFromSeconds,
  MAX_RETRY_DELAY_MS,
  parseRateLimitReset,
  parseRetryAfter,
} from "../../channels/_http.ts";
import { parseHttpDate } from "../../channels/_retry_after.ts";
import { RetryLaterError } from "../../core/errors.ts";
import { capture } from "../_helpers/capture.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { makeCtx, makeRoute } from "../_helpers/http_route.ts";

// Friday, 1 March 2024, 12:00:00 UTC.
const NOW = Date.UTC(2024, 2, 1, 12, 0, 0);
const DAY = 24 * 60 * 60 * 1000;

/** What a real server's 503 with this `Retry-After` header turns into. */
async function retryAfterOf(header: string): Promise<number | undefined> {
  const channel = webhookChannel({ allowHosts: ["127.0.0.1"], now: () => NOW });
  const { result: err } = await capture(
    (_q, res) => {
      res.writeHead(503, { "retry-after": header, "content-type": "text/plain" }).end("busy");
    },
    (server) => channel.send(makeRoute({ destination: server.url }), makeCtx()),
  );
  assert.ok(err instanceof RetryLaterError, String(err));
  assert.equal(err.httpStatus, 503);
  return err.retryAfterMs;
}

checkLeaks();

describe("Retry-After from a real answer", () => {
  it("accepts decimal seconds (1.5 is 1500 ms, not a date in 2001)", async () => {
    assert.equal(await retryAfterOf("1.5"), 1500);
    assert.equal(await retryAfterOf("0"), 0);
    assert.equal(await retryAfterOf("120"), 120_000);
  });

  it("reads the IMF-fixdate and both obsolete HTTP-date forms", async () => {
    assert.equal(await retryAfterOf("Fri, 01 Mar 2024 12:01:30 GMT"), 90_000);
    assert.equal(await retryAfterOf("Friday, 01-Mar-24 12:01:30 GMT"), 90_000);
    assert.equal(await retryAfterOf("Fri Mar  1 12:01:30 2024"), 90_000);
  });

  it("ignores what is not delay seconds or an HTTP-date", async () => {
    for (
      const junk of [
        "1.5.2",
        "-1",
        ".5",
        "1e3",
        "soon",
        "2024-03-01T12:01:30Z",
        "Fri, 1 Mar 2024 12:01:30 GMT",
        "Fri, 01 Mar 2024 12:01:30 UTC",
        "Fri, 30 Feb 2024 12:01:30 GMT",
        "Fri, 01 Mar 2024 25:01:30 GMT",
      ]
    ) {
      assert.equal(await retryAfterOf(junk), undefined, junk);
    }
  });

  it("caps a far-future date or a huge delay at 30 days", async () => {
    assert.equal(MAX_RETRY_DELAY_MS, 30 * DAY);
    assert.equal(await retryAfterOf("Fri, 31 Dec 9999 23:59:59 GMT"), MAX_RETRY_DELAY_MS);
    assert.equal(await retryAfterOf("99999999999999999999999"), MAX_RETRY_DELAY_MS);
  });
});

describe("delay parsers", () => {
  it("clamps past dates to zero", () => {
    assert.equal(parseRetryAfter("Thu, 29 Feb 2024 12:00:00 GMT", NOW), 0);
    assert.equal(parseRetryAfter(null, NOW), undefined);
  });

  it("places an RFC 850 two-digit year at most 50 years ahead", () => {
    // 73 would be 2073 (49 years ahead): kept. 75 would be 2075 (51 ahead): 1975.
    assert.equal(parseHttpDate("Sunday, 01-Jan-73 00:00:00 GMT", NOW), Date.UTC(2073, 0, 1));
    assert.equal(parseHttpDate("Wednesday, 01-Jan-75 00:00:00 GMT", NOW), Date.UTC(1975, 0, 1));
    // A four-digit year below 100 is that year, not 19xx.
    assert.equal(
      parseHttpDate("Sat, 01 Jan 0094 00:00:00 GMT", NOW),
      new Date(0).setUTCFullYear(94, 0, 1),
    );
  });

  it("reads X-RateLimit-Reset as epoch seconds, capped", () => {
    assert.equal(parseRateLimitReset(String(NOW / 1000 + 42), NOW), 42_000);
    assert.equal(parseRateLimitReset(String(NOW / 1000 - 42), NOW), 0);
    assert.equal(parseRateLimitReset("99999999999999", NOW), MAX_RETRY_DELAY_MS);
    assert.equal(parseRateLimitReset("Fri, 01 Mar 2024 12:01:30 GMT", NOW), undefined);
    assert.equal(parseRateLimitReset(null, NOW), undefined);
  });

  it("turns body seconds into capped milliseconds", () => {
    assert.equal(delayFromSeconds(1.5), 1500);
    assert.equal(delayFromSeconds(1e12), MAX_RETRY_DELAY_MS);
    assert.equal(delayFromSeconds(Number.POSITIVE_INFINITY), MAX_RETRY_DELAY_MS);
    assert.equal(delayFromSeconds(-1), undefined);
    assert.equal(delayFromSeconds("3"), undefined);
    assert.equal(delayFromSeconds(Number.NaN), undefined);
  });
});
