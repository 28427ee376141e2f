/** Routes in chosen end states, for the operator's tools to read. */
import type postgres from "postgres";
import type { Outcome } from "../../core/route.ts";
import type { PostgresStore } from "../../store.ts";
import { rec } from "./store_contract.ts";

/**
 * Enqueues one notification with a route per outcome (to `https://HOST/i`),
 * claims them all and finalises each so; `null` leaves one queued.
 */
export async function seedOutcomes(
  store: PostgresStore,
  outcomes: readonly (Outcome | null)[],
  { channel = "webhook", kind = "k", host = "example.com", payload = {} }: {
    channel?: string;
    kind?: string;
    host?: string;
    payload?: Record<string, string>;
  } = {},
): Promise<string[]> {
  const { routeIds } = await store.enqueue(
    { kind, payload },
    outcomes.map((_, i) => ({ channel, destination: `https://${host}/${i}` })),
  );
  await store.transaction(async (tx) => {
    await tx.claimDue({ limit: 1000, exclude: [] });
    const records = outcomes.flatMap((o, i) => (o ? [rec(routeIds[i]!, o)] : []));
    if (records.length) await tx.finalise(records);
  });
  return [...routeIds];
}

/**
 * A destination whose breaker is open, with `queued` routes waiting for it
 * (`https://HOST/hook`, one notification each), and a second one, open too,
 * with three: written straight into the tables, two statements for any
 * number of routes.
 */
export async function seedBacklog(
  sql: postgres.Sql,
  schema: string,
  queued: number,
  { channel = "webhook", host = "down.example", other = "flaky.example" } = {},
): Promise<void> {
  const s = sql(schema);
  await sql`
    INSERT INTO ${s}.destinations (channel, key, state, open_until) VALUES
      (${channel}, ${`https://${host}`}, 'open', now() + interval '1 hour'),
      (${channel}, ${`https://${other}`}, 'open', now() + interval '1 hour')`;
  await sql`
    WITH n AS (
      INSERT INTO ${s}.notifications (id, kind)
      SELECT gen_random_uuid(), 'k' FROM generate_series(1, ${queued + 3}::int)
      RETURNING id)
    INSERT INTO ${s}.notification_routes
      (route_id, notification_id, channel, destination, destination_key)
    SELECT gen_random_uuid(), id, ${channel}, 'https://' || h || '/hook', 'https://' || h
    FROM (SELECT id, CASE WHEN row_number() OVER () <= 3 THEN ${other}
                          ELSE ${host} END AS h FROM n) x`;
}
