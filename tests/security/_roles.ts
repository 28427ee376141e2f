/**
 * The least-privilege fixture: the roles and grants of docs/security.md (its
 * SQL blocks executed as written, with unique role and schema names), a
 * store per role, and a local receiver whose paths answer 204 (`/ok`), 410
 * (`/gone`), 503 (`/down`) or 503 once and then 204 (`/flaky`).
 *
 * @module
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import postgres from "postgres";
import { PostgresStore, SCHEMA_VERSION } from "../../store.ts";
import type { RouteInput } from "../../store.ts";
import type { Channel } from "../../channels/channel.ts";
import { webhookChannel } from "../../channels/webhook.ts";
import { DATABASE_URL, uniqueSchema } from "../_helpers/pg.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { trackClose, trackEnd } from "../_helpers/leaks.ts";

/** Checks a rejection is Postgres's insufficient_privilege (42501). */
export const DENIED = (err: unknown): boolean => (err as { code?: unknown }).code === "42501";

/** The ```sql block after `<!-- least-privilege: {marker} -->` in docs/security.md. */
function docBlock(marker: string): string {
  const doc = readFileSync(new URL("../../docs/security.md", import.meta.url), "utf8");
  const at = doc.indexOf(`<!-- least-privilege: ${marker} -->`);
  assert.ok(at >= 0, `docs/security.md has the '${marker}' block`);
  const m = /```sql\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(m, `a sql block follows '${marker}'`);
  return m[1]!;
}

/** Statements of a block, with this test's role, schema and database names. */
function statements(block: string, roles: Record<string, string>, schema: string, db: string) {
  return block
    .split("\n")
    .filter((l) => !l.trim().startsWith("--"))
    .join("\n")
    .replace(/\bherald_(owner|worker|app|operator)\b/g, (_m, r: string) => roles[r]!)
    .replace(/\bSCHEMA herald\b/g, `SCHEMA ${schema}`)
    .replace(/\bherald\./g, `${schema}.`)
    .replace(/\bON DATABASE app\b/g, `ON DATABASE "${db}"`)
    .split(";")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** The four roles of the docs, named for this run. */
export interface RoleNames {
  readonly owner: string;
  readonly worker: string;
  readonly app: string;
  readonly operator: string;
}

/** What the tests get. */
export interface LeastPrivilege {
  /** Unique to this run (idempotency keys use it too). */
  readonly suffix: string;
  readonly roles: RoleNames;
  readonly schema: string;
  /** The superuser. */
  readonly admin: postgres.Sql;
  /** The connection URL of `role`. */
  urlOf(role: string): string;
  /** A driver handle as `role`, closed after the file. */
  sqlAs(role: string): postgres.Sql;
  /** Stores as the worker, application and operator roles. */
  readonly worker: PostgresStore;
  readonly app: PostgresStore;
  readonly operator: PostgresStore;
  /** A webhook route to `path` on the local receiver. */
  hook(path: string): RouteInput;
  /** The webhook channel, allowed to reach the local receiver. */
  readonly channels: Record<string, Channel>;
}

/** The receiver: `/ok` 204, `/gone` 410, `/down` 503, `/flaky` 503 once then 204. */
function receiver(): Promise<TestServer> {
  const flaky = new Map<string, number>();
  return startServer((req, res) => {
    if (req.path.startsWith("/ok")) return void res.writeHead(204).end();
    if (req.path.startsWith("/gone")) return void res.writeHead(410).end("gone");
    if (req.path.startsWith("/down")) return void res.writeHead(503).end("down");
    const seen = (flaky.get(req.path) ?? 0) + 1;
    flaky.set(req.path, seen);
    res.writeHead(seen === 1 ? 503 : 204).end();
  });
}

/** Drops what the run created: the schema, then each role and what it owns. */
async function dropAll(admin: postgres.Sql, schema: string, roles: RoleNames): Promise<void> {
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  for (const role of Object.values(roles)) {
    const [exists] = await admin`SELECT 1 FROM pg_roles WHERE rolname = ${role}`;
    if (!exists) continue;
    await admin.unsafe(`DROP OWNED BY "${role}" CASCADE`);
    await admin.unsafe(`DROP ROLE "${role}"`);
  }
}

/** Connection URLs and names of one run. */
interface Names {
  readonly suffix: string;
  readonly roles: RoleNames;
  readonly schema: string;
  urlOf(role: string): string;
}

function names(): Names {
  const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  return {
    suffix,
    roles: {
      owner: `herald_owner_${suffix}`,
      worker: `herald_worker_${suffix}`,
      app: `herald_app_${suffix}`,
      operator: `herald_operator_${suffix}`,
    },
    schema: uniqueSchema("herald_lp"),
    urlOf: (role) => {
      const u = new URL(DATABASE_URL);
      u.username = role;
      u.password = "";
      return u.href;
    },
  };
}

/** Runs the docs' grants as the superuser and the owner; every handle opened goes in `opened`. */
async function setUp(
  n: Names,
  admin: postgres.Sql,
  server: TestServer,
  opened: { close(): Promise<void> }[],
): Promise<LeastPrivilege> {
  const { roles, schema, urlOf } = n;
  const db = decodeURIComponent(new URL(DATABASE_URL).pathname.slice(1));
  const storeAs = (role: string): PostgresStore => {
    const store = new PostgresStore({ url: urlOf(role), schema, max: 3 });
    opened.push(trackClose(`a store as ${role}`, store));
    return store;
  };
  const sqlAs = (role: string): postgres.Sql => {
    const sql = trackEnd(
      `a driver handle as ${role}`,
      postgres(urlOf(role), { max: 1, onnotice: () => {} }),
    );
    opened.push({ close: () => sql.end({ timeout: 5 }) });
    return sql;
  };
  for (const sql of statements(docBlock("as superuser"), { ...roles }, schema, db)) {
    await admin.unsafe(sql);
  }
  assert.equal(await storeAs(roles.owner).migrate(), SCHEMA_VERSION);
  const ownerSql = sqlAs(roles.owner);
  for (const sql of statements(docBlock("as owner, after migrate"), { ...roles }, schema, db)) {
    await ownerSql.unsafe(sql);
  }
  return {
    ...n,
    admin,
    sqlAs,
    worker: storeAs(roles.worker),
    app: storeAs(roles.app),
    operator: storeAs(roles.operator),
    hook: (path) => ({ channel: "webhook", destination: `${server.url}${path}` }),
    channels: { webhook: webhookChannel({ allowHosts: ["127.0.0.1"], timeoutMs: 5_000 }) },
  };
}

/**
 * Registers hooks giving the enclosing `describe` the roles, their stores and
 * the receiver (all dropped and closed after it); call the result in tests.
 */
export function useLeastPrivilege(): () => LeastPrivilege {
  const n = names();
  const opened: { close(): Promise<void> }[] = [];
  let admin: postgres.Sql | undefined;
  let server: TestServer | undefined;
  let lp: LeastPrivilege | undefined;
  before(async () => {
    admin = trackEnd(
      "the superuser handle",
      postgres(DATABASE_URL, { max: 1, onnotice: () => {} }),
    );
    server = trackClose("the receiver", await receiver());
    lp = await setUp(n, admin, server, opened);
  });
  after(async () => {
    await Promise.all(opened.map((o) => o.close()));
    await server?.close();
    if (!admin) return;
    await dropAll(admin, n.schema, n.roles);
    await admin.end({ timeout: 5 });
  });
  return () => lp!;
}
