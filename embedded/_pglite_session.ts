/**
 * One PGlite backend shared by many virtual connections: the session hands
 * PGlite to one connection at a time and keeps it there until that
 * connection is idle (ReadyForQuery `I` after a Sync), so one connection's
 * transaction never interleaves with another's statements.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { BACKEND_KEY, NOTIFICATION, READY } from "./_pg_wire.ts";

/** The part of PGlite this module drives (PGlite itself satisfies it). */
export interface ProtocolDb {
  readonly closed: boolean;
  /** PGlite's own query mutex, so we never interleave with `db.query()` or `db.close()`. */
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * The answer's bytes as Postgres writes them (views on its memory, to be
   * copied). Not `execProtocolRaw`, which also parses every message into
   * objects nobody reads: garbage that grew a worker's heap by 100 MB per
   * few thousand routes.
   */
  execProtocolRawStream(
    message: Uint8Array,
    options: { onRawData: (bytes: Uint8Array) => void },
  ): Promise<void>;
}

export type TxStatus = "I" | "T" | "E";

export interface Batch {
  readonly bytes: Buffer;
  /** The batch ends with Sync or a simple Query, so its answer ends with ReadyForQuery. */
  readonly synced: boolean;
  readonly startup: boolean;
}

/** What the session needs of a virtual connection (`PgliteSocket` is one). */
export interface SessionSocket {
  readonly pid: number;
  /** A client of another process (through the shared socket): see {@link CLIENT_TURN_MS}. */
  readonly fromAnotherProcess: boolean;
  status: TxStatus;
  inFlight: boolean;
  closed: boolean;
  hasInput(): boolean;
  takeBatch(): Batch | undefined;
  cleanupBytes(owner: boolean): Buffer;
  deliver(bytes: Buffer): void;
  fail(err: Error): void;
  finishClose(): void;
}

/**
 * How long the backend stays with a client of another process (an operator
 * command) after each of its statements, waiting for its next one. Without
 * it, the worker's next route transaction, queued the moment the last one
 * ended, took the backend between any two statements of `herald stats`, and
 * the command waited for one send per statement (5 of them, 10 s and more
 * behind 2-second sends) instead of the one in progress when it began.
 */
export const CLIENT_TURN_MS = 100;
/**
 * The longest run of such turns while this process waits: past it, this
 * process's oldest waiting connection goes next, so a client that never
 * pauses (a prune through the holder, between batches) cannot stop the worker.
 */
export const CLIENT_STREAK_MS = 1_000;

/** How a session shares its backend with clients of other processes; tests set their own. */
export interface TurnOptions {
  readonly clientTurnMs?: number;
  readonly clientStreakMs?: number;
  /** The clock (ms) that times a streak. */
  readonly now?: () => number;
}

/** Serialises the virtual connections of one PGlite at transaction granularity. */
export class Session {
  readonly #db: ProtocolDb;
  readonly #sockets = new Set<SessionSocket>();
  /** Sockets with input waiting, oldest first. */
  #ready: SessionSocket[] = [];
  /** The socket that holds the backend until it is idle again. */
  #owner: SessionSocket | undefined;
  #pumping = false;
  #nextPid = 1;
  readonly #turns: Required<TurnOptions>;
  /** A client of another process between two statements, and when its turn lapses. */
  #turn: { socket: SessionSocket; timer: ReturnType<typeof setTimeout> } | undefined;
  /** When the clients' current run of turns began (none since this process last ran). */
  #streakSince: number | undefined;

  constructor(db: ProtocolDb, turns: TurnOptions = {}) {
    this.#db = db;
    this.#turns = {
      clientTurnMs: turns.clientTurnMs ?? CLIENT_TURN_MS,
      clientStreakMs: turns.clientStreakMs ?? CLIENT_STREAK_MS,
      now: turns.now ?? (() => performance.now()),
    };
  }

  add(socket: SessionSocket): number {
    this.#sockets.add(socket);
    return this.#nextPid++;
  }

  /** True when `socket` holds the backend mid-transaction or mid-pipeline. */
  owns(socket: SessionSocket): boolean {
    return this.#owner === socket;
  }

  /** Forgets a socket that has nothing left to clean up. */
  drop(socket: SessionSocket): void {
    this.#sockets.delete(socket);
    this.#ready = this.#ready.filter((s) => s !== socket);
    this.#endTurn(socket);
  }

  schedule(socket: SessionSocket): void {
    if (!this.#ready.includes(socket)) this.#ready.push(socket);
    this.#kick();
  }

  #kick(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    // Deferred so that the driver's burst of writes goes to PGlite as one call.
    queueMicrotask(() => void this.#pump());
  }

  /**
   * Keeps the backend for `socket`'s next statement, up to the client's turn,
   * unless the clients' run of turns is over (this process goes next).
   */
  #holdFor(socket: SessionSocket): void {
    this.#endTurn(undefined);
    const now = this.#turns.now();
    this.#streakSince ??= now;
    if (now - this.#streakSince >= this.#turns.clientStreakMs) {
      this.#streakSince = undefined;
      return;
    }
    const timer = setTimeout(() => this.#endTurn(socket, true), this.#turns.clientTurnMs);
    (timer as { unref?: () => void }).unref?.(); // never what keeps a process alive
    this.#turn = { socket, timer };
  }

  /**
   * Ends the client's turn (`socket`'s only, when given) and lets the others
   * in; `lapsed`: the client paused, so its run of turns is over too.
   */
  #endTurn(socket: SessionSocket | undefined, lapsed = false): void {
    if (!this.#turn || (socket !== undefined && this.#turn.socket !== socket)) return;
    clearTimeout(this.#turn.timer);
    this.#turn = undefined;
    if (lapsed) this.#streakSince = undefined;
    if (this.#ready.length > 0) this.#kick();
  }

  /**
   * Whose batch goes next: the owner's (mid-transaction), else during a
   * client's turn that client's or another client's of another process,
   * else the oldest waiting; -1 to wait.
   */
  #next(): number {
    if (this.#owner) return this.#ready.indexOf(this.#owner);
    const turn = this.#turn;
    if (turn) return this.#ready.findIndex((s) => s === turn.socket || s.fromAnotherProcess);
    return this.#ready.length > 0 ? 0 : -1;
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const index = this.#next();
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

  async #exec(bytes: Uint8Array): Promise<Buffer> {
    const chunks: Buffer[] = [];
    await this.#db.runExclusive(() =>
      this.#db.execProtocolRawStream(bytes, {
        onRawData: (chunk) => void chunks.push(Buffer.from(chunk)), // copied: a view on WASM memory
      })
    );
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  /** What a server does when its client goes away: abort the transaction, drop its statements. */
  async #cleanup(socket: SessionSocket): Promise<void> {
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
    this.#endTurn(socket);
    socket.finishClose();
  }

  async #run(socket: SessionSocket, batch: Batch): Promise<void> {
    let answer: Buffer;
    socket.inFlight = true;
    try {
      answer = await this.#exec(batch.bytes);
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
    if (!socket.fromAnotherProcess) this.#streakSince = undefined; // this process had its turn
    else if (idle) this.#holdFor(socket);

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
