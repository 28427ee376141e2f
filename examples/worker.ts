/**
 * A worker delivering webhooks (signed) and e-mail (through Postmark), that
 * shuts down gracefully on SIGINT/SIGTERM: it stops claiming, lets in-flight
 * sends finish for up to 10 s, then aborts them (their routes stay queued).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
 *   WEBHOOK_SECRET=whsec_... POSTMARK_TOKEN=... MAIL_FROM=alerts@example.com \
 *   node examples/worker.ts
 *
 * In your project, import from "@herald/herald" instead of "../mod.ts".
 */
import process from "node:process";
import { emailChannel, PostgresStore, webhookChannel, Worker } from "../mod.ts";

const env = process.env;
const url = env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const concurrency = 2;
// One connection per claim loop; LISTEN opens one more of its own.
const store = new PostgresStore({
  url,
  schema: env["HERALD_SCHEMA"] ?? "herald",
  max: concurrency,
});
const allowHosts = env["ALLOW_HOSTS"]?.split(",") ?? []; // e.g. 127.0.0.1 for local receivers

const worker = new Worker({
  store,
  concurrency,
  channels: {
    webhook: webhookChannel({ secret: env["WEBHOOK_SECRET"] ?? "", allowHosts }),
    email: emailChannel({
      provider: "postmark",
      apiKey: env["POSTMARK_TOKEN"] ?? "",
      from: env["MAIL_FROM"] ?? "alerts@example.com",
      template: (route) => ({
        subject: `Your order ${(route.payload as { order?: number }).order ?? ""} is confirmed`,
        text: `Thanks! (${route.kind})`,
      }),
      ...(env["POSTMARK_URL"] ? { baseUrl: env["POSTMARK_URL"] } : {}),
    }),
  },
  shutdownTimeoutMs: 10_000,
});
worker.addEventListener(
  "sent",
  (e) => console.log("sent", JSON.stringify((e as CustomEvent).detail)),
);
worker.addEventListener(
  "failed",
  (e) => console.log("failed", JSON.stringify((e as CustomEvent).detail)),
);

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

await store.migrate();
await worker.run(stop.signal); // resolves once every route it held is released
await store.close();
console.log("stopped cleanly");
