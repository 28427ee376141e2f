/**
 * The big-table family: the same drains on an empty table and on one that
 * holds production's ballast (`--history` sent routes, `--future` routes not
 * due for days), back to back; then what one claim reads there (EXPLAIN
 * ANALYZE BUFFERS of the store's own statement) and what an idle poll costs.
 *
 * @module
 */
import postgres from "postgres";
import { PostgresStore } from "../store.ts";
import { drain, noopChannel } from "./_herald.ts";
import { scenario } from "./_plan.ts";
import type { Options, Scenario } from "./_plan.ts";
import { latencyFigures, round, timeCalls } from "./_report.ts";
import type { Result } from "./_report.ts";
import type { BenchDb } from "./_db.ts";

/** The drains compared: per-route and batch, as the issue names them. */
const DRAINS = [
  { concurrency: 4, routesPerTransaction: 1 },
  { concurrency: 4, routesPerTransaction: 100 },
] as const;

/** Idle polls timed for the median and p99. */
const IDLE_POLLS = 200;

/** `stats()` calls timed (a /metrics scrape each). */
const SCRAPES = 20;

/** The `big` rows: empty-table drains, big-table drains, the claim's reads, the idle poll. */
export function planBig(options: Options): Scenario[] {
  if (!options.only.has("big")) return [];
  const shape = { name: "big-claim", concurrency: 1, routesPerTransaction: 1 };
  return [scenario(shape, (runtime, db) => bigTable(db, runtime, options))];
}

async function bigTable(db: BenchDb, runtime: string, options: Options): Promise<Result[]> {
  const rows: Result[] = [];
  await warmUp(db, options);
  for (const table of ["empty-table", "big-table"] as const) {
    const schema = await db.fresh(0);
    try {
      if (table === "big-table") {
        await db.add(schema, options.history, "sent");
        await db.add(schema, options.future, "future");
      }
      for (const d of DRAINS) {
        await db.add(schema, options.routes);
        // Both tables alike: the big one's load would otherwise still be checkpointing.
        const settled = await db.checkpoint();
        const run = await drain(db, schema, {
          ...d,
          routesPerTick: Math.max(options.routesPerTick, d.routesPerTransaction),
          routes: options.routes,
          capMs: options.capMs,
          channel: noopChannel,
        });
        rows.push({
          name: table,
          runtime,
          ...d,
          routes: run.routes,
          seconds: round(run.seconds, 3),
          routes_per_s: run.seconds > 0 ? round(run.routes / run.seconds, 1) : 0,
          capped: run.capped,
          ...(settled ? {} : { note: "CHECKPOINT refused: a checkpoint may have run beside it" }),
          ...(run.unsent > 0 ? { error: `${run.unsent} routes were not sent` } : {}),
        });
      }
      if (table === "big-table") rows.push(...await claimCost(db, schema, runtime, options));
    } finally {
      await db.drop(schema);
    }
  }
  return rows;
}

/** One small drain first, unreported: the first table measured must not pay the runtime's warm-up. */
async function warmUp(db: BenchDb, options: Options): Promise<void> {
  const schema = await db.fresh(2_000);
  try {
    for (const d of DRAINS) {
      await drain(db, schema, {
        ...d,
        routesPerTick: Math.max(options.routesPerTick, d.routesPerTransaction),
        routes: 1_000,
        capMs: options.capMs,
        channel: noopChannel,
      });
    }
  } finally {
    await db.drop(schema);
  }
}

