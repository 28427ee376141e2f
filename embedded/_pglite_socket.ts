/**
 * A `socket` for the `postgres` driver that talks the Postgres wire protocol to
 * an in-process PGlite instead of a server, so `PostgresStore` and its SQL run
 * unchanged on the embedded database.
 *
 * PGlite has exactly one backend session, but the driver opens several
 * connections (a pool, and one more for `sql.listen`). Each connection here is
 * a virtual socket; a session (`_pglite_session.ts`) hands PGlite to one of them at a time and
 * keeps it there until that connection is idle (ReadyForQuery `I` after a
 * Sync), so one connection's transaction never interleaves with another's
 * statements. The price: a connection that opens a transaction and then waits
 * on another connection deadlocks, where a server would have run both.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import {
  CANCEL_REQUEST,
  COPY_FROM_STDIN,
  COPY_UNSUPPORTED,
  GSSENC_REQUEST,
  message,
  PARSE,
  QUERY,
  SSL_REQUEST,
  SYNC,
  TERMINATE,
} from "./_pg_wire.ts";
import { Session } from "./_pglite_session.ts";
import type { Batch, ProtocolDb, TurnOptions, TxStatus } from "./_pglite_session.ts";

export type { ProtocolDb } from "./_pglite_session.ts";

/** Makes virtual connections: this process's own, or (`forAnotherProcess`) a shared socket's. */
export interface SocketFactory {
  (): PgliteSocket;
  readonly forAnotherProcess: () => PgliteSocket;
}

/**
 * For the driver's `socket` option: `postgres({ socket: pgliteSocketFactory(db), ... })`.
 * Call it once per database: the virtual connections of one factory share its
 * arbitration, those of two factories would trample each other's transactions.
 * `turns`: how clients of other processes share it (`_pglite_session.ts`; tests set their own).
 */
export function pgliteSocketFactory(db: ProtocolDb, turns: TurnOptions = {}): SocketFactory {
  const session = new Session(db, turns);
  return Object.assign(() => new PgliteSocket(session, false), {
    forAnotherProcess: () => new PgliteSocket(session, true),
  });
}

/**
 * One virtual connection: the subset of `net.Socket` the driver uses. Writes
 * are split into protocol messages and queued on the session; PGlite's
 * answers come back as `data` events.
 */
export class PgliteSocket extends EventEmitter {
  /** Read by the driver before it waits for `close`. */
  readyState: "open" | "closed" = "open";
  /** Read by the driver for error messages. */
  readonly host = "pglite";
  readonly port = 0;

  readonly pid: number;
  readonly fromAnotherProcess: boolean;
  status: TxStatus = "I";
  inFlight = false;
  closed = false;

  readonly #session: Session;
  /** Named prepared statements, closed when the connection goes. */
  readonly #statements = new Set<string>();
  #input: Buffer = Buffer.alloc(0);
  #pending: Buffer[] = [];
  #pendingSynced = false;
  #startupSent = false;
  #startupPending = false;
  #paused = false;
  #held: Buffer[] = [];
  #hadError = false;

  constructor(session: Session, fromAnotherProcess: boolean) {
    super();
    this.#session = session;
    this.fromAnotherProcess = fromAnotherProcess;
    this.pid = session.add(this);
  }

