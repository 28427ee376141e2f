/**
 * Versioned, idempotent schema migrations. They run in one transaction under
 * an advisory lock keyed on the schema name, so any number of workers may
 * start at once: the first applies, the rest wait and find nothing to do.
 *
 * @module
 */
import type postgres from "postgres";
import { HeraldError } from "../core/errors.ts";
import { isConnectionLost } from "./_statements.ts";

/** Migration `n` lives at index `n - 1`; never edit one that has shipped, add a new one. */
const MIGRATIONS: readonly ((s: string) => string)[] = [
  (s) => `
    CREATE TABLE ${s}.notifications (
      id uuid PRIMARY KEY,
      kind text NOT NULL,
      payload jsonb NOT NULL DEFAULT '{}'::jsonb,
      idempotency_key text UNIQUE,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ${s}.notification_routes (
      route_id uuid PRIMARY KEY,
      notification_id uuid NOT NULL REFERENCES ${s}.notifications (id) ON DELETE CASCADE,
      seq int NOT NULL DEFAULT 0,
      channel text NOT NULL,
      destination text NOT NULL,
      status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'failed', 'cancelled')),
      attempts int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      max_attempts int CHECK (max_attempts IS NULL OR max_attempts > 0),
      priority int NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      sent_at timestamptz
    );
    -- Serves the claim: only queued rows, in claim order.
    CREATE INDEX notification_routes_due ON ${s}.notification_routes (priority, next_attempt_at)
      WHERE status = 'queued';
    CREATE INDEX notification_routes_notification ON ${s}.notification_routes (notification_id);
  `,
  // 2: the attempt log, one row per attempt, written in the route's transaction.
  (s) => `
    CREATE TABLE ${s}.route_attempts (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      route_id uuid NOT NULL REFERENCES ${s}.notification_routes (route_id) ON DELETE CASCADE,
      attempt int NOT NULL,
      started_at timestamptz NOT NULL,
      duration_ms double precision NOT NULL,
      outcome text NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
      http_status int,
      error text
    );
    CREATE INDEX route_attempts_route ON ${s}.route_attempts (route_id, id);
    -- Serves "failures in the last hour" and pruning by age.
    CREATE INDEX notification_routes_status_updated ON ${s}.notification_routes (status, updated_at);
  `,
  // 3: 'poisoned', for a route whose outcome the database kept refusing. NOT VALID:
  // the new check is wider than the old, so every row passes; validating would
  // scan the whole table under an exclusive lock.
  (s) => `
    ALTER TABLE ${s}.notification_routes DROP CONSTRAINT notification_routes_status_check;
    ALTER TABLE ${s}.notification_routes ADD CONSTRAINT notification_routes_status_check
      CHECK (status IN ('queued', 'sent', 'failed', 'cancelled', 'poisoned')) NOT VALID;
  `,
  // 4: the trace context a notification continues (W3C Trace Context).
  (s) => `
    ALTER TABLE ${s}.notifications ADD COLUMN traceparent text, ADD COLUMN tracestate text;
  `,
  // 5: destinations, each with a health of its own shared by the fleet. A route
  // names its destination by `destination_key` (routes queued before this
  // migration have none and drain as before); `held_from` keeps a held route's
  // own due time while a paused or disabled destination parks it far ahead.
  (s) => `
    CREATE TABLE ${s}.destinations (
      channel text NOT NULL,
      key text NOT NULL,
      state text NOT NULL DEFAULT 'closed'
        CHECK (state IN ('closed', 'open', 'paused', 'disabled')),
      consecutive_failures int NOT NULL DEFAULT 0,
      trips int NOT NULL DEFAULT 0,
      open_until timestamptz,
      failing_since timestamptz,
      last_failure_at timestamptz,
      last_success_at timestamptz,
      last_error text,
      reason text,
      max_in_flight int CHECK (max_in_flight IS NULL OR max_in_flight > 0),
      failure_threshold int CHECK (failure_threshold IS NULL OR failure_threshold > 0),
      cooldown_ms int CHECK (cooldown_ms IS NULL OR cooldown_ms > 0),
      rate_per_sec float8 CHECK (rate_per_sec IS NULL OR rate_per_sec > 0),
      burst int CHECK (burst IS NULL OR burst > 0),
      -- The rate limiter's theoretical arrival time (GCRA): the next send is due then.
      tat timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (channel, key)
    );
    ALTER TABLE ${s}.notification_routes
      ADD COLUMN destination_key text, ADD COLUMN held_from timestamptz;
    -- Serves parking a destination's routes, its probe's pick and the per-destination views.
    CREATE INDEX notification_routes_destination ON ${s}.notification_routes
      (channel, destination_key, priority, next_attempt_at) WHERE status = 'queued';
  `,
  // 6: claim order that ignores how big the table is. \`queue_order\` numbers
  // routes as they are enqueued (FIFO among equal priority and due time); the
  // claim index leads with priority and due time, so a claim probes each
  // priority in use at its due end instead of walking not-yet-due routes.
  // Queued routes are numbered in their enqueue order; history keeps NULL.
  (s) => `
    CREATE SEQUENCE ${s}.notification_routes_queue_order AS bigint;
    ALTER TABLE ${s}.notification_routes ADD COLUMN queue_order bigint;
    ALTER SEQUENCE ${s}.notification_routes_queue_order
      OWNED BY ${s}.notification_routes.queue_order;
    WITH numbered AS (
      SELECT route_id, row_number() OVER (ORDER BY created_at, notification_id, seq) AS n
      FROM ${s}.notification_routes WHERE status = 'queued')
    UPDATE ${s}.notification_routes r SET queue_order = numbered.n
    FROM numbered WHERE r.route_id = numbered.route_id;
    SELECT setval('${s}.notification_routes_queue_order',
      coalesce((SELECT max(queue_order) FROM ${s}.notification_routes), 0) + 1, false);
    ALTER TABLE ${s}.notification_routes ALTER COLUMN queue_order
      SET DEFAULT nextval('${s}.notification_routes_queue_order');
    CREATE INDEX notification_routes_claim ON ${s}.notification_routes
      (priority, next_attempt_at, queue_order) WHERE status = 'queued';
    DROP INDEX ${s}.notification_routes_due;
    -- Each route sent leaves a dead entry in the queue's indexes, and a claim
    -- steps over those until VACUUM removes them. Vacuum this table at 1% of
    -- its rows dead (not autovacuum's 20%: a million on a table of five), and
    -- always clean its indexes (Postgres 14+ skips that when few pages hold
    -- dead rows, which is exactly a queue's case).
    ALTER TABLE ${s}.notification_routes SET (autovacuum_vacuum_scale_factor = 0.01,
      autovacuum_vacuum_threshold = 1000, vacuum_index_cleanup = on);
  `,
  // 7: the operator's listing walks routes last changed first, ties by id. With
  // the id in the index the walk needs no sort: a page reads its 50 entries even
  // when a bulk enqueue gave a million routes one updated_at. It serves every
  // reader of the old (status, updated_at) index too.
  (s) => `
    CREATE INDEX notification_routes_status_changed ON ${s}.notification_routes
      (status, updated_at, route_id);
    DROP INDEX ${s}.notification_routes_status_updated;
  `,
  // 8: every queued route has its place in the queue. The claim starts its
  // index scan at the first queued route's (due time, place), past the
  // entries of routes sent since the last VACUUM, and a NULL place would
  // never compare. A retry numbers a route written before migration 6 (its
  // history had none); the check keeps any other writer from queueing one
  // unnumbered (NOT VALID: history may keep NULL, and every queued row was
  // numbered just above).
  (s) => `
    UPDATE ${s}.notification_routes
    SET queue_order = nextval('${s}.notification_routes_queue_order')
    WHERE status = 'queued' AND queue_order IS NULL;
    ALTER TABLE ${s}.notification_routes ADD CONSTRAINT notification_routes_queued_in_order
      CHECK (status <> 'queued' OR queue_order IS NOT NULL) NOT VALID;
  `,
  // 9: a prune deletes a day of history from the attempt log and the
  // notifications too. Vacuum them at 2% of their rows dead (not
  // autovacuum's 20%: six daily prunes of a 30-day history), so the space
  // each prune frees is reused before the next day is written.
  // Their TOAST tables too (long payloads and error texts live there).
  (s) => `
    ALTER TABLE ${s}.route_attempts SET (autovacuum_vacuum_scale_factor = 0.02,
      autovacuum_vacuum_threshold = 1000, toast.autovacuum_vacuum_scale_factor = 0.02,
      toast.autovacuum_vacuum_threshold = 1000);
    ALTER TABLE ${s}.notifications SET (autovacuum_vacuum_scale_factor = 0.02,
      autovacuum_vacuum_threshold = 1000, toast.autovacuum_vacuum_scale_factor = 0.02,
      toast.autovacuum_vacuum_threshold = 1000);
  `,
  // 10: each channel's oldest due route, for stats, in one probe per
  // channel, however long the backlog. The claim's index orders every
  // channel together, so finding a quiet channel's oldest route behind a
  // busy one's backlog read the whole backlog (0.3 s a scrape at 500,000
  // due routes). Queued routes only: a route leaves it when it is sent.
  (s) => `
    CREATE INDEX notification_routes_channel_due ON ${s}.notification_routes
      (channel, next_attempt_at) WHERE status = 'queued';
  `,
];

