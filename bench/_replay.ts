/**
 * Herald's own per-route transaction as a pgbench script: the statements a
 * real worker sends for one route, captured with the driver's `debug` hook
 * on a scratch schema of one route, their parameters written in as
 * literals. pgbench's C client then replays them, one round trip per
 * statement, so the `pgbench-herald` rows say what Herald's SQL allows with
 * next to no client cost, beside the raw transaction in the same client.
 *
 * @module
 */
import postgres from "postgres";
import { silentLogger } from "../observe/logger.ts";
import { PostgresStore } from "../store.ts";
import { Worker } from "../worker.ts";
import type { BenchDb } from "./_db.ts";
import { noopChannel } from "./_herald.ts";

/** One statement as the driver sent it. */
interface Sent {
  text: string;
  parameters: readonly unknown[];
}

/** The script of one route's transaction, for the routes of `schema` (channel `noop`). */
export async function heraldScript(db: BenchDb, schema: string): Promise<string> {
  const scratch = await db.fresh(1);
  try {
    const [row] = await db.admin`
      SELECT route_id::text AS id FROM ${db.admin(scratch)}.notification_routes`;
    const routeId = String(row?.["id"]);
    const sent = await capture(db.url, scratch);
    const begin = sent.findIndex((s) => /^\s*begin\b/i.test(s.text));
    const commit = sent.findIndex((s, i) => i > begin && /^\s*commit\b/i.test(s.text));
    const claim = sent.findIndex((s) => /FOR UPDATE OF r SKIP LOCKED/.test(s.text));
    const finalise = sent.findIndex((s) => s.parameters.includes(routeId));
    if (begin < 0 || !(begin < claim && claim < finalise && finalise < commit)) {
      throw new Error("could not capture one route's transaction (begin, claim, finalise, commit)");
    }
    return sent.slice(begin, commit + 1).map((s, i) => {
      const line = oneLine(s.text.replaceAll(scratch, schema), s.parameters, routeId, {
        scratch,
        schema,
      });
      // The claim sets :route_id (its first column) for the finalise.
      return begin + i === claim ? `${line} \\gset` : `${line};`;
    }).join("\n") + "\n";
  } finally {
    await db.drop(scratch);
  }
}

/** Every statement a worker's one tick sends on `schema`. */
async function capture(url: string, schema: string): Promise<Sent[]> {
  const sent: Sent[] = [];
  const sql = postgres(url, {
    max: 1,
    onnotice: () => {},
    fetch_types: false,
    debug: (_connection, text, parameters) => void sent.push({ text, parameters }),
  });
  const worker = new Worker({
    store: new PostgresStore({ sql, schema }),
    channels: { noop: noopChannel },
    concurrency: 1,
    interval: 60_000,
    listen: false,
    logger: silentLogger,
  });
  try {
    await worker.tick();
  } finally {
    await sql.end({ timeout: 5 });
  }
  return sent;
}

/**
 * The statement on one line, without comments, `$n` replaced by its value:
 * the route's id by pgbench's `:route_id`, anything else as a literal. A
 * literal spells `:` and line breaks with `chr()`, which pgbench would
 * otherwise read as a variable or the end of the statement.
 */
function oneLine(
  text: string,
  parameters: readonly unknown[],
  routeId: string,
  names: { scratch: string; schema: string },
): string {
  const values = parameters.map((p) => {
    if (p === null || p === undefined) return "NULL";
    if (p === routeId) return ":route_id";
    const quoted = `'${String(p).replaceAll(names.scratch, names.schema).replaceAll("'", "''")}'`;
    return quoted.replaceAll(":", "' || chr(58) || '").replaceAll("\n", "' || chr(10) || '");
  });
  return text
    // The one literal of Herald's SQL that holds a line break, before they become spaces.
    .replaceAll("E'\n'", "chr(10)")
    .replace(/--[^\n]*/g, "")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/\$(\d+)/g, (_, n: string) => values[Number(n) - 1] ?? "NULL");
}