  write(chunk: Uint8Array | string, callback?: (err?: Error) => void): boolean {
    if (this.closed) {
      if (callback) queueMicrotask(() => callback(new Error("the embedded connection is closed")));
      return false;
    }
    // Copied: the caller may reuse its buffer.
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk);
    this.#input = this.#input.length > 0 ? Buffer.concat([this.#input, bytes]) : bytes;
    this.#split();
    if (callback) queueMicrotask(() => callback());
    return true;
  }

  end(chunk?: Uint8Array): this {
    if (chunk && chunk.length > 0) this.write(chunk);
    this.#shutdown(false);
    return this;
  }

  destroy(err?: Error): this {
    if (err) queueMicrotask(() => this.emit("error", err));
    this.#shutdown(err !== undefined);
    return this;
  }

  pause(): this {
    this.#paused = true;
    return this;
  }

  resume(): this {
    this.#paused = false;
    while (!this.#paused && this.#held.length > 0) this.emit("data", this.#held.shift());
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  hasInput(): boolean {
    return !this.closed && this.#pending.length > 0;
  }

  /** The next messages for PGlite. The startup packet goes alone: PGlite tells it by its first bytes. */
  takeBatch(): Batch | undefined {
    if (this.#pending.length === 0) return undefined;
    if (this.#startupPending) {
      this.#startupPending = false;
      return { bytes: this.#pending.shift()!, synced: true, startup: true };
    }
    const bytes = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    this.#pending = [];
    return { bytes, synced: this.#pendingSynced, startup: false };
  }

  /** Messages that undo what this connection leaves behind on the shared backend. */
  cleanupBytes(owner: boolean): Buffer {
    const parts: Buffer[] = [];
    // Sync first: after an error mid-pipeline the backend skips everything up to a Sync.
    if (owner || this.status !== "I") parts.push(message(SYNC, ""), message(QUERY, "ROLLBACK\0"));
    for (const name of this.#statements) parts.push(message(0x43, /* Close */ `S${name}\0`));
    if (this.#statements.size > 0) parts.push(message(SYNC, ""));
    this.#statements.clear();
    return Buffer.concat(parts);
  }

  deliver(bytes: Buffer): void {
    if (this.closed) return;
    if (this.#paused) this.#held.push(bytes);
    else this.emit("data", bytes);
  }

  fail(err: Error): void {
    queueMicrotask(() => this.emit("error", err));
    this.#shutdown(true);
  }

  finishClose(): void {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    this.emit("close", this.#hadError);
  }

  #split(): void {
    const b = this.#input;
    let pos = 0;
    while (!this.closed) {
      if (!this.#startupSent) {
        // Untyped messages: int32 length, int32 code.
        if (b.length - pos < 8) break;
        const len = b.readUInt32BE(pos);
        const code = b.readUInt32BE(pos + 4);
        if (b.length - pos < len) break;
        const msg = b.subarray(pos, pos + len);
        pos += len;
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          queueMicrotask(() => this.deliver(Buffer.from("N"))); // no encryption in-process
        } else if (code === CANCEL_REQUEST) {
          // A WASM call cannot be interrupted; the cancel connection just goes away.
          this.#shutdown(false);
        } else {
          this.#startupSent = true;
          this.#startupPending = true;
          this.#pending.push(msg);
          this.#pendingSynced = true;
        }
        continue;
      }
      if (b.length - pos < 5) break;
      const len = b.readUInt32BE(pos + 1);
      if (b.length - pos < 1 + len) break;
      const type = b[pos]!;
      let msg = b.subarray(pos, pos + 1 + len);
      pos += 1 + len;
      if (type === TERMINATE) {
        // PGlite ignores Terminate: its one session outlives every connection.
        this.#shutdown(false);
        break;
      }
      if (type === PARSE) {
        const nameEnd = msg.indexOf(0, 5);
        const name = msg.toString("utf8", 5, nameEnd);
        if (name) this.#statements.add(name);
        const text = msg.toString("utf8", nameEnd + 1, msg.indexOf(0, nameEnd + 1));
        if (COPY_FROM_STDIN.test(text)) msg = message(PARSE, `${name}\0${COPY_UNSUPPORTED}\0\0\0`);
      } else if (type === QUERY && COPY_FROM_STDIN.test(msg.toString("utf8", 5, msg.length - 1))) {
        msg = message(QUERY, `${COPY_UNSUPPORTED}\0`);
      }
      this.#pending.push(msg);
      this.#pendingSynced = type === SYNC || type === QUERY;
    }
    this.#input = pos >= b.length ? Buffer.alloc(0) : b.subarray(pos);
    if (this.#pending.length > 0 && !this.closed) this.#session.schedule(this);
  }

  #shutdown(hadError: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.#hadError = hadError;
    this.#pending = [];
    const clean = this.status === "I" && !this.#session.owns(this) && !this.inFlight &&
      this.#statements.size === 0;
    if (clean) {
      this.#session.drop(this);
      queueMicrotask(() => this.finishClose());
    } else {
      // The rollback runs in turn, through the session, like any other batch.
      this.#session.schedule(this);
    }
  }
}
