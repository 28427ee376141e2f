/**
 * Worker options: each bad one is refused with a typed error naming it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../core/errors.ts";
import { Worker } from "../../worker.ts";
import type { WorkerOptions } from "../../worker.ts";
import { checkLeaks, fakeStore } from "../_helpers/leaks.ts";

checkLeaks();

describe("Worker config", () => {
  const bad: [string, Partial<WorkerOptions>][] = [
    ["interval", { interval: Number.NaN }],
    ["interval", { interval: "5s" as unknown as number }],
    ["routesPerTick", { routesPerTick: 0 }],
    ["routesPerTick", { routesPerTick: 1.5 }],
    ["maxAttempts", { maxAttempts: 0 }],
    ["maxAttempts", { maxAttempts: -3 }],
    ["sendTimeoutMs", { sendTimeoutMs: 0 }],
    ["shutdownTimeoutMs", { shutdownTimeoutMs: -1 }],
    ["retry.baseMs", { retry: { baseMs: -1 } }],
    ["retry.maxMs", { retry: { baseMs: 10, maxMs: 5 } }],
    ["channels", { channels: { "Not A Name": { send: () => Promise.resolve() } } }],
    ["channels.log", { channels: { log: {} as never } }],
    ["store", { store: {} as never }],
    ["logger", { logger: {} as never }],
    ["random", { random: 4 as never }],
  ];
  for (const [field, options] of bad) {
    it(`refuses a bad '${field}' with a typed error naming it`, () => {
      assert.throws(
        () => new Worker({ store: fakeStore(), channels: {}, ...options }),
        (err: unknown) =>
          err instanceof InvalidArgumentError && err.field === field &&
          err.message.includes(`'${field}'`),
      );
    });
  }
});
