/**
 * The alternative to pruning by batched deletes, measured in the same run as
 * the `retention` rows: history partitioned by day (as pg-boss 10 keeps its
 * jobs in partitions), a finished route moved at its outcome from the queue
 * into `route_history`, and a day of history removed by dropping its
 * partition. A prototype in the bench's own schema; Herald does not ship it.
 *
 * - `finalise-update` / `finalise-move`: what the outcome costs. The raw
 *   per-route loop (c = 4, same driver) finishing each route in place (one
 *   `UPDATE`, today's schema) against moving it (one `DELETE … RETURNING`
 *   feeding an `INSERT` into the partitioned history); twice each, alternating.
 * - `partition-drop`: dropping the oldest day's partitions of the routes' and
 *   the attempts' history while four writers insert finished routes and one
 *   transaction stays open for `HOLD_MS` after its insert (a send in
 *   flight). `DROP TABLE` of a partition takes an `ACCESS EXCLUSIVE` lock on
 *   the parent: it waits for the open transaction and every writer queues
 *   behind it. `max ms` is the writers' longest statement in the window.
 * - `partition-detach`: the same with `DETACH PARTITION … CONCURRENTLY`
 *   (Postgres 14+) and then `DROP TABLE` of what was detached.
 *
 * @module
 */
import postgres from "postgres";
import type { BenchDb } from "./_db.ts";
import { DAY, HISTORY_DAYS as DAYS, sleep } from "./_db.ts";
import { rawLoop } from "./_raw.ts";
import { percentile, round } from "./_report.ts";
import type { Result } from "./_report.ts";

/** How long the open transaction holds after its insert (a slow send). */
export const HOLD_MS = 2_000;

/** Writers inserting finished routes during the drop. */
const WRITERS = 4;

/** The writers' rate is measured this long before the drop. */
const BASE_MS = 3_000;

/** `finalise-update`, `finalise-move`, `partition-drop` and `partition-detach` rows. */
export async function partitionRows(
  db: BenchDb,
  runtime: string,
  options: { history: number; routes: number; capMs: number },
): Promise<Result[]> {
  const schema = await db.fresh(0);
  try {
    await createHistory(db, schema);
    await loadHistory(db, schema, options.history);
    const rows = await finaliseCost(db, schema, runtime, options);
    rows.push(await dropBesideWriters(db, schema, runtime, "drop"));
    const [v] = await db.admin`SELECT current_setting('server_version_num')::int AS n`;
    if (Number(v?.["n"]) >= 140000) {
      rows.push(await dropBesideWriters(db, schema, runtime, "detach"));
    }
    return rows;
  } finally {
    await db.drop(schema);
  }
}

/** The partitioned history: a table per day for the routes and for their attempt logs. */
async function createHistory(db: BenchDb, schema: string): Promise<void> {
  const s = `"${schema}"`;
  const parts: string[] = [];
  for (let k = -1; k <= DAYS + 1; k++) {
    for (const table of ["route_history", "attempt_history"]) {
      parts.push(`CREATE TABLE ${s}.${table}_${k < 0 ? "next" : k} PARTITION OF ${s}.${table}
        FOR VALUES FROM (date_trunc('day', now()) - ${k} * interval '1 day')
        TO (date_trunc('day', now()) - ${k - 1} * interval '1 day');`);
    }
  }
  await db.admin.unsafe(`
    CREATE TABLE ${s}.route_history (
      route_id uuid NOT NULL, notification_id uuid NOT NULL, channel text NOT NULL,
      destination text NOT NULL, status text NOT NULL, attempts int NOT NULL,
      last_error text, created_at timestamptz NOT NULL, finished_at timestamptz NOT NULL,
      PRIMARY KEY (route_id, finished_at)
    ) PARTITION BY RANGE (finished_at);
    CREATE INDEX ON ${s}.route_history (status, finished_at);
    CREATE TABLE ${s}.attempt_history (
      route_id uuid NOT NULL, attempt int NOT NULL, started_at timestamptz NOT NULL,
      duration_ms float8 NOT NULL, outcome text NOT NULL, http_status int, error text,
      finished_at timestamptz NOT NULL
    ) PARTITION BY RANGE (finished_at);
    CREATE INDEX ON ${s}.attempt_history (route_id);
    ${parts.join("\n")}`);
}

/** `routes` finished routes with an attempt each, over the last 30 days (as the retention rows). */
async function loadHistory(db: BenchDb, schema: string, routes: number): Promise<void> {
  const s = `"${schema}"`;
  await db.admin.unsafe(`
    WITH routes AS (
      INSERT INTO ${s}.route_history (route_id, notification_id, channel, destination, status,
        attempts, created_at, finished_at)
      SELECT gen_random_uuid(), gen_random_uuid(), 'noop', 'bench', 'sent', 1, at, at
      FROM (SELECT now() - (3600000 + (i - 1)::float8 / ${routes} * ${DAYS * DAY})
              * interval '1 millisecond' AS at
            FROM generate_series(1, ${routes}) AS i) AS t
      RETURNING route_id, finished_at)
    INSERT INTO ${s}.attempt_history (route_id, attempt, started_at, duration_ms, outcome,
      http_status, finished_at)
    SELECT route_id, 1, finished_at, 20, 'sent', 200, finished_at FROM routes`);
  await db.admin.unsafe(`VACUUM ANALYZE ${s}.route_history, ${s}.attempt_history`);
  await db.settle();
}

