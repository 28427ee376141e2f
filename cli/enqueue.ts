/**
 * `herald enqueue`: one notification, one route per `--to`, written in one
 * transaction; the payload inline, from a file, or piped in.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { InvalidArgumentError } from "../core/errors.ts";
import type { JsonValue } from "../core/route.ts";
import { numberFlag, parseTime } from "./_flags.ts";
import type { Values } from "./_flags.ts";
import { withDatabase } from "./_command.ts";
import type { Command } from "./_command.ts";
import { parseTraceparent } from "../core/_trace_context.ts";
import { checkEnqueue } from "../core/_validate.ts";

/** `herald enqueue` */
export const enqueueCommand: Command = {
  summary: "enqueue a notification; prints one route id per destination",
  usage: `herald enqueue --channel C --to DEST [--to DEST...] [options]

  --channel C              the channel (webhook, slack, email, log, ...)
  --to DEST                a destination; repeat for several routes
  --payload JSON           the payload (default {})
  --payload-file FILE      read the payload from FILE ('-' for standard input)
  --kind K                 what happened (default "message")
  --deliver-at TIME        not before this ISO 8601 time, or this long from now (5m)
  --priority P             lower runs first (default 0)
  --max-attempts N         this route's attempt limit (default: the worker's)
  --idempotency-key K      enqueue at most once per key: a repeat prints the first ids`,
  options: {
    channel: { type: "string" },
    to: { type: "string", multiple: true },
    payload: { type: "string" },
    "payload-file": { type: "string" },
    kind: { type: "string" },
    "deliver-at": { type: "string" },
    priority: { type: "string" },
    "max-attempts": { type: "string" },
    "idempotency-key": { type: "string" },
  },
  positionals: 0,
  async run(values, _args, common, io) {
    const channel = values["channel"];
    if (typeof channel !== "string") throw new InvalidArgumentError("--channel", "is required");
    const to = values["to"];
    if (!Array.isArray(to) || to.length === 0) {
      throw new InvalidArgumentError("--to", "is required");
    }
    const payload = await readPayload(values);
    const deliverAt = typeof values["deliver-at"] === "string"
      ? parseTime("--deliver-at", values["deliver-at"], "ahead")
      : undefined;
    const priority = numberFlag("--priority", values["priority"] as string | undefined);
    const maxAttempts = numberFlag("--max-attempts", values["max-attempts"] as string | undefined);
    const key = values["idempotency-key"];
    // OpenTelemetry's environment-variable carrier: the trace this enqueue continues.
    const traceparent = io.env["TRACEPARENT"];
    const tracestate = io.env["TRACESTATE"];
    if (traceparent && parseTraceparent(traceparent) === undefined) {
      throw new InvalidArgumentError(
        "TRACEPARENT",
        "must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)",
        traceparent,
      );
    }
    const notification = {
      kind: typeof values["kind"] === "string" ? values["kind"] : "message",
      payload,
      ...(typeof key === "string" ? { idempotencyKey: key } : {}),
      ...(traceparent ? { traceparent } : {}),
      ...(traceparent && tracestate ? { tracestate } : {}),
    };
    const routes = to.map((destination) => ({
      channel,
      destination,
      ...(deliverAt ? { deliverAt } : {}),
      ...(priority === undefined ? {} : { priority }),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
    }));
    try {
      checkEnqueue(notification, routes); // before the database is opened, naming the flag
    } catch (err) {
      const payloadFlag = values["payload-file"] === undefined ? "--payload" : "--payload-file";
      throw err instanceof InvalidArgumentError ? asFlag(err, payloadFlag) : err;
    }
    return await withDatabase(common, io, async ({ store }) => {
      const res = await store.enqueue(notification, routes);
      if (values["json"]) {
        io.out(JSON.stringify(res));
        return 0;
      }
      if (res.duplicate) {
        io.err("herald: idempotency key seen before: nothing written; the first ids are:");
      }
      for (const id of res.routeIds) io.out(id);
      return 0;
    });
  },
};

/** The flags (and variables) that fill each field `enqueue` checks. */
const FLAG_OF: readonly [RegExp, string][] = [
  [/^routes\[(\d+)\]\.destination$/, "--to"],
  [/^routes\[\d+\]\.channel$/, "--channel"],
  [/^routes\[\d+\]\.priority$/, "--priority"],
  [/^routes\[\d+\]\.maxAttempts$/, "--max-attempts"],
  [/^routes\[\d+\]\.deliverAt$/, "--deliver-at"],
  [/^notification\.kind$/, "--kind"],
  [/^notification\.idempotencyKey$/, "--idempotency-key"],
  [/^notification\.traceparent$/, "TRACEPARENT"],
  [/^notification\.tracestate$/, "TRACESTATE"],
];

/**
 * `err` naming the flag the user typed rather than the field it filled: the
 * nth `--to`, or the place in the payload (`payload.items[2]`).
 */
function asFlag(err: InvalidArgumentError, payloadFlag: string): InvalidArgumentError {
  // What the message shows of the value (`, got …`) follows its field and problem.
  const shown = err.message.slice(`Invalid '${err.field}': ${err.problem}`.length);
  const rename = (flag: string, where: string) =>
    new InvalidArgumentError(flag, `${where}${err.problem}${shown}`);
  const inPayload = /^notification\.payload(.*)$/.exec(err.field);
  if (inPayload) return rename(payloadFlag, inPayload[1] ? `at payload${inPayload[1]}: ` : "");
  for (const [pattern, flag] of FLAG_OF) {
    const m = pattern.exec(err.field);
    if (m) return rename(flag, m[1] === undefined ? "" : `the ${ordinal(Number(m[1]) + 1)}: `);
  }
  return err;
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

async function readPayload(values: Values): Promise<JsonValue> {
  const inline = values["payload"];
  const file = values["payload-file"];
  if (inline !== undefined && file !== undefined) {
    throw new InvalidArgumentError("--payload", "give --payload or --payload-file, not both");
  }
  if (inline === undefined && file === undefined) return {};
  let text: string;
  let field = "--payload";
  if (typeof file === "string") {
    field = "--payload-file";
    try {
      // Standard input is read as a stream: a synchronous read of a pipe fails
      // with EAGAIN under Node once its stdin is non-blocking.
      text = file === "-" ? await readStdin() : readFileSync(file, "utf8");
    } catch (err) {
      throw new InvalidArgumentError(
        field,
        `cannot be read (${(err as { code?: string }).code ?? "error"})`,
        file,
      );
    }
  } else {
    text = String(inline);
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new InvalidArgumentError(field, `is not valid JSON (${(err as Error).message})`);
  }
}

/** All of standard input, as text. */
async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
  }
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(bytes);
}