/** What a claim reads on the big table: one due route behind the ballast, and none. */
async function claimCost(
  db: BenchDb,
  schema: string,
  runtime: string,
  options: Options,
): Promise<Result[]> {
  let captured: { query: string; params: unknown[] } | undefined;
  const sql = postgres(db.url, {
    max: 1,
    onnotice: () => {},
    debug: (_conn, query, params) => {
      if (query.includes("claimed AS (")) captured = { query, params: [...params] };
    },
  });
  const store = new PostgresStore({ sql, schema });
  const claim = () => store.transaction((tx) => tx.claimDue({ limit: 1, exclude: [] }));
  try {
    // Right after the drains the queue's index still holds the sent routes'
    // entries (dead until VACUUM); a claim steps over them. Measured once so,
    // then after the VACUUM autovacuum would run, the steady state.
    await claim();
    const unvacuumed = await explain(sql, captured!);
    await db.vacuum(schema, ["notification_routes"]);
    const shape = { runtime, concurrency: 1, routesPerTransaction: 1 };
    // After VACUUM: a due route of a priority the ballast does not have, then one of its own.
    const rows: Result[] = [];
    for (const priority of [1, 0]) {
      await db.admin`
        INSERT INTO ${db.admin(schema)}.notifications (id, kind) VALUES (gen_random_uuid(), 'due')`;
      await db.admin`
        INSERT INTO ${db.admin(schema)}.notification_routes
          (route_id, notification_id, channel, destination, destination_key, priority)
        SELECT gen_random_uuid(), id, 'noop', 'bench', '*', ${priority}
        FROM ${db.admin(schema)}.notifications WHERE kind = 'due'`;
      await claim(); // prepares the statement and captures its text
      const plan = await explain(sql, captured!);
      await db.admin`DELETE FROM ${db.admin(schema)}.notifications WHERE kind = 'due'`;
      rows.push({
        ...shape,
        name: "big-claim",
        routes: 1,
        seconds: plan.ms / 1000,
        routes_per_s: 0,
        buffers: plan.buffers,
        note: `claim of a due priority-${priority} route behind ${options.history} sent and ` +
          `${options.future} future routes (priority 0): ${plan.buffers} buffers, ` +
          `${plan.ms.toFixed(3)} ms in Postgres`,
      });
    }
    await claim();
    const idle = await explain(sql, captured!);
    const times: number[] = [];
    for (let i = 0; i < IDLE_POLLS; i++) {
      const began = performance.now();
      await claim();
      times.push(performance.now() - began);
    }
    // What a /metrics scrape or `herald stats` costs here: store.stats().
    await db.admin.unsafe(`ANALYZE "${schema}".notification_routes`);
    const total = options.history + options.future + options.routes * DRAINS.length;
    rows.push(await scrapeCost(store, shape, "stats", `over ${total} routes`));
    rows.push(...await dashboardCost(store, shape));
    rows.push(await backlogCost(db, schema, store, shape, options.future, total));
    rows.push({
      ...shape,
      name: "idle-poll",
      ...latencyFigures(times),
      buffers: idle.buffers,
      note: `a claim that finds nothing: ${idle.buffers} buffers, ${
        idle.ms.toFixed(3)
      } ms in Postgres (${unvacuumed.buffers} buffers before VACUUM, stepping over ${
        options.routes * DRAINS.length
      } just-sent routes); p50/p99 is the whole transaction from here`,
    });
    return rows;
  } finally {
    await store.close();
    await sql.end();
  }
}

/** `stats()` timed: a first call apart (it prepares the statements), then {@link SCRAPES}. */
async function scrapeCost(
  store: PostgresStore,
  shape: { runtime: string; concurrency: number; routesPerTransaction: number },
  name: string,
  over: string,
): Promise<Result> {
  // A long-lived store's scrapes reuse their prepared statements; the first
  // call is what a fresh `herald stats` process pays.
  const { firstMs, times } = await timeCalls(() => store.stats(), SCRAPES);
  const st = await store.stats();
  return {
    ...shape,
    name,
    ...latencyFigures(times),
    note: `store.stats() (what /metrics and herald stats read) ${over}; after a first call of ${
      round(firstMs, 1)
    } ms (statements prepared); estimated: ${st.estimated?.join(", ") || "none"}`,
  };
}

/**
 * A scrape in an outage: `backlog` routes waiting on top of the big table, a
 * fifth of them held behind a destination whose breaker is open (parked as
 * the breaker parks them: due when it closes, their own due time kept), the
 * rest due, and a quiet channel whose oldest due route is younger than all
 * of them.
 */
