/**
 * Herald: a Postgres-backed notification dispatcher.
 *
 * Applications write notifications into Postgres in their own transaction,
 * one row per notification × channel × destination (a *route*). Workers drain
 * the table: each claims one due route with `FOR UPDATE SKIP LOCKED` inside a
 * transaction of its own, sends it, and records the outcome in that same
 * transaction. The row lock is the lease: a crashed worker's routes are free
 * again the moment its connection drops, so nothing is ever stuck. Delivery is
 * at least once; every send carries the route id as its idempotency key.
 *
 * Run as a program (`deno run -A mod.ts`, `bun run mod.ts`, `node mod.ts`) it
 * is the `herald` CLI; `--help` lists the commands.
 *
 * @example
 * ```ts
 * import { logChannel, PostgresStore, webhookChannel, Worker } from "./mod.ts";
 *
 * export async function main(url: string, secret: string): Promise<void> {
 *   const store = new PostgresStore({ url });
 *   await store.migrate();
 *   await store.enqueue({ kind: "order.shipped", payload: { order: 42 } }, [
 *     { channel: "webhook", destination: "https://example.com/hooks/orders" },
 *     { channel: "log", destination: "ops" },
 *   ]);
 *
 *   const worker = new Worker({
 *     store,
 *     channels: { log: logChannel(), webhook: webhookChannel({ secret }) },
 *   });
 *   const stop = new AbortController();
 *   Deno.addSignalListener("SIGINT", () => stop.abort());
 *   await worker.run(stop.signal); // resolves once everything is released
 *   await store.close();
 * }
 * ```
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";

export { Worker, WORKER_DEFAULTS } from "./worker.ts";
export type {
  DestinationEventDetail,
  DestinationEventName,
  Lifecycle,
  RouteEventDetail,
  ShutdownOptions,
  WorkerEventMap,
  WorkerEventName,
  WorkerListener,
  WorkerOptions,
} from "./worker.ts";
export {
  checkSchema,
  enqueue,
  isUuid,
  PostgresStore,
  SCHEMA_VERSION,
  wakeChannel,
} from "./store.ts";
export type {
  AttemptRecord,
  ChangeResult,
  ClaimParams,
  Enqueued,
  NotificationInput,
  PostgresStoreOptions,
  PrunableStatus,
  PruneOptions,
  QueueStats,
  RetrySelection,
  RouteFilter,
  RouteInput,
  RouteRecord,
  RouteTransaction,
  SalvageResult,
  SqlHandle,
  Store,
  Subscription,
  TransactionOptions,
  Unrecorded,
  WakeHandlers,
} from "./store.ts";
export { ROUTE_STATUSES } from "./core/route.ts";
export type { Finalisation, JsonValue, Outcome, Route, RouteStatus } from "./core/route.ts";
export { DEFAULT_DATA_DIR, openEmbedded } from "./embedded.ts";
export type { EmbeddedDatabase, EmbeddedOptions } from "./embedded.ts";
export { DEFAULT_BUCKETS, Metrics, metricsHandler } from "./observe/metrics.ts";
export {
  HeraldError,
  InvalidArgumentError,
  PermanentError,
  RetryLaterError,
} from "./core/errors.ts";
export type { DeliveryDetails, HeraldErrorCode } from "./core/errors.ts";
export { backoff, DEFAULT_RETRY_POLICY } from "./core/retry.ts";
export type { RetryPolicy } from "./core/retry.ts";
export { jsonLogger, prettyLogger, silentLogger } from "./observe/logger.ts";
export type { LogFields, Logger, LoggerOptions, LogLevel } from "./observe/logger.ts";
export { VERSION } from "./core/version.ts";
export type { MeterLike, TracerLike } from "./core/telemetry.ts";
export * from "./channels/mod.ts";

/** True when this file is the program being run, on Deno, Bun and Node 22+. */
function isMain(meta: ImportMeta): boolean {
  const flag = (meta as ImportMeta & { main?: boolean }).main;
  if (typeof flag === "boolean") return flag;
  const script = process.argv[1];
  return script !== undefined && fileURLToPath(meta.url) === script;
}

if (isMain(import.meta)) {
  const { main } = await import("./cli/main.ts");
  process.exitCode = await main(process.argv.slice(2));
}
