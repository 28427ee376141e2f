/**
 * The few pieces of the Postgres wire protocol the PGlite socket reads and
 * writes: message codes, startup request codes, and a frontend message.
 *
 * @module
 */
import { Buffer } from "node:buffer";

export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

export const PARSE = 0x50; // P
export const QUERY = 0x51; // Q
export const SYNC = 0x53; // S
export const TERMINATE = 0x58; // X
export const NOTIFICATION = 0x41; // A
export const READY = 0x5a; // Z
export const BACKEND_KEY = 0x4b; // K

// PGlite aborts its whole WASM instance when COPY FROM STDIN runs out of input
// inside one protocol call, and the driver only sends the data after it saw
// CopyInResponse. Rewriting such statements into an error keeps the database
// alive and gives the caller a normal SQLSTATE (0A000) to handle.
export const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i;
export const COPY_UNSUPPORTED = "DO $$BEGIN RAISE EXCEPTION " +
  "'COPY FROM STDIN is not supported by the embedded database' " +
  "USING ERRCODE = 'feature_not_supported'; END$$";

/** One typed frontend message; `body` carries its own NULs. */
export function message(type: number, body: string): Buffer {
  const payload = Buffer.from(body);
  const out = Buffer.alloc(5 + payload.length);
  out[0] = type;
  out.writeUInt32BE(4 + payload.length, 1);
  payload.copy(out, 5);
  return out;
}
