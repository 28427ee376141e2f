/**
 * A `socket` for the `postgres` driver that talks the Postgres wire protocol to
 * an in-process PGlite instead of a server, so `PostgresStore` and its SQL run
 * unchanged on the embedded database.
 *
 * PGlite has exactly one backend session, but the driver opens several
 * connections (a pool, and one more for `sql.listen`). Each connection here is
 * a virtual socket; a {@link Session} hands PGlite to one of them at a time and
 * keeps it there until that connection is idle (ReadyForQuery `I` after a
 * Sync), so one connection's transaction never interleaves with another's
 * statements. The price: a connection that opens a transaction and then waits
 * on another connection deadlocks, where a server would have run both.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";

/** The part of PGlite this module drives (PGlite itself satisfies it). */
export interface ProtocolDb {
  readonly closed: boolean;
  /** PGlite's own query mutex, so we never interleave with `db.query()` or `db.close()`. */
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  execProtocolRaw(message: Uint8Array): Promise<Uint8Array>;
}

/**
 * For the driver's `socket` option: `postgres({ socket: pgliteSocketFactory(db), ... })`.
 * Call it once per database: the virtual connections of one factory share its
 * arbitration, those of two factories would trample each other's transactions.
 */
export function pgliteSocketFactory(db: ProtocolDb): () => PgliteSocket {
  const session = new Session(db);
  return () => new PgliteSocket(session);
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

const PARSE = 0x50; // P
const QUERY = 0x51; // Q
const SYNC = 0x53; // S
const TERMINATE = 0x58; // X
const NOTIFICATION = 0x41; // A
const READY = 0x5a; // Z
const BACKEND_KEY = 0x4b; // K

// PGlite aborts its whole WASM instance when COPY FROM STDIN runs out of input
// inside one protocol call, and the driver only sends the data after it saw
// CopyInResponse. Rewriting such statements into an error keeps the database
// alive and gives the caller a normal SQLSTATE (0A000) to handle.
const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i;
const COPY_UNSUPPORTED = "DO $$BEGIN RAISE EXCEPTION " +
  "'COPY FROM STDIN is not supported by the embedded database' " +
  "USING ERRCODE = 'feature_not_supported'; END$$";

type TxStatus = "I" | "T" | "E";

interface Batch {
  readonly bytes: Buffer;
  /** The batch ends with Sync or a simple Query, so its answer ends with ReadyForQuery. */
  readonly synced: boolean;
  readonly startup: boolean;
}

/** Serialises the virtual connections of one PGlite at transaction granularity. */
class Session {
  readonly #db: ProtocolDb;
  readonly #sockets = new Set<PgliteSocket>();
  /** Sockets with input waiting, oldest first. */
  #ready: PgliteSocket[] = [];
  /** The socket that holds the backend until it is idle again. */
  #owner: PgliteSocket | undefined;
  #pumping = false;
  #nextPid = 1;

  constructor(db: ProtocolDb) {
    this.#db = db;
  }

  add(socket: PgliteSocket): number {
    this.#sockets.add(socket);
    return this.#nextPid++;
  }

  /** True when `socket` holds the backend mid-transaction or mid-pipeline. */
  owns(socket: PgliteSocket): boolean {
    return this.#owner === socket;
  }

  /** Forgets a socket that has nothing left to clean up. */
  drop(socket: PgliteSocket): void {
    this.#sockets.delete(socket);
    this.#ready = this.#ready.filter((s) => s !== socket);
  }

  schedule(socket: PgliteSocket): void {
    if (!this.#ready.includes(socket)) this.#ready.push(socket);
    if (this.#pumping) return;
    this.#pumping = true;
    // Deferred so that the driver's burst of writes goes to PGlite as one call.
    queueMicrotask(() => void this.#pump());
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const index = this.#owner ? this.#ready.indexOf(this.#owner) : 0;
        const socket = this.#ready[index];
        if (index < 0 || !socket) return; // idle, or the owner has not sent its next message yet
        this.#ready.splice(index, 1);
        if (socket.closed) await this.#cleanup(socket);
        else {
          const batch = socket.takeBatch();
          if (batch) await this.#run(socket, batch);
          // The startup packet went alone; what the driver sent after it is still waiting.
          if (socket.hasInput() && !this.#ready.includes(socket)) this.#ready.push(socket);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #exec(bytes: Uint8Array): Promise<Uint8Array> {
    return await this.#db.runExclusive(() => this.#db.execProtocolRaw(bytes));
  }

  /** What a server does when its client goes away: abort the transaction, drop its statements. */
  async #cleanup(socket: PgliteSocket): Promise<void> {
    const bytes = socket.cleanupBytes(this.#owner === socket);
    if (bytes.length > 0 && !this.#db.closed) {
      try {
        await this.#exec(bytes);
      } catch {
        // The database is closing; there is nothing left to clean.
      }
    }
    if (this.#owner === socket) this.#owner = undefined;
    this.#sockets.delete(socket);
    socket.finishClose();
  }

  async #run(socket: PgliteSocket, batch: Batch): Promise<void> {
    let answer: Buffer;
    socket.inFlight = true;
    try {
      // Copied: PGlite may hand back a view on its own memory (it does for startup).
      answer = Buffer.from(await this.#exec(batch.bytes));
      socket.inFlight = false;
    } catch (err) {
      socket.inFlight = false;
      if (this.#owner === socket) this.#owner = undefined;
      socket.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const keep: Buffer[] = [];
    const notifications: Buffer[] = [];
    let status: TxStatus | undefined;
    let last = -1;
    let start = 0;
    let pos = 0;
    while (pos + 5 <= answer.length) {
      const type = answer[pos]!;
      const end = pos + 1 + answer.readUInt32BE(pos + 1);
      if (type === NOTIFICATION) {
        // Cut out: it belongs to the listening connection, whichever one ran the NOTIFY.
        if (pos > start) keep.push(answer.subarray(start, pos));
        notifications.push(answer.subarray(pos, end));
        start = end;
      } else if (type === READY) {
        status = String.fromCharCode(answer[pos + 5]!) as TxStatus;
      } else if (type === BACKEND_KEY && batch.startup) {
        answer.writeInt32BE(socket.pid, pos + 5); // a distinct pid per connection
      }
      last = type;
      pos = end;
    }
    if (answer.length > start) keep.push(answer.subarray(start));
    if (status) socket.status = status;
    const idle = socket.status === "I" && batch.synced && last === READY;
    this.#owner = idle ? undefined : socket;

    if (keep.length > 0) socket.deliver(keep.length === 1 ? keep[0]! : Buffer.concat(keep));
    if (notifications.length > 0) {
      const all = Buffer.concat(notifications);
      // Later, like a server pushing to another backend. The driver ignores
      // notifications on connections that are not listening.
      setTimeout(() => {
        for (const s of this.#sockets) s.deliver(all);
      }, 0);
    }
  }
}

/**
 * One virtual connection: the subset of `net.Socket` the driver uses. Writes
 * are split into protocol messages and queued on the {@link Session}; PGlite's
 * answers come back as `data` events.
 */
export class PgliteSocket extends EventEmitter {
  /** Read by the driver before it waits for `close`. */
  readyState: "open" | "closed" = "open";
  /** Read by the driver for error messages. */
  readonly host = "pglite";
  readonly port = 0;

  readonly pid: number;
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

  constructor(session: Session) {
    super();
    this.#session = session;
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

/** One typed frontend message; `body` carries its own NULs. */
function message(type: number, body: string): Buffer {
  const payload = Buffer.from(body);
  const out = Buffer.alloc(5 + payload.length);
  out[0] = type;
  out.writeUInt32BE(4 + payload.length, 1);
  payload.copy(out, 5);
  return out;
}
