/**
 * Prometheus metrics for a worker: counters of sent, retried and failed
 * routes by channel, a send-duration histogram, and queue depth by status.
 * {@link metricsHandler} is a web-standard `(Request) => Response` to mount
 * anywhere; `herald run --metrics-port` serves it on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { Metrics, metricsHandler } from "./metrics.ts";
 * import type { PostgresStore } from "../store.ts";
 * import type { Worker } from "../worker.ts";
 *
 * export function metricsFor(worker: Worker, store: PostgresStore): (r: Request) => Promise<Response> {
 *   const metrics = new Metrics();
 *   metrics.observe(worker);
 *   return metricsHandler(metrics, store); // mount it: Deno.serve, Bun.serve, a router...
 * }
 * ```
 *
 * @module
 */
import type { RouteEventDetail } from "../core/events.ts";
import type { DestinationStats, QueueStats } from "../core/operator.ts";
import { VERSION } from "../core/version.ts";
import type { Meter } from "@opentelemetry/api";
import type { MeterLike } from "../core/telemetry.ts";

/** Default histogram buckets, in seconds: from a local hop to a slow provider. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

interface Histogram {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Collects a worker's events into Prometheus metrics. */
export class Metrics {
  readonly #buckets: readonly number[];
  readonly #counters = new Map<string, Map<string, number>>();
  readonly #durations = new Map<string, Histogram>();
  readonly #transitions = new Map<string, number>();
  #otel: ReturnType<typeof otelInstruments> | undefined;

  /**
   * `buckets`: upper bounds in seconds, ascending; default
   * {@link DEFAULT_BUCKETS}. `meter`: an OpenTelemetry `Meter` the same
   * figures are also recorded through (`herald.routes.<outcome>` counters and
   * the `herald.send.duration` histogram, by channel).
   */
  constructor(options: { readonly buckets?: readonly number[]; readonly meter?: MeterLike } = {}) {
    this.#buckets = [...(options.buckets ?? DEFAULT_BUCKETS)].sort((a, b) => a - b);
    if (options.meter) this.#otel = otelInstruments(options.meter as unknown as Meter);
  }

  /** Counts `target`'s `sent`, `retry`, `failed` and `poisoned` events; returns an unsubscribe function. */
  observe(target: EventTarget): () => void {
    const names = ["sent", "retry", "failed", "poisoned"] as const;
    const handlers: (readonly [string, (e: unknown) => void])[] = names.map((name) => {
      // `unknown`, not `Event`: Deno's and Node's `Event` types differ, and this fits both.
      const handler = (e: unknown): void =>
        this.record(name, (e as CustomEvent<RouteEventDetail>).detail);
      target.addEventListener(name, handler);
      return [name, handler] as const;
    });
    for (const name of ["destination.opened", "destination.closed", "destination.disabled"]) {
      const to = name.slice("destination.".length);
      const handler = (): void =>
        void this.#transitions.set(to, (this.#transitions.get(to) ?? 0) + 1);
      target.addEventListener(name, handler);
      handlers.push([name, handler]);
    }
    return () => {
      for (const [name, handler] of handlers) target.removeEventListener(name, handler);
    };
  }

  /** Records one outcome (what `observe` does for each event). */
  record(outcome: "sent" | "retry" | "failed" | "poisoned", detail: RouteEventDetail): void {
    const byChannel = this.#counters.get(outcome) ?? new Map<string, number>();
    byChannel.set(detail.channel, (byChannel.get(detail.channel) ?? 0) + 1);
    this.#counters.set(outcome, byChannel);
    this.#otel?.counters[outcome].add(1, { "messaging.destination.name": detail.channel });
    if (detail.durationMs !== undefined) {
      this.#otel?.duration.record(detail.durationMs / 1000, {
        "messaging.destination.name": detail.channel,
      });
    }
    if (detail.durationMs === undefined) return;
    const h = this.#durations.get(detail.channel) ??
      { counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
    const seconds = detail.durationMs / 1000;
    this.#buckets.forEach((le, i) => {
      if (seconds <= le) h.counts[i]!++;
    });
    h.sum += seconds;
    h.count++;
    this.#durations.set(detail.channel, h);
  }

  /** The Prometheus text exposition; `stats` adds the queue gauges. */
  render(stats?: QueueStats): string {
    const out: string[] = [];
    out.push("# HELP herald_info Herald's version.", "# TYPE herald_info gauge");
    out.push(`herald_info{version="${label(VERSION)}"} 1`);
    const counters = [
      ["sent", "herald_routes_sent_total", "Routes delivered."],
      ["retry", "herald_routes_retried_total", "Failed attempts scheduled for a retry."],
      ["failed", "herald_routes_failed_total", "Routes failed for good."],
      [
        "poisoned",
        "herald_routes_poisoned_total",
        "Routes whose outcome the database refused to record, held for an operator.",
      ],
    ] as const;
    for (const [key, name, help] of counters) {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [channel, n] of this.#counters.get(key) ?? []) {
        out.push(`${name}{channel="${label(channel)}"} ${n}`);
      }
    }
    const h = "herald_send_duration_seconds";
    out.push(`# HELP ${h} Time a channel took to send, by channel.`, `# TYPE ${h} histogram`);
    for (const [channel, hist] of this.#durations) {
      const c = label(channel);
      this.#buckets.forEach((le, i) =>
        out.push(`${h}_bucket{channel="${c}",le="${le}"} ${hist.counts[i]}`)
      );
      out.push(`${h}_bucket{channel="${c}",le="+Inf"} ${hist.count}`);
      out.push(`${h}_sum{channel="${c}"} ${hist.sum}`, `${h}_count{channel="${c}"} ${hist.count}`);
    }
    if (stats) {
      out.push(
        "# HELP herald_routes Routes in the table, by status (poisoned exact; on tables over " +
          "100,000 rows sent, failed and cancelled estimated, and queued when a channel has more than 10,000).",
        "# TYPE herald_routes gauge",
      );
      for (const [status, n] of Object.entries(stats.byStatus)) {
        out.push(`herald_routes{status="${label(status)}"} ${n}`);
      }
      const oldest = "herald_oldest_due_route_age_seconds";
      out.push(
        `# HELP ${oldest} How long the oldest due route has waited.`,
        `# TYPE ${oldest} gauge`,
      );
      out.push(`${oldest} ${(stats.oldestDueAgeMs ?? 0) / 1000}`);
      // Per channel: a channel no running worker has shows as an age that only grows.
      const queued = "herald_channel_queued_routes";
      out.push(
        `# HELP ${queued} Queued routes, by channel (estimated past 10,000 in a channel).`,
        `# TYPE ${queued} gauge`,
      );
      for (const c of stats.byChannel) {
        if (c.status === "queued") out.push(`${queued}{channel="${label(c.channel)}"} ${c.count}`);
      }
      const age = "herald_channel_oldest_due_age_seconds";
      out.push(
        `# HELP ${age} How long the oldest due route of each channel has waited.`,
        `# TYPE ${age} gauge`,
      );
      for (const d of stats.oldestDueByChannel) {
        out.push(`${age}{channel="${label(d.channel)}"} ${d.ageMs / 1000}`);
      }
      if (stats.destinations) renderDestinations(out, stats.destinations);
    }
    const t = "herald_destination_transitions_total";
    out.push(
      `# HELP ${t} Destinations this worker saw change state (opened, closed, disabled).`,
      `# TYPE ${t} counter`,
    );
    for (const [to, n] of this.#transitions) out.push(`${t}{to="${label(to)}"} ${n}`);
    return `${out.join("\n")}\n`;
  }
}

