/**
 * `herald demo`: Herald working end to end with nothing to set up. Starts a
 * webhook receiver on 127.0.0.1 that verifies signatures, enqueues a handful
 * of notifications (one receiver fails once then succeeds, one is gone for
 * good), runs the worker until every route is settled, and prints what
 * happened to each.
 *
 * @module
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import { logChannel } from "../channels/log.ts";
import { verifyWebhook } from "../channels/webhook_signature.ts";
import { webhookChannel } from "../channels/webhook.ts";
import { silentLogger } from "../observe/logger.ts";
import { Worker } from "../worker.ts";
import type { RouteEventDetail } from "../worker.ts";
import type { Common } from "./_flags.ts";
import { openDatabase } from "./_command.ts";
import type { Io } from "./_command.ts";
import { formatDuration, table } from "./_format.ts";
import type { Command } from "./_command.ts";
import type { PostgresStore } from "../store.ts";

// A signing secret for the demo only: the receiver below verifies with it.
const DEMO_SECRET = "whsec_ZGVtby1vbmx5LW5vdC1hLXJlYWwtc2VjcmV0LTAxMjM0NQ==";

/** `herald demo` */
export const demoCommand: Command = {
  summary: "see Herald deliver, retry and fail real webhooks, with no setup",
  usage: `herald demo [options]

Runs on the embedded database unless DATABASE_URL is set, in the schema
herald_demo (emptied first), so it never touches your own routes.`,
  options: {},
  positionals: 0,
  run,
};

async function run(
  _values: unknown,
  _args: readonly string[],
  common: Common,
  io: Io,
): Promise<number> {
  const receiver = await startReceiver();
  let db: Awaited<ReturnType<typeof openDatabase>>;
  try {
    db = await openDatabase({ ...common, schema: "herald_demo" }, io);
  } catch (err) {
    await receiver.close(); // or the open server keeps the program from exiting
    throw err;
  }
  try {
    await db.store.migrate();
    // Start from an empty demo schema: leftovers of an earlier, interrupted demo go.
    const leftovers = await db.store.listRoutes({ status: "queued", limit: 10_000 });
    if (leftovers.length > 0) await db.store.cancel(leftovers.map((r) => r.id));
    await db.store.prune({ olderThanMs: 0 });
    io.out(`receiver listening on ${receiver.url} (verifying Standard Webhooks signatures)`);
    const routes = await enqueueDemo(db.store, receiver.url);
    io.out(`enqueued ${routes.size} routes; delivering:`);
    const settled = await deliver(db.store, routes, io);
    io.out("");
    const rows: string[][] = [];
    for (const [id, label] of routes) {
      const r = await db.store.getRoute(id);
      rows.push([label, r?.status ?? "?", String(r?.attempts ?? 0), r?.lastError ?? ""]);
    }
    io.out(table(["route", "status", "attempts", "last error"], rows));
    io.out("");
    io.out(`the receiver verified ${receiver.verified()} signed request(s).`);
    io.out("Look around (herald = deno run -A mod.ts, bun run mod.ts or node mod.ts):");
    io.out("  herald stats --schema herald_demo");
    io.out("  herald routes --schema herald_demo");
    io.out("  herald show ROUTE_ID --schema herald_demo");
    io.out("  herald dashboard --schema herald_demo    (then open http://127.0.0.1:8089/)");
    return settled ? 0 : 1;
  } finally {
    await db.close();
    await receiver.close();
  }
}

/** Enqueues the demo's notifications; returns each route id with a label to print. */
async function enqueueDemo(store: PostgresStore, url: string): Promise<Map<string, string>> {
  const notifications: [string, string, string][] = [
    ["order.shipped", "webhook", `${url}/orders`],
    ["order.shipped", "log", "ops-console"],
    ["user.signed_up", "webhook", `${url}/flaky`],
    ["invoice.paid", "webhook", `${url}/gone`],
  ];
  const routes = new Map<string, string>();
  for (const [kind, channel, destination] of notifications) {
    const { routeIds } = await store.enqueue({ kind, payload: { demo: true, kind } }, [{
      channel,
      destination,
    }]);
    routes.set(routeIds[0]!, `${kind} -> ${channel} ${destination.replace(url, "")}`);
  }
  return routes;
}

/** Runs a worker until every demo route is settled (30 s at most), narrating; true if all were. */
async function deliver(
  store: PostgresStore,
  routes: ReadonlyMap<string, string>,
  io: Io,
): Promise<boolean> {
  const worker = new Worker({
    store,
    channels: {
      webhook: webhookChannel({ secret: DEMO_SECRET, allowHosts: ["127.0.0.1"] }),
      log: logChannel({ write: (line) => io.out(`  log channel printed: ${line}`) }),
    },
    logger: silentLogger,
    interval: 250,
    retry: { baseMs: 500, maxMs: 2_000 },
  });
  const settled = new Set<string>();
  const done = new AbortController();
  const on = (name: string, say: (d: RouteEventDetail) => string, final: boolean): void =>
    worker.addEventListener(name, (e) => {
      const d = (e as CustomEvent<RouteEventDetail>).detail;
      if (!routes.has(d.routeId)) return;
      io.out(`  ${routes.get(d.routeId)}: attempt ${d.attempt} ${say(d)}`);
      if (final) settled.add(d.routeId);
      if (settled.size === routes.size) done.abort();
    });
  on("sent", () => "sent", true);
  on("retry", (d) => `failed (${d.error}); retrying in ${formatDuration(d.delayMs ?? 0)}`, false);
  on("failed", (d) => `failed for good (${d.error})`, true);
  const deadline = setTimeout(() => done.abort(), 30_000);
  await worker.run(done.signal);
  clearTimeout(deadline);
  return settled.size === routes.size;
}

/** A local webhook receiver: `/flaky` answers 503 once per route, `/gone` 410, the rest 204. */
async function startReceiver(): Promise<
  { url: string; verified(): number; close(): Promise<void> }
> {
  const seen = new Set<string>();
  let verified = 0;
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", async () => {
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v]),
      );
      if (!(await verifyWebhook({ secret: DEMO_SECRET, headers, body }))) {
        return void res.writeHead(401).end();
      }
      verified++;
      const id = String(headers["webhook-id"]);
      if (req.url === "/gone") return void res.writeHead(410).end();
      if (req.url === "/flaky" && !seen.has(id)) {
        seen.add(id);
        return void res.writeHead(503, { "retry-after": "1" }).end();
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    verified: () => verified,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
