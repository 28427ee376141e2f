/**
 * The figures behind docs/scaling.md: what a million routes cost Postgres.
 * For each mode (per-route, batch K = 100) it enqueues N routes through
 * `store.enqueue` (one notification, one route each: the common case), then
 * drains them with a real worker, and prints the WAL written by each phase
 * and the on-disk size of the tables and indexes, per route and scaled to a
 * million. Attempt log on and off: "off" is the same run with every
 * attempt-log row skipped by a trigger (Herald itself always keeps the log).
 *
 *   node_modules/.bin/node bench/capacity.ts [--routes N] [--url URL]
 *
 * @module
 */
import process from "node:process";
import postgres from "postgres";
import { PostgresStore } from "../store.ts";
import { Worker } from "../worker.ts";
import { silentLogger } from "../observe/logger.ts";
import { runtimeVersion } from "../core/_runtime.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const ROUTES = Number(flag("--routes", "20000"));
const URL_ = flag(
  "--url",
  process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test",
);

const admin = postgres(URL_, { max: 1, onnotice: () => {} });

async function lsn(): Promise<bigint> {
  const [row] = await admin`SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS b`;
  return BigInt(row!["b"]);
}

async function measure(k: number, attemptLog: boolean): Promise<Record<string, number | string>> {
  const schema = `herald_cap_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const store = new PostgresStore({ url: URL_, schema, max: 6, tracer: false });
  try {
    await store.migrate();
    if (!attemptLog) {
      // A trigger that skips every attempt-log row: the run without the log.
      await admin.unsafe(`
        CREATE FUNCTION "${schema}".skip_row() RETURNS trigger LANGUAGE plpgsql
          AS $$BEGIN RETURN NULL; END$$;
        CREATE TRIGGER no_log BEFORE INSERT ON "${schema}".route_attempts
          FOR EACH ROW EXECUTE FUNCTION "${schema}".skip_row();`);
    }
    const w0 = await lsn();
    for (let i = 0; i < ROUTES; i += 1) {
      await store.enqueue({ kind: "bench.event", payload: { n: i } }, [{
        channel: "noop",
        destination: "bench",
      }]);
    }
    const w1 = await lsn();
    const worker = new Worker({
      store,
      channels: { noop: { send: () => Promise.resolve() } },
      concurrency: 4,
      routesPerTransaction: k,
      routesPerTick: Math.max(1000, k),
      listen: false,
      logger: silentLogger,
      tracer: false,
    });
    while (await worker.tick() > 0) { /* drain */ }
    const w2 = await lsn();
    const [size] = await admin`
      SELECT pg_total_relation_size(${`"${schema}".notification_routes`}) AS routes,
             pg_total_relation_size(${`"${schema}".notifications`}) AS notes,
             pg_total_relation_size(${`"${schema}".route_attempts`}) AS attempts`;
    const perMillion = (bytes: bigint | number) =>
      `${(Number(bytes) / ROUTES * 1e6 / 2 ** 20).toFixed(0)} MiB`;
    return {
      mode: k === 1 ? "per-route" : `batch K=${k}`,
      attempt_log: attemptLog ? "on" : "off",
      routes: ROUTES,
      wal_enqueue_per_million: perMillion(w1 - w0),
      wal_delivery_per_million: perMillion(w2 - w1),
      disk_per_million: perMillion(
        Number(size!["routes"]) + Number(size!["notes"]) + Number(size!["attempts"]),
      ),
      attempt_log_disk_per_million: perMillion(Number(size!["attempts"])),
    };
  } finally {
    await store.close();
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

console.log(`Herald capacity figures: ${runtimeVersion()}, ${ROUTES} routes per row`);
try {
  for (const [k, log] of [[1, true], [1, false], [100, true], [100, false]] as const) {
    console.log(JSON.stringify(await measure(k, log)));
  }
} finally {
  await admin.end({ timeout: 5 });
}
