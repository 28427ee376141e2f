/**
 * Hostile input, worker options: one row per bad option (and the bad shutdown timeout).
 *
 * @module
 */
import { Worker } from "../../worker.ts";
import type { WorkerOptions } from "../../worker.ts";
import { logChannel } from "../../channels/log.ts";
import { DATABASE_URL } from "../_helpers/pg.ts";
import type { Any, HostileEnv, Refusal } from "./_hostile.ts";

const LOG = logChannel({ write: () => {} });

/** A Worker on a store no one can reach, with `overrides`: options are checked before any I/O. */
const workerWith = (overrides: Record<string, unknown>) => (env: HostileEnv) =>
  new Worker({ store: env.noStore, channels: { log: LOG }, ...overrides } as WorkerOptions);

/** Bad Worker options, each refused naming the option. */
export const WORKER: readonly Refusal[] = [
  { name: "options is null", field: "options", run: () => new Worker(null as Any) },
  { name: "options is a string", field: "options", run: () => new Worker("fast" as Any) },
  { name: "store missing", field: "store", run: workerWith({ store: undefined }) },
  { name: "store is a plain object", field: "store", run: workerWith({ store: {} }) },
  { name: "store is a URL string", field: "store", run: workerWith({ store: DATABASE_URL }) },
  { name: "channels null", field: "channels", run: workerWith({ channels: null }) },
  { name: "channels an array", field: "channels", run: workerWith({ channels: [LOG] }) },
  {
    name: "channel name with a space",
    field: "channels",
    run: workerWith({ channels: { "my log": LOG } }),
  },
  {
    name: "channel name full of SQL",
    field: "channels",
    run: workerWith({ channels: { "log'; DROP TABLE notifications; --": LOG } }),
  },
  { name: "channel name upper-case", field: "channels", run: workerWith({ channels: { LOG } }) },
  {
    name: "channel without send()",
    field: "channels.log",
    run: workerWith({ channels: { log: {} } }),
  },
  { name: "channel null", field: "channels.log", run: workerWith({ channels: { log: null } }) },
  { name: "interval a string", field: "interval", run: workerWith({ interval: "5s" }) },
  { name: "interval NaN", field: "interval", run: workerWith({ interval: Number.NaN }) },
  { name: "interval Infinity", field: "interval", run: workerWith({ interval: Infinity }) },
  { name: "interval above 2^31-1", field: "interval", run: workerWith({ interval: 2 ** 31 }) },
  { name: "routesPerTick 0", field: "routesPerTick", run: workerWith({ routesPerTick: 0 }) },
  { name: "routesPerTick 1.5", field: "routesPerTick", run: workerWith({ routesPerTick: 1.5 }) },
  {
    name: "routesPerTick too big",
    field: "routesPerTick",
    run: workerWith({ routesPerTick: 100_001 }),
  },
  {
    name: "routesPerTransaction -1",
    field: "routesPerTransaction",
    run: workerWith({ routesPerTransaction: -1 }),
  },
  { name: "concurrency 0", field: "concurrency", run: workerWith({ concurrency: 0 }) },
  { name: "concurrency a string", field: "concurrency", run: workerWith({ concurrency: "4" }) },
  { name: "concurrency 1001", field: "concurrency", run: workerWith({ concurrency: 1001 }) },
  { name: "maxAttempts 0", field: "maxAttempts", run: workerWith({ maxAttempts: 0 }) },
  { name: "maxAttempts 1e9", field: "maxAttempts", run: workerWith({ maxAttempts: 1e9 }) },
  { name: "maxAttempts NaN", field: "maxAttempts", run: workerWith({ maxAttempts: Number.NaN }) },
  { name: "sendTimeoutMs 0", field: "sendTimeoutMs", run: workerWith({ sendTimeoutMs: 0 }) },
  {
    name: "sendTimeoutMs negative",
    field: "sendTimeoutMs",
    run: workerWith({ sendTimeoutMs: -5 }),
  },
  {
    name: "sendTimeoutMs 2^31",
    field: "sendTimeoutMs",
    run: workerWith({ sendTimeoutMs: 2 ** 31 }),
  },
  {
    name: "shutdownTimeoutMs -1",
    field: "shutdownTimeoutMs",
    run: workerWith({ shutdownTimeoutMs: -1 }),
  },
  {
    name: "shutdownTimeoutMs Infinity",
    field: "shutdownTimeoutMs",
    run: workerWith({ shutdownTimeoutMs: Infinity }),
  },
  {
    name: "retry.baseMs negative",
    field: "retry.baseMs",
    run: workerWith({ retry: { baseMs: -1 } }),
  },
  {
    name: "retry.maxMs NaN",
    field: "retry.maxMs",
    run: workerWith({ retry: { maxMs: Number.NaN } }),
  },
  {
    name: "retry.maxMs 1e16 (Postgres would refuse the interval)",
    field: "retry.maxMs",
    run: workerWith({ retry: { maxMs: 1e16 } }),
  },
  {
    name: "retry.baseMs over 30 days",
    field: "retry.baseMs",
    run: workerWith({ retry: { baseMs: 31 * 86_400_000 } }),
  },
  {
    name: "retry.maxMs below baseMs",
    field: "retry.maxMs",
    run: workerWith({ retry: { baseMs: 10, maxMs: 5 } }),
  },
  { name: "listen 'yes'", field: "listen", run: workerWith({ listen: "yes" }) },
  { name: "logger without log()", field: "logger", run: workerWith({ logger: {} }) },
  { name: "logger.log not a function", field: "logger", run: workerWith({ logger: { log: "x" } }) },
  { name: "random a number", field: "random", run: workerWith({ random: 0.5 }) },
  { name: "now a Date", field: "now", run: workerWith({ now: new Date() }) },
  { name: "sleep a string", field: "sleep", run: workerWith({ sleep: "later" }) },
  {
    name: "a misspelt option",
    field: "concurency",
    run: workerWith({ concurency: 4 }),
    message: /did you mean 'concurrency'\?/,
  },
  {
    name: "a misspelt retry setting",
    field: "retry.basems",
    run: workerWith({ retry: { basems: 5 } }),
    message: /did you mean 'retry\.baseMs'\?/,
  },
  {
    name: "a misspelt destination setting",
    field: "destinations.maxInflight",
    run: workerWith({ destinations: { maxInflight: 2 } }),
    message: /did you mean 'destinations\.maxInFlight'\?/,
  },
  {
    name: "shutdown({ timeoutMs: -1 })",
    field: "timeoutMs",
    run: (env) => workerWith({})(env).shutdown({ timeoutMs: -1 }),
  },
];
