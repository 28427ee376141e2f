import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, freshStore } from "./_helpers/pg.ts";
import { runProgram, RUNTIME, startProgram, waitForLine } from "./_helpers/spawn.ts";

describe(`the herald program on ${RUNTIME}`, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  before(async () => {
    env = await freshStore();
  });
  after(async () => {
    await env.cleanup();
  });

  it("--help explains the commands and exits 0", async () => {
    const { code, stdout } = await runProgram(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /Usage:/);
    assert.match(stdout, /DATABASE_URL/);
    assert.match(stdout, /Exit codes/);
  });

  it("usage errors exit 2 with a clear message", async () => {
    const cases: [string[], Record<string, string | undefined>, RegExp][] = [
      [["bogus"], {}, /unknown command 'bogus'/],
      [["--no-such-flag"], {}, /no-such-flag/],
      [["run", "--interval", "soon"], {}, /'--interval': must be a number, got "soon"/],
      [["run", "--log-level", "loud"], {}, /'--log-level'/],
      [["run", "--schema", "Bad-Schema"], { DATABASE_URL }, /'schema'/],
      [["run"], { DATABASE_URL: undefined }, /DATABASE_URL/],
    ];
    for (const [args, extra, pattern] of cases) {
      const { code, stderr } = await runProgram(args, extra);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, pattern);
    }
  });

  it("an unreachable database exits 1 without printing the password", async () => {
    const url = "postgres://herald:s3cretPassw0rd@127.0.0.1:1/nowhere";
    const { code, stderr, stdout } = await runProgram(["migrate"], { DATABASE_URL: url });
    assert.equal(code, 1);
    assert.equal((stderr + stdout).includes("s3cretPassw0rd"), false, stderr);
  });

  it("migrate prints the schema version", async () => {
    const { code, stdout } = await runProgram(["migrate", "--schema", env.schema], {
      DATABASE_URL,
    });
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`schema "${env.schema}" is at version \\d+`));
  });

  it("run --once delivers what is due and exits 0", async () => {
    await env.store.migrate();
    const { routeIds } = await env.store.enqueue({ kind: "hello", payload: { who: "world" } }, [
      { channel: "log", destination: "ops" },
    ]);
    const { code, stdout, stderr } = await runProgram(["run", "--once", "--schema", env.schema], {
      DATABASE_URL,
    });
    assert.equal(code, 0, stderr);
    const line = JSON.parse(stdout.trim().split("\n").find((l) => l.includes(routeIds[0]!))!);
    assert.deepEqual({ kind: line.kind, payload: line.payload }, {
      kind: "hello",
      payload: { who: "world" },
    });
    assert.equal((await env.store.getRoute(routeIds[0]!))?.status, "sent");
  });

  it("run delivers, then stops cleanly on SIGTERM", async () => {
    const { routeIds } = await env.store.enqueue({ kind: "first" }, [{
      channel: "log",
      destination: "x",
    }]);
    const child = startProgram(["run", "--schema", env.schema, "--interval", "60000"], {
      DATABASE_URL,
    });
    await waitForLine(child.stdout!, new RegExp(routeIds[0]!));
    let rest = "";
    child.stderr!.on("data", (d) => (rest += d));
    const exited = new Promise<number | null>((resolve) =>
      child.on("close", (code) => resolve(code))
    );
    child.kill("SIGTERM");
    const code = await exited;
    // Deno's child_process reports a child it signalled as (null, "SIGTERM") even
    // when the child handled the signal and exited 0; the log line proves it did.
    assert.ok(code === 0 || (RUNTIME === "deno" && code === null), `exit code ${code}`);
    assert.match(rest, /SIGTERM: shutting down/);
    assert.match(rest, /worker stopped/);
    assert.equal((await env.store.getRoute(routeIds[0]!))?.status, "sent");
  });
});
