/**
 * Destination isolation, measured: what one dead, failing or rate-limited
 * destination costs the others, on a real Postgres with real HTTP
 * receivers on 127.0.0.1. Prints one line per scenario with its figures and
 * its target (or, with `--json`, one JSON object per scenario).
 *
 * ```sh
 * node_modules/.bin/node bench/destinations.ts
 * node_modules/.bin/deno run -A bench/destinations.ts --only dead,claim
 * node_modules/.bin/bun bench/destinations.ts --json
 * ```
 *
 * Scenarios: `dead` (100 never-answering routes ahead of 20 healthy ones,
 * per-route; 200 ahead of 20 in batches of 20), `down` (1,000 routes to a
 * destination answering 503, which then recovers), `ratelimit` (300 routes to
 * a destination limited to 10/s, drained by three workers, one per runtime),
 * `claim` (a claim with 10,000 routes of an open destination ahead of one
 * healthy due route, against the same claim on an empty table).
 *
 * @module
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { PostgresStore } from "../store.ts";
import { Worker } from "../worker.ts";
import { webhookChannel } from "../channels/webhook.ts";
import { silentLogger } from "../observe/logger.ts";
import { runtimeKey, scriptArgv } from "../core/_runtime.ts";
import type { RuntimeKey } from "../core/_runtime.ts";
import { claimBehindOpen } from "./_destinations_claim.ts";

const url = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const argv = process.argv.slice(2);
const json = argv.includes("--json");
const onlyArg = argv.find((a) => a.startsWith("--only"));
const onlyList = onlyArg === undefined
  ? ""
  : onlyArg.includes("=")
  ? onlyArg.slice(onlyArg.indexOf("=") + 1)
  : argv[argv.indexOf(onlyArg) + 1] ?? "";
const only = new Set(onlyList.split(",").filter((s) => s !== ""));
const wanted = (name: string): boolean => only.size === 0 || only.has(name);
const admin = postgres(url, { max: 2, onnotice: () => {} });

/** A receiver answering as `decide` says; records when each request arrived. */
async function receiver(decide: () => number | "hang") {
  const arrivals: number[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    arrivals.push(performance.now());
    for (const w of waiters.filter((w) => arrivals.length >= w.n)) w.resolve();
    const answer = decide();
    if (answer !== "hang") res.writeHead(answer).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    reached: (n: number) =>
      arrivals.length >= n
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ n, resolve })),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function freshSchema(): Promise<
  { store: PostgresStore; schema: string; drop(): Promise<void> }
