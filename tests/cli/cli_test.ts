/**
 * The real program, spawned under the runtime running the test, against the
 * shared Postgres (each test in its own schema). On the embedded database:
 * embedded_cli_test.ts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { runProgram, RUNTIME, startProgram, waitForLine, waitForLines } from "../_helpers/spawn.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe(`the herald program on ${RUNTIME}`, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let pg: Record<string, string>;
  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    pg = { DATABASE_URL, HERALD_SCHEMA: env.schema };
  });
  after(async () => {
    await env.cleanup();
  });

  it("--help lists the commands; each command has its own --help", async () => {
    const top = await runProgram(["--help"]);
    assert.equal(top.code, 0);
    for (
      const cmd of [
        "run",
        "demo",
        "migrate",
        "enqueue",
        "stats",
        "routes",
        "show",
        "retry",
        "cancel",
        "prune",
      ]
    ) {
      assert.match(top.stdout, new RegExp(`^  ${cmd}\\s`, "m"), `${cmd} listed`);
    }
    assert.match(top.stdout, /concurrency 1/);
    assert.match(top.stdout, /Exit codes/);
    const sub = await runProgram(["prune", "--help"]);
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /--older-than/);
    assert.equal((await runProgram(["--version"])).stdout.trim(), "0.1.0");
  });

  it("usage errors exit 2 with a message naming the culprit", async () => {
    const cases: [string[], RegExp][] = [
      [["bogus"], /unknown command 'bogus'/],
      [["--no-such-flag"], /no-such-flag/],
      [["run", "--interval", "soon"], /'--interval': must be a number, got "soon"/],
      [["run", "--log-level", "loud"], /'--log-level'/],
      [["run", "--schema", "Bad-Schema"], /'schema'/],
      [["run", "--concurrency", "0"], /'--concurrency'/],
      [["run", "--metrics-port", "70000"], /'--metrics-port'/],
      [["run", "--dashboard-port", "-1"], /'--dashboard-port'/],
      [
        ["run", "--dashboard-port", "0", "--dashboard-host", "0.0.0.0"],
        /'--dashboard-host'.*HERALD_DASHBOARD_TOKEN/,
      ],
      [["dashboard", "--host", "::"], /'--host': :: is reachable beyond this machine/],
      [["dashboard", "--port", "http"], /'--port': must be a number/],
      [["enqueue", "--to", "x"], /'--channel': is required/],
      [["enqueue", "--channel", "log"], /'--to': is required/],
      [
        ["enqueue", "--channel", "log", "--to", "x", "--payload", "{not json"],
        /'--payload': is not valid JSON/,
      ],
      [["enqueue", "--channel", "Bad!", "--to", "x"], /'--channel': must be 1-63 characters/],
      [["enqueue", "--channel", "log", "--to", "x", "--deliver-at", "tomorrow"], /'--deliver-at'/],
      [["routes", "--status", "lost"], /'--status'/],
      [["retry"], /route ids or --failed/],
      [["retry", "--failed", "--since", "yesterday"], /'--since'/],
      [["retry", crypto.randomUUID(), "--since", "1h"], /'--since': goes with --failed/],
      [["routes", "--limit", "0"], /'--limit'/],
      [["cancel", "not-a-uuid"], /'ROUTE_ID'/],
      [["prune"], /'--older-than'/],
      [["prune", "--older-than", "30d", "--status", "queued"], /'--status'/],
      [["prune", "--older-than", "30d", "--duty-cycle", "0"], /'--duty-cycle': .*got "0"/],
      [
        ["prune", "--older-than", "30d", "--duty-cycle", "half"],
        /'--duty-cycle': must be a number/,
      ],
      [["prune", "--older-than", "30d", "--batch-size", "2.5"], /'--batch-size': .*got "2.5"/],
      [["show", "a", "b"], /unexpected argument 'b'/],
    ];
    for (const [args, pattern] of cases) {
      const { code, stderr } = await runProgram(args, pg);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, pattern, args.join(" "));
    }
  });

  it("an unreachable database exits 1 without printing the password", async () => {
    const url = "postgres://herald:s3cretPassw0rd@127.0.0.1:1/nowhere";
    const { code, stderr, stdout } = await runProgram(["migrate"], { DATABASE_URL: url });
    assert.equal(code, 1);
    assert.equal((stderr + stdout).includes("s3cretPassw0rd"), false, stderr);
  });

  it("migrate prints the schema version", async () => {
    const { code, stdout } = await runProgram(["migrate"], pg);
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`schema "${env.schema}" is at version \\d+`));
  });

  it("enqueue, run --once, routes, show and stats work together", async () => {
    const payloadFile = join(mkdtempSync(join(tmpdir(), "herald-cli-")), "payload.json");
    writeFileSync(payloadFile, JSON.stringify({ who: "world" }));
    const enq = await runProgram(
      [
        "enqueue",
        "--channel",
        "log",
        "--to",
        "ops",
        "--to",
        "audit",
        "--kind",
        "hello",
        "--payload-file",
        payloadFile,
      ],
      pg,
    );
    assert.equal(enq.code, 0, enq.stderr);
    const ids = enq.stdout.trim().split("\n");
    assert.equal(ids.length, 2);

    const ran = await runProgram(["run", "--once"], pg);
    assert.equal(ran.code, 0, ran.stderr);
    const line = JSON.parse(ran.stdout.trim().split("\n").find((l) => l.includes(ids[0]!))!);
    assert.deepEqual({ kind: line.kind, payload: line.payload }, {
      kind: "hello",
      payload: { who: "world" },
    });

    const shown = await runProgram(["show", ids[0]!, "--json"], pg);
    assert.equal(shown.code, 0, shown.stderr);
    const route = JSON.parse(shown.stdout);
    assert.equal(route.status, "sent");
    assert.equal(route.attemptLog.length, 1);
    assert.equal(route.attemptLog[0].outcome, "sent");

    const listed = await runProgram(["routes", "--status", "sent", "--json"], pg);
    assert.deepEqual(
      listed.stdout.trim().split("\n").map((l) => JSON.parse(l).id).sort(),
      [...ids].sort(),
    );
    // The table names each route's destination (not the channel's one key, `*`).
    const rows = (await runProgram(["routes", "--status", "sent"], pg)).stdout;
    for (const [id, to] of [[ids[0], "ops"], [ids[1], "audit"]]) {
      assert.match(rows, new RegExp(`^${id}\\s+hello\\s+log\\s+${to}\\s+sent\\s`, "m"));
    }

    const st = await runProgram(["stats", "--json"], pg);
    assert.equal(JSON.parse(st.stdout).byStatus.sent, 2);
    const table = await runProgram(["stats"], pg);
    assert.match(table.stdout, /^log\s+0\s+2\s+0\s+0\s+0\s+-$/m);

    assert.equal((await runProgram(["show", crypto.randomUUID()], pg)).code, 1);
  });

  it("retry refuses sent routes unless --force; cancel and prune report counts", async () => {
    const enq = await runProgram([
      "enqueue",
      "--channel",
      "log",
      "--to",
      "a",
      "--deliver-at",
      "2999-01-01T00:00:00Z",
    ], pg);
    const [later] = enq.stdout.trim().split("\n");
    const sentRoute =
      (await env.store.enqueue({ kind: "k" }, [{ channel: "log", destination: "b" }])).routeIds[0]!;
    await runProgram(["run", "--once"], pg);

    const refused = await runProgram(["retry", sentRoute], pg);
    assert.equal(refused.code, 0);
    assert.match(refused.stdout, /retried 0 route/);
    assert.match(refused.stderr, /already sent: left alone \(use --force\)/);
    const forced = await runProgram(["retry", sentRoute, "--force"], pg);
    assert.match(forced.stdout, /retried 1 route/);

    const cancelled = await runProgram(["cancel", later!], pg);
    assert.match(cancelled.stdout, /cancelled 1 route/);
    const pruned = await runProgram(["prune", "--older-than", "0s", "--status", "cancelled"], pg);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /pruned 1 route/);
    assert.equal(
      (await env.store.getRoute(sentRoute))?.status,
      "queued",
      "prune left the due route alone",
    );
  });

  it("enqueue reads a piped payload, and --deliver-at 5m means five minutes from now", async () => {
    const payload = JSON.stringify({ order: 42, note: "x".repeat(100_000) });
    const before = Date.now();
    const enq = await runProgram(
      ["enqueue", "--channel", "log", "--to", "ops", "--payload-file", "-", "--deliver-at", "5m"],
      pg,
      payload,
    );
    assert.equal(enq.code, 0, enq.stderr);
    const route = await env.store.getRoute(enq.stdout.trim());
    const at = route!.nextAttemptAt.getTime();
    assert.ok(
      at >= before + 5 * 60_000 - 1_000,
      `due ${new Date(at).toISOString()}: in the future`,
    );
    assert.ok(at <= Date.now() + 5 * 60_000 + 1_000);
    const rows = await env.sql`
      SELECT n.payload FROM ${env.sql(env.schema)}.notifications n
      JOIN ${env.sql(env.schema)}.notification_routes r ON r.notification_id = n.id
      WHERE r.route_id = ${route!.id}`;
    assert.deepEqual(rows[0]?.["payload"], JSON.parse(payload));
  });

  it("retry and cancel exit 1 when an id names no route", async () => {
    const unknown = crypto.randomUUID();
    for (const command of ["retry", "cancel"]) {
      const r = await runProgram([command, unknown], pg);
      assert.equal(r.code, 1, `${command}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`no route ${unknown}`));
    }
  });

  it("a dashboard token shorter than 16 characters is refused, naming it", async () => {
    const { code, stderr } = await runProgram(["dashboard"], {
      ...pg,
      HERALD_DASHBOARD_TOKEN: "abc",
    });
    assert.equal(code, 2);
    assert.match(stderr, /'HERALD_DASHBOARD_TOKEN': must be at least 16 characters/);
    assert.ok(!stderr.includes('abc"'), "the token itself is not echoed");
  });

  it("run serves /metrics, /healthz and the dashboard on 127.0.0.1, then stops cleanly on SIGTERM", async () => {
    const { routeIds } = await env.store.enqueue({ kind: "first" }, [{
      channel: "log",
      destination: "x",
    }]);
    const child = startProgram(
      ["run", "--interval", "60000", "--metrics-port", "0", "--dashboard-port", "0"],
      pg,
    );
    // Ended on every path: a failed assertion must not leave a worker running.
    const closed = new Promise<number | null>((resolve) =>
      child.on("close", (code) => resolve(code))
    );
    try {
      const [serving, board] = (await waitForLines(child.stderr!, [
        /serving \/metrics/,
        /serving the dashboard/,
      ])).map((line) => JSON.parse(line));
      assert.equal(board.host, "127.0.0.1");
      assert.equal(serving.host, "127.0.0.1");
      await waitForLine(child.stdout!, new RegExp(routeIds[0]!));
      const metrics = await fetch(`http://127.0.0.1:${serving.port}/metrics`);
      assert.equal(metrics.status, 200);
      const text = await metrics.text();
      assert.match(text, /^herald_routes_sent_total\{channel="log"\} [1-9]/m);
      assert.match(text, /^herald_routes\{status="sent"\} \d+$/m);
      const health = await fetch(`http://127.0.0.1:${serving.port}/healthz`);
      assert.equal(health.status, 200);
      await health.text();
      const route = await fetch(`http://127.0.0.1:${board.port}/routes/${routeIds[0]}`);
      assert.equal(route.status, 200);
      assert.match(
        await route.text(),
        /data-testid="status">sent</,
        "the dashboard shows the route sent",
      );

      let rest = "";
      child.stderr!.on("data", (d) => (rest += d));
      child.kill("SIGTERM");
      const code = await closed;
      // Deno's child_process reports a child it signalled as (null, "SIGTERM") even
      // when the child handled the signal and exited 0; the log lines prove it did.
      assert.ok(code === 0 || (RUNTIME === "deno" && code === null), `exit code ${code}`);
      assert.match(rest, /SIGTERM: shutting down/);
      assert.match(rest, /worker stopped/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await closed;
    }
  });
});