/** The destination gauges: how many in each state, and each one in trouble. */
function renderDestinations(out: string[], d: DestinationStats): void {
  const count = "herald_destinations";
  out.push(`# HELP ${count} Destinations, by state.`, `# TYPE ${count} gauge`);
  for (const [state, n] of Object.entries(d.byState)) out.push(`${count}{state="${state}"} ${n}`);
  const deferred = "herald_routes_deferred_by_limit";
  out.push(
    `# HELP ${deferred} Due routes held back by their destination's rate limit now ` +
      "(each destination's counted up to 1,001).",
    `# TYPE ${deferred} gauge`,
    `${deferred} ${d.deferredByLimit}`,
  );
  type Troubled = DestinationStats["troubled"][number];
  // Each gauge with the value it reads; the state gauge carries the state as a label.
  const gauges: [string, string, (t: Troubled) => number][] = [
    [
      "herald_destination_state",
      "1 for each destination not closed, failing or deferring routes, by state.",
      () => 1,
    ],
    [
      "herald_destination_consecutive_failures",
      "Failures since its last success.",
      (t) => t.consecutiveFailures,
    ],
    [
      "herald_destination_trips",
      "Breaker trips in a row; each doubles the cool-down.",
      (t) => t.trips,
    ],
    [
      "herald_destination_queued_routes",
      "Its queued routes, held ones included (counted up to 1,001).",
      (t) => t.queued,
    ],
    [
      "herald_destination_deferred_routes",
      "Its due routes held back by its rate limit now (counted up to 1,001).",
      (t) => t.deferred,
    ],
  ];
  for (const [name, help, value] of gauges) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const t of d.troubled) {
      const state = name === "herald_destination_state" ? `,state="${t.state}"` : "";
      out.push(
        `${name}{channel="${label(t.channel)}",destination="${label(t.key)}"${state}} ${value(t)}`,
      );
    }
  }
}

/** The OpenTelemetry instruments behind `Metrics`' `meter` option. */
function otelInstruments(meter: Meter) {
  const counter = (outcome: string, description: string) =>
    meter.createCounter(`herald.routes.${outcome}`, { description, unit: "{route}" });
  return {
    counters: {
      sent: counter("sent", "Routes delivered."),
      retry: counter("retried", "Failed attempts scheduled for a retry."),
      failed: counter("failed", "Routes failed for good."),
      poisoned: counter("poisoned", "Routes whose outcome the database refused to record."),
    },
    duration: meter.createHistogram("herald.send.duration", {
      description: "Time a channel took to send.",
      unit: "s",
    }),
  };
}

/**
 * A web-standard handler serving `GET /metrics` (Prometheus text, with queue
 * gauges when `store` is given) and `GET /healthz`. `healthy` decides the
 * health answer; default always healthy.
 */
export function metricsHandler(
  metrics: Metrics,
  store?: { stats(): Promise<QueueStats> },
  healthy: () => boolean = () => true,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (pathname === "/healthz") {
      const ok = healthy();
      return new Response(ok ? "ok\n" : "stopping\n", { status: ok ? 200 : 503 });
    }
    if (pathname !== "/metrics") return new Response("not found\n", { status: 404 });
    let stats: QueueStats | undefined;
    try {
      stats = await store?.stats();
    } catch {
      // The counters are still worth serving while the database is away.
    }
    return new Response(metrics.render(stats), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  };
}

function label(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

// The types the API mentions, so this entry point documents them all.
export type { RouteEventDetail } from "../core/events.ts";
export type { DestinationStats, QueueStats } from "../core/operator.ts";
export type { RouteStatus } from "../core/route.ts";
export type { MeterLike } from "../core/telemetry.ts";