> {
  const schema = `herald_dest_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const store = new PostgresStore({ url, schema, max: 6 });
  await store.migrate();
  return {
    store,
    schema,
    async drop() {
      await store.close();
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

function routes(base: string, n: number) {
  return Array.from(
    { length: n },
    (_, i) => ({ channel: "webhook", destination: `${base}/r/${i}` }),
  );
}

const channels = { webhook: webhookChannel({ allowHosts: ["127.0.0.1"] }) };

/** Healthy routes behind a never-answering destination: ms from the worker's start to the last healthy one. */
async function dead(k: number, deadRoutes: number): Promise<Record<string, unknown>> {
  const db = await freshSchema();
  const never = await receiver(() => "hang");
  const fine = await receiver(() => 204);
  try {
    await db.store.enqueue({ kind: "bench" }, routes(never.url, deadRoutes));
    await db.store.enqueue({ kind: "bench" }, routes(fine.url, 20));
    const worker = new Worker({
      store: db.store,
      channels,
      concurrency: 4,
      routesPerTransaction: k,
      sendTimeoutMs: 5_000,
      logger: silentLogger,
    });
    const started = performance.now();
    const running = worker.run();
    await fine.reached(20);
    const ms = Math.round(fine.arrivals[19]! - started);
    const deadInFlight = never.arrivals.length;
    await worker.shutdown({ timeoutMs: 0 });
    await running;
    return {
      scenario: `dead (${k === 1 ? "per-route" : `batch K=${k}`})`,
      dead_routes: deadRoutes,
      healthy_routes: 20,
      concurrency: 4,
      send_timeout_ms: 5_000,
      all_healthy_sent_ms: ms,
      dead_sends_in_flight: deadInFlight,
      target: "every healthy route within 2000 ms of the start",
      met: ms <= 2_000,
    };
  } finally {
    await never.close();
    await fine.close();
    await db.drop();
  }
}

/** A destination answering 503 for `outageMs`, then 204: probes, attempts, failures. */
async function down(): Promise<Record<string, unknown>> {
  const db = await freshSchema();
  let up = false;
  const rx = await receiver(() => (up ? 204 : 503));
  const cooldownMs = 1_000;
  const outageMs = 6_000;
  try {
    await db.store.enqueue({ kind: "bench" }, routes(rx.url, 1_000));
    const opened: number[] = [];
    const worker = new Worker({
      store: db.store,
      channels,
      concurrency: 4,
      interval: 100,
      destinations: { cooldownMs, maxCooldownMs: cooldownMs },
      retry: { minMs: 1_000, maxMs: 1_000 },
      logger: silentLogger,
    });
    worker.addEventListener("destination.opened", () => opened.push(performance.now()));
    const started = performance.now();
    const running = worker.run();
    await new Promise((r) => setTimeout(r, outageMs));
    up = true;
    const recoveredAt = performance.now();
    const schema = db.store.schema;
    for (;;) {
      const [row] = await admin`
        SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent,
               count(*) FILTER (WHERE status = 'failed')::int AS failed,
               sum(attempts)::int AS attempts
        FROM ${admin(schema)}.notification_routes`;
      if (row!["sent"] + row!["failed"] === 1_000) {
        await worker.shutdown();
        await running;
        const firstOpen = opened[0] ?? recoveredAt;
        const beforeOpen = rx.arrivals.filter((t) => t <= firstOpen).length;
        const whileOpen = rx.arrivals.filter((t) => t > firstOpen && t < recoveredAt);
        // Probes per cool-down window: at most one each.
        const windows = new Map<number, number>();
        for (const t of whileOpen) {
          const w = Math.floor((t - firstOpen) / cooldownMs);
          windows.set(w, (windows.get(w) ?? 0) + 1);
        }
        return {
          scenario: "down (503, then up)",
          routes: 1_000,
          outage_ms: outageMs,
          cooldown_ms: cooldownMs,
          sends_before_open: beforeOpen,
          sends_while_open: whileOpen.length,
          max_sends_per_cooldown: Math.max(0, ...windows.values()),
          attempts_charged: row!["attempts"] - row!["sent"],
          failed: row!["failed"],
          drained_after_recovery_ms: Math.round(performance.now() - recoveredAt),
          total_ms: Math.round(performance.now() - started),
          target: "at most one probe per cool-down; no attempt charged while open; none failed",
          met: Math.max(0, ...windows.values()) <= 1 && row!["failed"] === 0 &&
            row!["attempts"] - row!["sent"] <= beforeOpen,
        };
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await rx.close();
    await db.drop();
  }
}

/** 300 routes to a destination limited to 10/s, three workers, one per runtime. */
async function ratelimit(): Promise<Record<string, unknown>> {
  const db = await freshSchema();
  const rx = await receiver(() => 204);
  const root = fileURLToPath(new URL("../", import.meta.url));
  const children: ReturnType<typeof spawn>[] = [];
  try {
    await db.store.configureDestination("webhook", rx.url, { ratePerSecond: 10, burst: 1 });
    const env = {
      ...process.env,
      DATABASE_URL: url,
      HERALD_SCHEMA: db.schema,
      HERALD_ALLOW_HOSTS: "127.0.0.1",
      HERALD_LOG_LEVEL: "warn",
    };
    const ready: Promise<void>[] = [];
    for (const runtime of ["deno", "bun", "node"] as RuntimeKey[]) {
      const name = `bench_rl_${runtime}_${db.schema.slice(-6)}`;
      const child = spawn(
        `${root}node_modules/.bin/${runtime}`,
        scriptArgv(runtime, `${root}mod.ts`, ["run", "--concurrency", "2"]),
        {
          env: {
            ...env,
            DATABASE_URL: `${url}${url.includes("?") ? "&" : "?"}application_name=${name}`,
          },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      children.push(child);
      ready.push(listening(name));
    }
    await Promise.all(ready);
    const started = performance.now();
    await db.store.enqueue({ kind: "bench" }, routes(rx.url, 300));
    await rx.reached(300);
    const seconds = (rx.arrivals[299]! - started) / 1000;
    let maxWindow = 0;
    for (let i = 0, j = 0; i < rx.arrivals.length; i++) {
      while (rx.arrivals[i]! - rx.arrivals[j]! >= 1_000) j++;
      maxWindow = Math.max(maxWindow, i - j + 1);
    }
    return {
      scenario: "ratelimit (10/s, three workers: deno, bun, node)",
      routes: 300,
      most_in_any_1s: maxWindow,
      seconds: Math.round(seconds * 10) / 10,
      target: "no 1 s window over 11; all within 33 s",
      met: maxWindow <= 11 && seconds < 33,
    };
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(
      children.map((c) => new Promise((r) => c.exitCode !== null ? r(0) : c.once("exit", r))),
    );
    await rx.close();
    await db.drop();
  }
}

/** Resolves once the worker named `name` listens (it is up and will hear the enqueue). */
async function listening(name: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const [row] = await admin`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE application_name = ${name} AND query ILIKE 'listen %'`;
    if ((row?.["n"] ?? 0) >= 1) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not start within 60 s`);
}

const runtime = runtimeKey();
const print = (r: Record<string, unknown>): void => {
  if (json) return void console.log(JSON.stringify({ runtime, ...r }));
  const { scenario, target, met, ...figures } = r;
  console.log(`${met ? "MET " : "MISS"} [${runtime}] ${scenario}`);
  console.log(`     ${Object.entries(figures).map(([k, v]) => `${k}=${v}`).join("  ")}`);
  console.log(`     target: ${target}`);
};
try {
  const scenarios: [string, () => Promise<Record<string, unknown>>][] = [
    ["dead", () => dead(1, 100)],
    ["dead", () => dead(20, 200)],
    ["down", down],
    ["ratelimit", ratelimit],
    ["claim", () => claimBehindOpen({ url, admin, freshSchema })],
  ];
  for (const [name, run] of scenarios) if (wanted(name)) print(await run());
} finally {
  await admin.end();
}