/** The schema version this build of Herald writes. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/**
 * Applies what is missing (up to `upTo`: a test stops at an older version to
 * check an upgrade); returns the resulting version. Refuses a
 * read-only standby (a worker must never claim there), and says
 * `HERALD_UNAVAILABLE` when the server cannot be reached, so a caller can
 * wait for it.
 */
export async function migrate(
  sql: postgres.Sql,
  schema: string,
  upTo: number = MIGRATIONS.length,
): Promise<number> {
  try {
    return await migrateOn(sql, schema, upTo);
  } catch (err) {
    if (isConnectionLost(err)) {
      throw new HeraldError("HERALD_UNAVAILABLE", "the database could not be reached", {
        cause: err,
      });
    }
    throw err;
  }
}

/** The schema's version, reading only: 0 when it holds no Herald tables. */
export async function schemaVersion(sql: postgres.Sql, schema: string): Promise<number> {
  const quoted = `"${schema}"`; // checked against SCHEMA_NAME by the caller, quoted anyway
  const [table] =
    await sql`SELECT to_regclass(${`${quoted}.schema_migrations`}) IS NOT NULL AS found`;
  if (!table?.["found"]) return 0;
  const [row] = await sql.unsafe(
    `SELECT coalesce(max(version), 0)::int AS version FROM ${quoted}.schema_migrations`,
  );
  return row?.["version"] ?? 0;
}

