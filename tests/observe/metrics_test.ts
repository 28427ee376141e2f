import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Metrics, metricsHandler } from "../../observe/metrics.ts";
import { Worker } from "../../worker.ts";
import { silentLogger } from "../../observe/logger.ts";
import { PermanentError } from "../../core/errors.ts";
import { checkLeaks, fakeStore, trackWorker } from "../_helpers/leaks.ts";
import { scriptedChannel } from "../_helpers/kit.ts";

checkLeaks();

describe("metrics", () => {
  it("counts outcomes by channel and times sends", async () => {
    const store = fakeStore();
    const worker = trackWorker(
      new Worker({
        store,
        channels: {
          ok: scriptedChannel(() => Promise.resolve()),
          bad: scriptedChannel(() => Promise.reject(new PermanentError("HTTP 404"))),
          flaky: scriptedChannel(() => Promise.reject(new Error("HTTP 503"))),
        },
        logger: silentLogger,
      }),
    );
    const metrics = new Metrics({ buckets: [1, 60] });
    const unsubscribe = metrics.observe(worker);
    await store.enqueue({ kind: "k" }, [
      { channel: "ok", destination: "a" },
      { channel: "ok", destination: "b" },
      { channel: "bad", destination: "c" },
      { channel: "flaky", destination: "d" },
    ]);
    await worker.tick();
    unsubscribe();
    const text = metrics.render();
    assert.match(text, /^herald_routes_sent_total\{channel="ok"\} 2$/m);
    assert.match(text, /^herald_routes_failed_total\{channel="bad"\} 1$/m);
    assert.match(text, /^herald_routes_retried_total\{channel="flaky"\} 1$/m);
    assert.match(text, /^herald_send_duration_seconds_bucket\{channel="ok",le="60"\} 2$/m);
    assert.match(text, /^herald_send_duration_seconds_bucket\{channel="ok",le="\+Inf"\} 2$/m);
    assert.match(text, /^herald_send_duration_seconds_count\{channel="ok"\} 2$/m);
    assert.match(text, /^# TYPE herald_send_duration_seconds histogram$/m);
  });
});

describe("metrics: destinations", () => {
  it("counts a destination opening; renders states and the troubled destinations", async () => {
    const store = fakeStore();
    const worker = trackWorker(
      new Worker({
        store,
        channels: { webhook: scriptedChannel(() => Promise.reject(new Error("HTTP 503"))) },
        destinations: { failureThreshold: 2 },
        logger: silentLogger,
      }),
    );
    const metrics = new Metrics();
    const unsubscribe = metrics.observe(worker);
    await store.enqueue(
      { kind: "k" },
      [1, 2, 3].map((n) => ({
        channel: "webhook",
        destination: `https://down.example/${n}`,
      })),
    );
    await worker.tick();
    unsubscribe();
    const text = metrics.render({
      byStatus: { queued: 3, sent: 0, failed: 0, cancelled: 0, poisoned: 0 },
      byChannel: [],
      oldestDueAgeMs: null,
      oldestDueByChannel: [],
      failedLastHour: 0,
      destinations: {
        byState: { closed: 4, open: 1, half_open: 0, paused: 0, disabled: 0 },
        troubled: [{
          channel: "webhook",
          key: "https://down.example",
          state: "open",
          trips: 1,
          consecutiveFailures: 2,
          queued: 3,
          deferred: 0,
        }, {
          channel: "webhook",
          key: "https://slow.example",
          state: "closed",
          trips: 0,
          consecutiveFailures: 0,
          queued: 9,
          deferred: 7,
        }],
        deferredByLimit: 7,
      },
    });
    assert.match(text, /^herald_destination_transitions_total\{to="opened"\} 1$/m);
    assert.match(text, /^herald_destinations\{state="open"\} 1$/m);
    assert.match(text, /^herald_destinations\{state="closed"\} 4$/m);
    const labels = 'channel="webhook",destination="https://down\\.example"';
    assert.match(text, new RegExp(`^herald_destination_state\\{${labels},state="open"\\} 1$`, "m"));
    assert.match(text, new RegExp(`^herald_destination_queued_routes\\{${labels}\\} 3$`, "m"));
    assert.match(text, /^herald_routes_deferred_by_limit 7$/m);
    assert.match(
      text,
      /^herald_destination_deferred_routes\{channel="webhook",destination="https:\/\/slow\.example"\} 7$/m,
    );
    assert.match(
      text,
      new RegExp(`^herald_destination_consecutive_failures\\{${labels}\\} 2$`, "m"),
    );
  });
});

describe("metrics: the HTTP handler", () => {
  it("serves /metrics with queue gauges and /healthz", async () => {
    const metrics = new Metrics();
    const stats = () =>
      Promise.resolve({
        byStatus: { queued: 3, sent: 5, failed: 1, cancelled: 0, poisoned: 0 },
        byChannel: [{ channel: "sms", status: "queued" as const, count: 3 }],
        oldestDueAgeMs: 1500,
        oldestDueByChannel: [{ channel: "sms", ageMs: 1500 }],
        failedLastHour: 1,
      });
    let healthy = true;
    const handle = metricsHandler(metrics, { stats }, () => healthy);
    const res = await handle(new Request("http://127.0.0.1/metrics"));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^herald_routes\{status="queued"\} 3$/m);
    assert.match(body, /^herald_oldest_due_route_age_seconds 1\.5$/m);
    assert.match(body, /^herald_channel_queued_routes\{channel="sms"\} 3$/m);
    assert.match(body, /^herald_channel_oldest_due_age_seconds\{channel="sms"\} 1\.5$/m);
    assert.equal((await handle(new Request("http://127.0.0.1/healthz"))).status, 200);
    healthy = false;
    assert.equal((await handle(new Request("http://127.0.0.1/healthz"))).status, 503);
    assert.equal((await handle(new Request("http://127.0.0.1/nope"))).status, 404);
    assert.equal(
      (await handle(new Request("http://127.0.0.1/metrics", { method: "POST" }))).status,
      405,
    );
  });

  it("still serves the counters when the database is away", async () => {
    const handle = metricsHandler(new Metrics(), {
      stats: () => Promise.reject(new Error("down")),
    });
    const res = await handle(new Request("http://127.0.0.1/metrics"));
    assert.equal(res.status, 200);
    assert.match(await res.text(), /herald_info/);
  });
});