async function backlogCost(
  db: BenchDb,
  schema: string,
  store: PostgresStore,
  shape: { runtime: string; concurrency: number; routesPerTransaction: number },
  backlog: number,
  total: number,
): Promise<Result> {
  const s = db.admin(schema);
  await db.add(schema, backlog);
  await db.add(schema, 100, "due", "quiet");
  await db.admin`
    INSERT INTO ${s}.destinations (channel, key, state, open_until, trips)
    VALUES ('noop', 'https://down.example', 'open', now() + interval '1 hour', 1)`;
  await db.admin`
    UPDATE ${s}.notification_routes
    SET destination = 'https://down.example/hook', destination_key = 'https://down.example',
        held_from = next_attempt_at, next_attempt_at = now() + interval '1 hour'
    WHERE status = 'queued' AND channel = 'noop' AND next_attempt_at <= now()
      AND random() < 0.2`;
  await db.vacuum(schema, ["notification_routes", "destinations"], { analyse: true });
  return await scrapeCost(
    store,
    shape,
    "stats-backlog",
    `over ${total + backlog + 100} routes, ${backlog + 100} of them waiting (a fifth held ` +
      `behind an open destination, the rest due, and a quiet channel behind them all)`,
  );
}

/**
 * What the dashboard's reads cost on the big table: the routes list's first
 * page, a page 20 pages deep (keyset), a status filter, a filter matching
 * nothing (the worst case: every index walk runs out), and the chart.
 */
async function dashboardCost(
  store: PostgresStore,
  shape: { runtime: string; concurrency: number; routesPerTransaction: number },
): Promise<Result[]> {
  const timed = async (name: string, note: string, read: () => Promise<unknown>) => ({
    ...shape,
    name,
    ...latencyFigures((await timeCalls(read, SCRAPES)).times),
    note,
  });
  let after: { updatedAt: Date; id: string } | undefined;
  for (let i = 0; i < 20; i++) {
    const page = await store.listRoutes({ limit: 50, ...(after ? { after } : {}) });
    const last = page[page.length - 1];
    if (last === undefined) break;
    after = { updatedAt: last.updatedAt, id: last.id };
  }
  return [
    await timed(
      "page-first",
      "dashboard routes page: the newest 50",
      () => store.listRoutes({ limit: 50 }),
    ),
    await timed(
      "page-21",
      "dashboard routes page 21 (keyset, after 1,000 routes)",
      () => store.listRoutes({ limit: 50, ...(after ? { after } : {}) }),
    ),
    await timed(
      "page-queued",
      "dashboard routes page, status queued",
      () => store.listRoutes({ limit: 50, status: "queued" }),
    ),
    await timed(
      "page-no-match",
      "dashboard routes page, a kind no route has, any status: the worst case, every walk reads to its end",
      () => store.listRoutes({ limit: 50, kind: "no.such.kind" }),
    ),
    await timed(
      "activity",
      "dashboard chart: sent and failed per minute, last 180 minutes",
      () => store.activity(180),
    ),
  ];
}

/** EXPLAIN (ANALYZE, BUFFERS) of the claim as the store sent it, rolled back. */
async function explain(
  sql: postgres.Sql,
  { query, params }: { query: string; params: unknown[] },
): Promise<{ buffers: number; ms: number }> {
  let out: { buffers: number; ms: number } | undefined;
  const undo = new Error("rolled back on purpose");
  await sql.begin(async (tx) => {
    // The settings the claim runs under (its pre-statement).
    await tx.unsafe(`SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true),
                            set_config('plan_cache_mode', 'force_generic_plan', true)`);
    const [row] = await tx.unsafe(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${query}`,
      params as postgres.ParameterOrJSON<never>[],
    );
    const [doc] = row!["QUERY PLAN"] as [
      { Plan: Record<string, number>; "Execution Time": number },
    ];
    out = {
      buffers: doc.Plan["Shared Hit Blocks"]! + doc.Plan["Shared Read Blocks"]!,
      ms: doc["Execution Time"],
    };
    throw undo; // nothing it locked or took stays
  }).catch((err) => {
    if (err !== undo) throw err;
  });
  return out!;
}
