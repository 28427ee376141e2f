/**
 * Hostile input, operator calls: one row per bad listRoutes, prune, cancel, retry or destination
 * call.
 *
 * @module
 */
import type { Any, Refusal } from "./_hostile.ts";

/** Bad operator calls, each refused naming the parameter. */
export const OPERATOR: readonly Refusal[] = [
  {
    name: "listRoutes limit 0",
    field: "limit",
    run: ({ store }) => store.listRoutes({ limit: 0 }),
  },
  {
    name: "listRoutes limit 10001",
    field: "limit",
    run: ({ store }) => store.listRoutes({ limit: 10_001 }),
  },
  {
    name: "listRoutes limit 1.5",
    field: "limit",
    run: ({ store }) => store.listRoutes({ limit: 1.5 }),
  },
  {
    name: "prune olderThanMs -1",
    field: "olderThanMs",
    run: ({ store }) => store.prune({ olderThanMs: -1 }),
  },
  {
    name: "prune olderThanMs NaN",
    field: "olderThanMs",
    run: ({ store }) => store.prune({ olderThanMs: Number.NaN }),
  },
  {
    name: "prune queued routes",
    field: "statuses",
    run: ({ store }) => store.prune({ olderThanMs: 0, statuses: ["queued" as Any] }),
  },
  {
    name: "prune no statuses",
    field: "statuses",
    run: ({ store }) => store.prune({ olderThanMs: 0, statuses: [] }),
  },
  {
    name: "prune batchSize 0",
    field: "batchSize",
    run: ({ store }) => store.prune({ olderThanMs: 0, batchSize: 0 }),
  },
  {
    name: "setDestinationState with a misspelt action (it used to resume)",
    field: "action",
    run: ({ store }) => store.setDestinationState("webhook", "*", "pasue" as Any),
  },
  {
    name: "setDestinationState with a key of 600 characters",
    field: "key",
    run: ({ store }) => store.setDestinationState("webhook", "k".repeat(600), "pause"),
  },
  {
    name: "setDestinationState with a NUL in its reason",
    field: "reason",
    run: ({ store }) => store.setDestinationState("webhook", "*", "pause", "a\u0000b"),
  },
  {
    name: "configureDestination with a key of 3,000 characters (over an index entry)",
    field: "key",
    run: ({ store }) => store.configureDestination("webhook", "k".repeat(3_000), { burst: 2 }),
  },
  {
    name: "configureDestination with a channel named in capitals",
    field: "channel",
    run: ({ store }) => store.configureDestination("WEBHOOK", "*", { burst: 2 }),
  },
  { name: "cancel nothing", field: "routeIds", run: ({ store }) => store.cancel([]) },
  { name: "retry no ids", field: "routeIds", run: ({ store }) => store.retry({ ids: [] }) },
];
