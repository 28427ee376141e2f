/**
 * The program's uncaught-exception guard (cli/_guard.ts), on a stand-in for
 * `process`: the known driver write is ignored, anything else is logged
 * redacted and ends the program with 1.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { guardUncaught, letClosedPipesGo } from "../../cli/_guard.ts";
import { recordingLogger } from "../_helpers/kit.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const SECRET = "s3cr3t-token-value";

function driverWrite(): TypeError {
  const err = new TypeError("Cannot read properties of null (reading 'write')");
  err.stack =
    `${err.message}\n    at nextWrite (file:///app/node_modules/postgres/src/connection.js:249:12)`;
  return err;
}

describe("the program's uncaught-exception guard", () => {
  it("ignores postgres.js's closed-socket write with a warning, and exits 1 on anything else, redacted", () => {
    const target = new EventEmitter();
    const { logger, lines } = recordingLogger();
    const exits: number[] = [];
    const unguard = guardUncaught(logger, [SECRET], target, (code) => exits.push(code));
    target.emit("uncaughtException", driverWrite());
    assert.deepEqual(exits, []);
    assert.equal(lines[0]?.level, "warn");
    target.emit(
      "uncaughtException",
      new Error(`connect failed for postgres://app:${SECRET}@db.internal/prod?token=${SECRET}`),
    );
    assert.deepEqual(exits, [1]);
    const logged = JSON.stringify(lines[1]);
    assert.equal(lines[1]?.level, "error");
    assert.equal(logged.includes(SECRET), false, logged);
    assert.match(logged, /connect failed/);
    // A lost connection's late rejection: a warning, the program goes on.
    const lost = Object.assign(new Error("terminating connection due to administrator command"), {
      name: "PostgresError",
      code: "57P01",
    });
    target.emit("unhandledRejection", lost);
    assert.deepEqual(exits, [1], "no exit for it");
    assert.equal(lines[2]?.level, "warn");
    // Any other unhandled rejection ends the program, as an uncaught exception does.
    target.emit("unhandledRejection", new TypeError("a bug"));
    assert.deepEqual(exits, [1, 1]);
    unguard();
    assert.equal(target.listenerCount("uncaughtException"), 0);
    assert.equal(target.listenerCount("unhandledRejection"), 0);
  });

  it("lets a write to a closed pipe go on the program's output, and throws anything else", () => {
    const stdout = new EventEmitter();
    const unpipe = letClosedPipesGo([stdout]);
    // Output to a reader that went away (`| head -1`): dropped, the work goes on.
    const closed = Object.assign(new Error("write EPIPE"), { code: "EPIPE", syscall: "write" });
    assert.doesNotThrow(() => stdout.emit("error", closed));
    // Anything else reaches the uncaught-exception guard, which ends the program.
    assert.throws(() => stdout.emit("error", new Error("EBADF")), /EBADF/);
    unpipe();
    assert.equal(stdout.listenerCount("error"), 0);
  });
});
