/**
 * OpenTelemetry end to end, on real Postgres and a real local receiver: a
 * route enqueued inside a span is sent in the same trace (one consumer span
 * per attempt, parented on the enqueue's producer span), the receiver sees a
 * `traceparent` of that trace, batch mode links every route, log lines
 * written during a send carry the ids, and with no SDK registered the stored
 * context still reaches the receiver. The SDK (the in-memory exporter of
 * `@opentelemetry/sdk-trace`) is registered by this file and removed after.
 */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { context, type Meter, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { Worker } from "../../worker.ts";
import type { WorkerOptions } from "../../worker.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import { jsonLogger, silentLogger } from "../../observe/logger.ts";
import { Metrics } from "../../observe/metrics.ts";
import { DATABASE_URL, dbElapse, useFreshStore } from "../_helpers/pg.ts";
import { runProgram } from "../_helpers/spawn.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
/** The route fields every route event carries. */
const DETAIL = {
  routeId: "r",
  notificationId: "n",
  kind: "k",
  channel: "sms",
  destination: "+15550100",
};

describe("OpenTelemetry: one trace from the enqueue to the webhook", () => {
  const env = useFreshStore();
  const exporter = new InMemorySpanExporter();
  let receiver: TestServer;
  let answers: number[] = [];

  before(async () => {
    receiver = await startServer((_req, res) => void res.writeHead(answers.shift() ?? 204).end());
  });
  after(async () => {
    await receiver.close();
    trace.disable();
    context.disable();
  });
  beforeEach(() => {
    exporter.reset();
    answers = [];
    trace.disable();
    context.disable();
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(
      new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }),
    );
  });

  const worker = (options: Partial<WorkerOptions> = {}) =>
    new Worker({
      store: env().store,
      channels: { webhook: webhookChannel({ allowHosts: ["127.0.0.1"] }) },
      logger: silentLogger,
      retry: { baseMs: 1, maxMs: 1, minMs: 1 },
      ...options,
    });
  const spans = (name: string): ReadableSpan[] =>
    exporter.getFinishedSpans().filter((s) => s.name === name);

  it("a route enqueued in a span is sent in that trace, one consumer span per attempt", async () => {
    const app = trace.getTracer("app");
    let request!: { traceId: string; spanId: string };
    const id = await app.startActiveSpan("POST /orders", async (span) => {
      request = span.spanContext();
      const { routeIds } = await env().store.enqueue({ kind: "order.shipped" }, [{
        channel: "webhook",
        destination: `${receiver.url}/orders`,
      }]);
      span.end();
      return routeIds[0]!;
    });
    answers = [503, 204];
    const w = worker();
    assert.equal(await w.tick(), 1);
    await dbElapse(env().sql, 5);
    assert.equal(await w.tick(), 1);

    const [publish] = spans("publish herald");
    assert.equal(publish?.spanContext().traceId, request.traceId);
    assert.equal(publish?.parentSpanContext?.spanId, request.spanId);
    const attempts = spans("process webhook");
    assert.equal(attempts.length, 2, "one span per attempt");
    for (const [i, s] of attempts.entries()) {
      assert.equal(s.spanContext().traceId, request.traceId);
      assert.equal(s.parentSpanContext?.spanId, publish?.spanContext().spanId);
      assert.equal(s.kind, 4 /* SpanKind.CONSUMER */);
      assert.deepEqual(
        [
          s.attributes["messaging.system"],
          s.attributes["messaging.operation.type"],
          s.attributes["messaging.message.id"],
          s.attributes["messaging.destination.name"],
          s.attributes["herald.attempt"],
          s.attributes["herald.outcome"],
          s.attributes["http.response.status_code"],
        ],
        ["herald", "process", id, "webhook", i + 1, i === 0 ? "retry" : "sent", [503, 204][i]],
      );
    }
    assert.equal(attempts[0]?.status.code, 2 /* ERROR */);
    const sent = receiver.requests.map((r) => r.headers["traceparent"]);
    assert.deepEqual(
      sent,
      attempts.map((s) => `00-${request.traceId}-${s.spanContext().spanId}-01`),
      "the receiver continues each attempt's span",
    );
  });

  it("a route enqueued with no trace context sends no traceparent", async () => {
    await env().store.enqueue({ kind: "k" }, [{ channel: "webhook", destination: receiver.url }]);
    const before = receiver.requests.length;
    assert.equal(await worker().tick(), 1);
    const request = receiver.requests[before];
    assert.equal(request?.headers["traceparent"], undefined);
    assert.equal(spans("process webhook")[0]?.parentSpanContext, undefined, "a root span");
  });

  it("with no SDK registered nothing throws, and the stored context still reaches the receiver", async () => {
    trace.disable();
    context.disable();
    const traceparent = `00-${TRACE}-${PARENT}-01`;
    await env().store.enqueue({ kind: "k", traceparent, tracestate: "vendor=a1" }, [{
      channel: "webhook",
      destination: `${receiver.url}/plain`,
    }]);
    const before = receiver.requests.length;
    assert.equal(await worker().tick(), 1);
    const headers = receiver.requests[before]?.headers;
    assert.equal(headers?.["traceparent"], traceparent, "the enqueuer's context, as stored");
    assert.equal(headers?.["tracestate"], "vendor=a1");
    assert.equal(exporter.getFinishedSpans().length, 0);
  });

  it("propagateTrace: false sends no trace headers", async () => {
    const traceparent = `00-${TRACE}-${PARENT}-01`;
    await env().store.enqueue({ kind: "k", traceparent }, [{
      channel: "webhook",
      destination: receiver.url,
    }]);
    const before = receiver.requests.length;
    const quiet = webhookChannel({ allowHosts: ["127.0.0.1"], propagateTrace: false });
    assert.equal(await worker({ channels: { webhook: quiet } }).tick(), 1);
    assert.equal(receiver.requests[before]?.headers["traceparent"], undefined);
  });

  it("batch mode: a batch span links every route's context", async () => {
    const routes = [1, 2, 3].map(() => ({ channel: "webhook", destination: receiver.url }));
    const contexts = [];
    for (const route of routes) {
      const span = trace.getTracer("app").startSpan("request");
      await context.with(
        trace.setSpan(context.active(), span),
        () => env().store.enqueue({ kind: "k" }, [route]),
      );
      span.end();
      contexts.push(span.spanContext().traceId);
    }
    assert.equal(await worker({ routesPerTransaction: 3 }).tick(), 3);
    const [batch] = spans("process herald");
    assert.deepEqual(batch?.links.map((l) => l.context.traceId).sort(), [...contexts].sort());
    assert.equal(batch?.attributes["messaging.batch.message_count"], 3);
  });

  it("log lines written during a send carry its trace and span ids", async () => {
    const lines: string[] = [];
    const logger = jsonLogger({ write: (line) => lines.push(line) });
    await trace.getTracer("app").startActiveSpan("request", async (span) => {
      await env().store.enqueue({ kind: "k" }, [{ channel: "chatty", destination: "x" }]);
      span.end();
    });
    const chatty = {
      send: () => Promise.resolve(logger.log("info", "inside the send")),
    };
    assert.equal(await worker({ channels: { chatty } }).tick(), 1);
    const line = JSON.parse(lines.find((l) => l.includes("inside the send"))!);
    const [attempt] = spans("process chatty");
    assert.equal(line.trace_id, attempt?.spanContext().traceId);
    assert.equal(line.span_id, attempt?.spanContext().spanId);
  });

  it("refuses a malformed traceparent with a typed error naming the field", async () => {
    for (const bad of ["00-xyz", `00-${"0".repeat(32)}-${PARENT}-01`, `01-${TRACE}-${PARENT}-01`]) {
      await assert.rejects(
        env().store.enqueue({ kind: "k", traceparent: bad }, [{
          channel: "log",
          destination: "x",
        }]),
        (err: unknown) =>
          err instanceof InvalidArgumentError && err.field === "notification.traceparent",
      );
    }
  });
});

