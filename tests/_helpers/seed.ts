/** Routes in chosen end states, for the operator's tools to read. */
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