/** The outcome moved into the partitioned history, in one statement as the `UPDATE` is. */
function moveSql(schema: string, id: string): string {
  return `WITH gone AS (
     DELETE FROM "${schema}".notification_routes WHERE route_id = ${id}
     RETURNING route_id, notification_id, channel, destination, attempts, created_at)
   INSERT INTO "${schema}".route_history (route_id, notification_id, channel, destination,
     status, attempts, created_at, finished_at)
   SELECT route_id, notification_id, channel, destination, 'sent', attempts + 1, created_at, now()
   FROM gone`;
}

/** The raw loop finishing in place, then moving; twice, alternating. */
async function finaliseCost(
  db: BenchDb,
  schema: string,
  runtime: string,
  options: { routes: number; capMs: number },
): Promise<Result[]> {
  const rates: { update: number[]; move: number[] } = { update: [], move: [] };
  for (let pass = 0; pass < 2; pass++) {
    for (const kind of ["update", "move"] as const) {
      await db.add(schema, options.routes);
      const run = kind === "update"
        ? await rawLoop(db, schema, 4, options.capMs)
        : await rawLoop(db, schema, 4, options.capMs, false, moveSql);
      rates[kind].push(run.seconds > 0 ? run.routes / run.seconds : 0);
      await db.vacuum(schema, ["notification_routes"]);
    }
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const row = (kind: "update" | "move"): Result => ({
    name: `finalise-${kind}`,
    runtime,
    concurrency: 4,
    routesPerTransaction: 1,
    routes: options.routes * 2,
    seconds: round((options.routes * 2) / mean(rates[kind]), 3),
    routes_per_s: round(mean(rates[kind]), 1),
    note: `raw loop, runs ${rates[kind].map((r) => Math.round(r)).join(" / ")} routes/s${
      kind === "move"
        ? `; ${round(mean(rates.move) / mean(rates.update), 2)}x of finalise-update`
        : ""
    }`,
  });
  return [row("update"), row("move")];
}

/** Drops (or detaches, then drops) the oldest day's partitions while writers insert. */
async function dropBesideWriters(
  db: BenchDb,
  schema: string,
  runtime: string,
  how: "drop" | "detach",
): Promise<Result> {
  const s = `"${schema}"`;
  const oldest = how === "drop" ? DAYS : DAYS - 1;
  const [count] = await db.admin.unsafe(
    `SELECT count(*)::int AS n FROM ${s}.route_history_${oldest}`,
  );
  const writers = postgres(db.url, { max: WRITERS + 2, onnotice: () => {} });
  const insert = `INSERT INTO ${s}.route_history (route_id, notification_id, channel,
    destination, status, attempts, created_at, finished_at)
    VALUES (gen_random_uuid(), gen_random_uuid(), 'noop', 'bench', 'sent', 1, now(), now())`;
  const done: { at: number; took: number }[] = [];
  let stop = false;
  let loops: Promise<void>[] = [];
  let sender: Promise<unknown> = Promise.resolve();
  try {
    await Promise.all(Array.from({ length: WRITERS + 2 }, () => writers`SELECT 1`));
    loops = Array.from({ length: WRITERS }, async () => {
      while (!stop) {
        const began = performance.now();
        await writers.unsafe(insert, [], { prepare: true });
        const at = performance.now();
        done.push({ at, took: at - began });
      }
    });
    await sleep(BASE_MS);
    const baseTo = performance.now();
    // A send in flight: its transaction has written and is not over yet.
    let held!: () => void;
    const inserted = new Promise<void>((resolve) => (held = resolve));
    sender = writers.begin(async (tx) => {
      await tx.unsafe(insert);
      held();
      await sleep(HOLD_MS);
    });
    await inserted;
    const from = performance.now();
    for (const table of ["route_history", "attempt_history"]) {
      if (how === "detach") {
        await writers.unsafe(
          `ALTER TABLE ${s}.${table} DETACH PARTITION ${s}.${table}_${oldest} CONCURRENTLY`,
        );
      }
      await writers.unsafe(`DROP TABLE ${s}.${table}_${oldest}`);
    }
    const to = performance.now();
    await sender;
    stop = true;
    await Promise.all(loops);
    const base = done.filter((d) => d.at < baseTo && d.at >= baseTo - BASE_MS).length /
      (BASE_MS / 1000);
    const during = done.filter((d) => d.at >= from && d.at <= to + 1).length /
      Math.max(0.001, (to - from) / 1000);
    const slowest = Math.max(0, ...done.filter((d) => d.at >= from).map((d) => d.took));
    return {
      name: how === "drop" ? "partition-drop" : "partition-detach",
      runtime,
      concurrency: WRITERS,
      routesPerTransaction: 1,
      routes: Number(count?.["n"] ?? 0),
      seconds: round((to - from) / 1000, 3),
      routes_per_s: round(during, 1),
      p50_ms: round(percentile(done.map((d) => d.took), 50), 2),
      max_ms: round(slowest, 1),
      note: `a day's partitions (${
        Number(count?.["n"] ?? 0).toLocaleString("en-US")
      } routes + attempts) ${
        how === "drop" ? "dropped" : "detached concurrently, then dropped"
      } in ${round(to - from, 1)} ms beside a transaction open ${HOLD_MS} ms; writers ${
        Math.round(base)
      }/s before, ${Math.round(during)}/s during (routes/s column), their longest insert ${
        round(slowest, 1)
      } ms`,
    };
  } finally {
    stop = true;
    // Also when the drop threw: every writer and the open transaction end before the pool does.
    await Promise.allSettled([...loops, sender]);
    await writers.end({ timeout: 5 });
  }
}
