/**
 * A webhook receiver that verifies Standard Webhooks signatures and drops
 * duplicates by `webhook-id` (Herald delivers at least once; the id is the
 * route id, the same on every retry). Plain `node:http`, so it runs on
 * Deno, Bun and Node alike.
 *
 *   WEBHOOK_SECRET=whsec_... PORT=8787 node examples/receiver.ts
 *
 * In your project, import from "@herald/herald" instead of "../mod.ts".
 */
import { createServer } from "node:http";
import process from "node:process";
import { verifyWebhook } from "../mod.ts";

const secret = process.env["WEBHOOK_SECRET"] ?? "";
const seen = new Set<string>(); // use a table with a unique key in production

const server = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (body += chunk));
  req.on("end", async () => {
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v]),
    );
    // Verify the raw body as received; re-serialised JSON would not match.
    if (!(await verifyWebhook({ secret, headers, body }))) {
      console.log("rejected: bad signature");
      return void res.writeHead(401).end();
    }
    const id = String(headers["webhook-id"]);
    if (seen.has(id)) {
      console.log(`duplicate ${id}: already handled`);
      return void res.writeHead(204).end();
    }
    seen.add(id);
    const event = JSON.parse(body) as { type: string; data: unknown };
    console.log(`verified ${id} ${event.type} ${JSON.stringify(event.data)}`);
    res.writeHead(204).end();
  });
});

server.listen(Number(process.env["PORT"] ?? 8787), "127.0.0.1", () => {
  const address = server.address();
  console.log(
    `listening on http://127.0.0.1:${typeof address === "object" && address ? address.port : ""}`,
  );
});
const close = (): void => void server.close();
process.once("SIGINT", close);
process.once("SIGTERM", close);
