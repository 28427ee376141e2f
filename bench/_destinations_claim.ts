/**
 * The destinations bench's `claim` row: a claim with 10,000 routes of an open
 * destination ahead of one healthy due route, against the same claim with
 * the healthy route alone, and the plan of each (through auto_explain).
 *
 * @module
 */
import postgres from "postgres";
import { PostgresStore } from "../store.ts";

/** What the row needs of the bench script: the database and a fresh, migrated schema. */
export interface ClaimBench {
  readonly url: string;
  readonly admin: postgres.Sql;
  readonly freshSchema: () => Promise<
    { store: PostgresStore; schema: string; drop(): Promise<void> }
  >;
}

/**
 * The claim with 10,000 routes of an open destination (parked by the breaker
 * as it opened) ahead of one healthy due route, against the same claim with
 * the healthy route alone: samples interleaved, so both see the same load.
 */
export async function claimBehindOpen(
  { url, admin, freshSchema }: ClaimBench,
): Promise<Record<string, unknown>> {
  const alone = await freshSchema();
  const behind = await freshSchema();
  try {
    for (const db of [alone, behind]) {
      await db.store.enqueue({ kind: "bench" }, [{
        channel: "webhook",
        destination: "https://ok.example/1",
      }]);
    }
    const s = admin(behind.schema);
    await admin`
      WITH n AS (
        INSERT INTO ${s}.notifications (id, kind) SELECT gen_random_uuid(), 'bench'
        FROM generate_series(1, 10000) RETURNING id)
      INSERT INTO ${s}.notification_routes
        (route_id, notification_id, channel, destination, destination_key, next_attempt_at)
      SELECT gen_random_uuid(), id, 'webhook', 'https://dead.example/x', 'https://dead.example',
             now() - interval '1 hour' FROM n`;
    await admin`INSERT INTO ${s}.destinations (channel, key) VALUES ('webhook', 'https://dead.example')`;
    await behind.store.transaction((tx) =>
      tx.reportDestinations!([{
        channel: "webhook",
        key: "https://dead.example",
        ok: 0,
        fail: 5,
        gone: false,
        probe: false,
        error: "HTTP 503",
      }], {
        failureThreshold: 5,
        cooldownMs: 3_600_000,
        maxCooldownMs: 3_600_000,
        disableAfterMs: 1e12,
      })
    );
    for (const db of [alone, behind]) {
      await admin.unsafe(
        `VACUUM ANALYZE "${db.schema}".notification_routes, "${db.schema}".destinations`,
      );
    }
    const samples = { alone: [] as number[], behind: [] as number[] };
    for (let i = 0; i < 400; i++) {
      for (const [name, db] of [["alone", alone], ["behind", behind]] as const) {
        const t = performance.now();
        await claimOnce(db.store);
        samples[name].push(performance.now() - t);
      }
    }
    const p50 = (xs: number[]) =>
      Math.round(xs.sort((a, b) => a - b)[xs.length >> 1]! * 1000) / 1000;
    const planAlone = await explain(url, alone.schema);
    const planBehind = await explain(url, behind.schema);
    // What parking saves: the same backlog left due, the destination merely marked open.
    await admin`
      UPDATE ${s}.notification_routes SET next_attempt_at = held_from, held_from = NULL
      WHERE held_from IS NOT NULL`;
    await admin.unsafe(`VACUUM ANALYZE "${behind.schema}".notification_routes`);
    const planUnparked = await explain(url, behind.schema);
    return {
      scenario: "claim (10,000 routes of an open destination ahead of one healthy route)",
      claim_tx_ms_p50_alone: p50(samples.alone),
      claim_tx_ms_p50_behind: p50(samples.behind),
      buffers_alone: planAlone.buffers,
      buffers_behind: planBehind.buffers,
      execution_ms_alone: planAlone.ms,
      execution_ms_behind: planBehind.ms,
      unparked_buffers: planUnparked.buffers,
      unparked_execution_ms: planUnparked.ms,
      target:
        "no measurable slowdown: p50 within 10% (or 0.1 ms), buffers within 10 (a deeper index)",
      met: planBehind.hits <= planAlone.hits + 10 &&
        p50(samples.behind) <= Math.max(p50(samples.alone) * 1.1, p50(samples.alone) + 0.1),
    };
  } finally {
    await alone.drop();
    await behind.drop();
  }
}

/** One claim of one route, rolled back: the claim's cost alone, nothing sent. */
async function claimOnce(store: PostgresStore): Promise<void> {
  await store.transaction(async (tx) => {
    const got = await tx.claimDue({ limit: 1, exclude: [], maxInFlight: 2 });
    if (got.length !== 1) throw new Error(`claimed ${got.length}`);
    throw new RollBack();
  }).catch((err) => {
    if (!(err instanceof RollBack)) throw err;
  });
}

class RollBack extends Error {}

/** EXPLAIN (ANALYZE, BUFFERS) of the worker's own claim, caught through auto_explain. */
async function explain(
  url: string,
  schema: string,
): Promise<{ buffers: string; ms: number; hits: number }> {
  let text = "";
  const sql = postgres(url, {
    max: 1,
    onnotice: (n) => void (text = String(n["message"] ?? "")),
    connection: {
      session_preload_libraries: "auto_explain",
      "auto_explain.log_min_duration": "0",
      "auto_explain.log_analyze": "on",
      "auto_explain.log_buffers": "on",
      "auto_explain.log_level": "notice",
    } as Record<string, string>,
  });
  const store = new PostgresStore({ sql, schema });
  try {
    await store.transaction((tx) =>
      tx.claimDue({ limit: 1, exclude: [], maxInFlight: 2 }).then(() => {
        throw new RollBack();
      })
    ).catch((err) => {
      if (!(err instanceof RollBack)) throw err;
    });
  } finally {
    await sql.end();
  }
  const top = text.split("\n").find((l) => /Buffers:/.test(l))?.trim() ?? "(no buffers line)";
  const ms = Number(/duration: ([0-9.]+) ms/.exec(text)?.[1] ?? NaN);
  return {
    buffers: top.replace("Buffers: ", ""),
    ms,
    hits: Number(/hit=(\d+)/.exec(top)?.[1] ?? NaN),
  };
}