describe("OpenTelemetry in the program: TRACEPARENT, then a plain run --once", () => {
  const env = useFreshStore();
  let receiver: TestServer;
  before(async () => {
    receiver = await startServer();
  });
  after(async () => {
    await receiver.close();
  });

  it("the request carries the trace of TRACEPARENT, with no SDK in the worker", async () => {
    const vars = {
      DATABASE_URL,
      HERALD_SCHEMA: env().schema,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
    };
    const traceparent = `00-${TRACE}-${PARENT}-01`;
    const enq = await runProgram(
      ["enqueue", "--channel", "webhook", "--to", `${receiver.url}/cli`],
      { ...vars, TRACEPARENT: traceparent },
    );
    assert.equal(enq.code, 0, enq.stderr);
    const run = await runProgram(["run", "--once"], vars);
    assert.equal(run.code, 0, run.stderr);
    const request = receiver.requests.find((r) => r.path === "/cli");
    assert.equal(request?.headers["traceparent"]?.split("-")[1], TRACE);
    const bad = await runProgram(
      ["enqueue", "--channel", "webhook", "--to", `${receiver.url}/cli`],
      { ...vars, TRACEPARENT: "not-a-traceparent" },
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /'TRACEPARENT'/);
  });
});

describe("OpenTelemetry metrics: the same figures through a Meter", () => {
  it("records outcomes and send durations by channel through the application's Meter", () => {
    const recorded: [string, number, Record<string, unknown>][] = [];
    const instrument = (name: string) => ({
      add: (n: number, attrs: Record<string, unknown>) => void recorded.push([name, n, attrs]),
      record: (n: number, attrs: Record<string, unknown>) => void recorded.push([name, n, attrs]),
    });
    const meter = {
      createCounter: instrument,
      createHistogram: instrument,
    } as unknown as Meter;
    const metrics = new Metrics({ meter });
    metrics.record("sent", { ...DETAIL, attempt: 1, durationMs: 250 });
    metrics.record("failed", { ...DETAIL, attempt: 2 });
    const destination = { "messaging.destination.name": "sms" };
    assert.deepEqual(recorded, [
      ["herald.routes.sent", 1, destination],
      ["herald.send.duration", 0.25, destination],
      ["herald.routes.failed", 1, destination],
    ]);
  });
});