async function migrateOn(sql: postgres.Sql, schema: string, upTo: number): Promise<number> {
  const [role] = await sql`SELECT pg_is_in_recovery() AS standby`;
  if (role?.["standby"]) {
    throw new HeraldError(
      "HERALD_STORE",
      "the database is a read-only standby; point Herald at the primary (with several hosts " +
        "in the URL, add target_session_attrs=read-write)",
    );
  }
  const quoted = `"${schema}"`; // checked against SCHEMA_NAME by the caller, quoted anyway
  // Up to date already: say so without DDL or the lock, so a worker role with
  // no CREATE privilege can start (migrations run as the owner beforehand).
  if (await schemaVersion(sql, schema) === upTo) return upTo;
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`herald.migrate:${schema}`}, 0))`;
    await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
    await tx.unsafe(`
      CREATE TABLE IF NOT EXISTS ${quoted}.schema_migrations (
        version int PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const [row] = await tx.unsafe(
      `SELECT coalesce(max(version), 0)::int AS version FROM ${quoted}.schema_migrations`,
    );
    const current: number = row?.["version"] ?? 0;
    if (current > MIGRATIONS.length) {
      throw new HeraldError(
        "HERALD_STORE",
        `schema "${schema}" is at version ${current}, newer than this Herald (${MIGRATIONS.length}); upgrade Herald`,
      );
    }
    for (let v = current + 1; v <= upTo; v++) {
      await tx.unsafe(MIGRATIONS[v - 1]!(quoted)).simple();
      await tx.unsafe(`INSERT INTO ${quoted}.schema_migrations (version) VALUES ($1)`, [v]);
    }
    return Math.max(current, upTo);
  }) as number;
}
