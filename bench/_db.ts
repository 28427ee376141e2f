/**
 * The benchmark's database side: a fresh, migrated schema per scenario,
 * loaded with routes in two set-based INSERTs, and dropped afterwards even
 * when the scenario fails.
 *
 * @module
 */
import postgres from "postgres";
import { PostgresStore } from "../store.ts";

// Ids are made as enqueue makes them: UUID version 7 (time first), here from
// the clock in SQL (Postgres 15 has no uuidv7()): a v4's random bits, the
// milliseconds over its first six bytes, version bits 0111.

/** A day, in milliseconds. */
export const DAY = 86_400_000;

/** Days of history the retention rows load; a prune removes the oldest. */
export const HISTORY_DAYS = 30;

/** The database every scenario runs against. */
export class BenchDb {
  /** The connection URL. */
  readonly url: string;
  /** A small pool for setup, checks and cleanup; never measured. */
  readonly admin: postgres.Sql;
  readonly #schemas = new Set<string>();
  /** A time-ordered (version 7) UUID, as Herald's own ids are: a SQL fragment for the loaders. */
  readonly #uuid: postgres.PendingQuery<postgres.Row[]>;

  constructor(url: string) {
    this.url = url;
    this.admin = postgres(url, { max: 2, onnotice: () => {} });
    this.#uuid = this.admin.unsafe(
      `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
         substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
         FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid`,
    );
  }

  /**
   * Writes every dirty buffer out now (`CHECKPOINT`; superuser or, from
   * Postgres 15, `pg_checkpoint`), so a drain measured next does not run
   * beside the spread checkpoint that loading a million rows sets off (its
   * writes slow every commit's flush). False when refused.
   */
  async checkpoint(): Promise<boolean> {
    try {
      await this.admin`CHECKPOINT`;
      return true;
    } catch {
      return false;
    }
  }

  /** `VACUUM` of `tables` in `schema`, with `ANALYZE` when asked. */
  async vacuum(
    schema: string,
    tables: readonly string[],
    { analyse = false }: { analyse?: boolean } = {},
  ): Promise<void> {
    const list = tables.map((t) => `"${schema}".${t}`).join(", ");
    await this.admin.unsafe(`VACUUM ${analyse ? "ANALYZE " : ""}${list}`);
  }

  /**
   * Creates a migrated schema holding `routes` queued routes on channel
   * `channel`, one notification each, vacuumed and analysed so every
   * scenario starts from the same clean table. The schema is remembered
   * until {@link drop} (or {@link dropAll}) removes it.
   */
  async fresh(routes: number, channel = "noop"): Promise<string> {
    const schema = `herald_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    this.#schemas.add(schema);
    const store = new PostgresStore({ url: this.url, schema, max: 1 });
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
    const s = this.admin(schema);
    if (routes > 0) {
      await this.admin`
        INSERT INTO ${s}.notifications (id, kind, payload)
        SELECT ${this.#uuid}, 'bench.event', jsonb_build_object('n', i)
        FROM generate_series(1, ${routes}::int) AS i`;
      // As enqueue writes them: each route names its destination ('bench' is not a
      // URL, so the channel's one destination, '*'), whose row exists.
      await this.admin`
        INSERT INTO ${s}.notification_routes
          (route_id, notification_id, channel, destination, destination_key)
        SELECT ${this.#uuid}, id, ${channel}, 'bench', '*' FROM ${s}.notifications`;
      await this.admin`
        INSERT INTO ${s}.destinations (channel, key) VALUES (${channel}, '*')
        ON CONFLICT DO NOTHING`;
    }
    // Autovacuum may be off: give the planner statistics and a clean heap.
    await this.vacuum(schema, ["notifications", "notification_routes", "destinations"], {
      analyse: true,
    });
    return schema;
  }

  /**
   * Adds `routes` due routes to `schema` (as {@link fresh} loads them), or
   * production-size ballast: `sent` routes of history, a day old, or
   * `future` routes due in one to thirty days. Vacuumed and analysed after.
   */
  async add(
    schema: string,
    routes: number,
    kind: "due" | "sent" | "future" = "due",
    channel = "noop",
  ): Promise<void> {
    const s = this.admin(schema);
    const tag = `bench.${kind}.${crypto.randomUUID()}`;
    await this.admin`
      INSERT INTO ${s}.notifications (id, kind, payload, created_at)
      SELECT ${this.#uuid}, ${tag}, jsonb_build_object('n', i),
             now() - CASE WHEN ${kind} = 'sent' THEN interval '1 day' ELSE interval '0' END
      FROM generate_series(1, ${routes}::int) AS i`;
    await this.admin`
      INSERT INTO ${s}.notification_routes
        (route_id, notification_id, channel, destination, destination_key, status, attempts,
         next_attempt_at, sent_at, created_at, updated_at)
      SELECT ${this.#uuid}, id, ${channel}, 'bench', '*',
             CASE WHEN ${kind} = 'sent' THEN 'sent' ELSE 'queued' END,
             CASE WHEN ${kind} = 'sent' THEN 1 ELSE 0 END,
             CASE WHEN ${kind} = 'future'
                  THEN now() + interval '1 day' + random() * interval '29 days'
                  ELSE created_at END,
             CASE WHEN ${kind} = 'sent' THEN created_at END, created_at, created_at
      FROM ${s}.notifications WHERE kind = ${tag}`;
    await this.vacuum(schema, ["notifications", "notification_routes"], { analyse: true });
  }

  /**
   * Adds `routes` sent routes of history as workers leave them: each with its
   * notification and one attempt-log row, finished at ages spread evenly
   * from `newestMs` to `newestMs + spanMs` ago. Vacuumed and analysed after.
   */
  async addHistory(
    schema: string,
    routes: number,
    ages: { newestMs: number; spanMs: number },
    channel = "noop",
  ): Promise<void> {
    const s = this.admin(schema);
    const tag = `bench.history.${crypto.randomUUID()}`;
    await this.admin`
      INSERT INTO ${s}.notifications (id, kind, payload, created_at)
      SELECT ${this.#uuid}, ${tag}, jsonb_build_object('n', i),
             now() - (${ages.newestMs}::float8 + (i - 1)::float8 / ${routes}::int
               * ${ages.spanMs}::float8) * interval '1 millisecond'
      FROM generate_series(1, ${routes}::int) AS i`;
    await this.admin`
      WITH routes AS (
        INSERT INTO ${s}.notification_routes
          (route_id, notification_id, channel, destination, destination_key, status, attempts,
           next_attempt_at, sent_at, created_at, updated_at)
        SELECT ${this.#uuid}, id, ${channel}, 'bench', '*', 'sent',
               1, created_at, created_at, created_at, created_at
        FROM ${s}.notifications WHERE kind = ${tag}
        RETURNING route_id, created_at)
      INSERT INTO ${s}.route_attempts
        (route_id, attempt, started_at, duration_ms, outcome, http_status)
      SELECT route_id, 1, created_at, 20, 'sent', 200 FROM routes`;
    await this.vacuum(schema, ["notifications", "notification_routes", "route_attempts"], {
      analyse: true,
    });
    await this.settle();
  }

  /**
   * Flushes what a big load left dirty (`CHECKPOINT`, where the role may), so
   * the rows measured next do not pay for the load's writes.
   */
  async settle(): Promise<void> {
    try {
      await this.admin`CHECKPOINT`;
    } catch {
      // Not a superuser nor pg_checkpoint: the figures after a big load are noisier.
    }
  }

  /** Routes of `schema` in status `status`. */
  async count(schema: string, status = "sent"): Promise<number> {
    const [row] = await this.admin`
      SELECT count(*)::int AS n FROM ${this.admin(schema)}.notification_routes
      WHERE status = ${status}`;
    return row?.["n"] ?? 0;
  }

  /** Drops one schema; never throws. */
  async drop(schema: string): Promise<void> {
    try {
      await this.admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      this.#schemas.delete(schema);
    } catch (err) {
      console.error(`bench: could not drop schema ${schema}: ${String(err)}`);
    }
  }

  /** Drops every schema still around, then closes the admin pool; never throws. */
  async dropAll(): Promise<void> {
    for (const schema of [...this.#schemas]) await this.drop(schema);
    try {
      await this.admin.end({ timeout: 5 });
    } catch {
      // Closing is best effort; the process is about to end.
    }
  }
}

/** Runs `fn` on a fresh schema of `routes` routes and drops the schema afterwards. */
export async function withSchema<T>(
  db: BenchDb,
  routes: number,
  fn: (schema: string) => Promise<T>,
  channel = "noop",
): Promise<T> {
  const schema = await db.fresh(routes, channel);
  try {
    return await fn(schema);
  } finally {
    await db.drop(schema);
  }
}

export { sleep } from "../core/_async.ts";

/**
 * Resolves with `work`'s value, or with `undefined` once `ms` passed (and
 * calls `onCap` then, which must make `work` settle soon).
 */
export async function capped<T>(
  work: Promise<T>,
  ms: number,
  onCap: () => void,
): Promise<{ value: T | undefined; capped: boolean }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cap = new Promise<"cap">((resolve) => {
    timer = setTimeout(() => resolve("cap"), ms);
  });
  const settled = work.then((value) => ({ value }));
  settled.catch(() => {}); // a rejection after the cap has no one left to hear it
  try {
    const first = await Promise.race([settled, cap]);
    if (first !== "cap") return { value: first.value, capped: false };
    onCap();
    return { value: undefined, capped: true };
  } finally {
    clearTimeout(timer);
  }
}
