/**
 * Enqueue notifications inside your application's own postgres.js
 * transaction (the transactional outbox): the order and its notifications
 * commit together or not at all.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
 *   RECEIVER_URL=https://example.com/hooks node examples/enqueue_in_transaction.ts
 *
 * In your project, import from "@herald/herald" instead of "../mod.ts".
 */
import postgres from "postgres";
import process from "node:process";
import { enqueue, PostgresStore } from "../mod.ts";

const url = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = process.env["HERALD_SCHEMA"] ?? "herald";
const receiver = process.env["RECEIVER_URL"] ?? "https://example.com/hooks/orders";

// Herald's tables (once, usually at deploy time: `herald migrate`).
const store = new PostgresStore({ url, schema, max: 1 });
await store.migrate();
await store.close();

const sql = postgres(url, { onnotice: () => {} });
try {
  await sql`CREATE TABLE IF NOT EXISTS ${
    sql(schema)
  }.example_orders (id serial PRIMARY KEY, item text)`;
  const { order, routeIds } = await sql.begin(async (tx) => {
    const [row] = await tx`INSERT INTO ${
      sql(schema)
    }.example_orders (item) VALUES ('teapot') RETURNING id`;
    const order = row!["id"] as number;
    const { routeIds } = await enqueue(
      tx,
      {
        kind: "order.created",
        payload: { order, item: "teapot" },
        idempotencyKey: `order-${order}`,
      },
      [
        { channel: "webhook", destination: receiver },
        { channel: "email", destination: "buyer@example.com" },
      ],
      { schema },
    );
    return { order, routeIds };
  });
  console.log(JSON.stringify({ order, routeIds }));
} finally {
  await sql.end();
}
