/**
 * Route and send-context fixtures for the channel tests.
 *
 * @module
 */
import type { SendContext } from "../../channels/channel.ts";
import type { Route } from "../../core/route.ts";

/** A queued route with fixed ids and time; override what a test cares about. */
export function makeRoute(overrides: Partial<Route> = {}): Route {
  return {
    id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    notificationId: "0190a1b2-0000-7000-8000-000000000001",
    kind: "order.shipped",
    payload: { text: "Order 42 shipped", orderId: 42 },
    channel: "webhook",
    destination: "http://127.0.0.1:9/",
    attempts: 0,
    maxAttempts: null,
    priority: 0,
    createdAt: new Date("2024-03-01T12:00:00.000Z"),
    ...overrides,
  };
}

/** A first-attempt context with a signal that never aborts unless given one. */
export function makeCtx(signal: AbortSignal = new AbortController().signal): SendContext {
  return { signal, attempt: 1 };
}

/** Awaits `promise`, expecting it to reject, and returns the rejection. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection, got a value");
}
