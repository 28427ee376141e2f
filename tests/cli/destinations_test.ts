/**
 * `herald destinations` and the breaker flags of `herald run`, as an
 * operator uses them: the real program, spawned under the runtime running the
 * test, against the shared Postgres in a schema of its own and a local
 * receiver that answers 503.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { runProgram, RUNTIME } from "../_helpers/spawn.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { seedBacklog } from "../_helpers/seed.ts";

checkLeaks();

describe(`herald destinations on ${RUNTIME}`, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let pg: Record<string, string>;
  let server: TestServer;
  before(async () => {
    env = await freshStore();
    await env.store.migrate();
    server = await startServer((_req, res) => void res.writeHead(503).end());
    pg = { DATABASE_URL, HERALD_SCHEMA: env.schema, HERALD_ALLOW_HOSTS: "127.0.0.1" };
  });
  after(async () => {
    await server.close();
    await env.cleanup();
  });

  it("a failing destination opens; list, show, pause, resume and set work on it", async () => {
    const to = (n: number) => ["--to", `${server.url}/hook/${n}?token=s3cret`];
    const enq = await runProgram(
      ["enqueue", "--channel", "webhook", "--kind", "k", ...to(1), ...to(2), ...to(3), ...to(4)],
      pg,
    );
    assert.equal(enq.code, 0, enq.stderr);
    const ran = await runProgram([
      "run",
      "--once",
      "--failure-threshold",
      "2",
      "--cooldown",
      "600000",
    ], pg);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(server.requests.length, 2, "two failures open it; the other two are held");
    assert.match(ran.stderr, /destination opened/);

    const listed = await runProgram(["destinations", "--json"], pg);
    assert.equal(listed.code, 0, listed.stderr);
    const [d] = listed.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(d.key, server.url);
    assert.equal(d.state, "open");
    assert.equal(d.queued, 4);
    assert.equal(d.consecutiveFailures, 2);
    assert.doesNotMatch(listed.stdout, /s3cret/);

    const table = await runProgram(["destinations"], pg);
    assert.match(
      table.stdout,
      new RegExp(`^webhook\\s+${server.url.replace(/[.]/g, "\\.")}\\s+open `, "m"),
    );

    const paused = await runProgram([
      "destinations",
      "pause",
      "webhook",
      `${server.url}/any/path`,
      "--reason",
      "their outage",
    ], pg);
    assert.equal(paused.stdout.trim(), `webhook ${server.url}: paused`);
    const shown = await runProgram(["destinations", "show", "webhook", server.url], pg);
    assert.match(shown.stdout, /state:\s+paused \(their outage\)/);
    assert.match(shown.stdout, /queued:\s+4/);

    const set = await runProgram([
      "destinations",
      "set",
      "webhook",
      server.url,
      "--max-in-flight",
      "3",
      "--rate",
      "0.5",
    ], pg);
    assert.equal(set.code, 0, set.stderr);
    const resumed = await runProgram(["destinations", "resume", "webhook", server.url], pg);
    assert.equal(resumed.stdout.trim(), `webhook ${server.url}: closed`);
    const after = JSON.parse(
      (await runProgram(["destinations", "show", "webhook", server.url, "--json"], pg)).stdout,
    );
    assert.equal(after.state, "closed");
    assert.equal(after.settings.maxInFlight, 3);
    assert.equal(after.settings.ratePerSecond, 0.5);
  });

  it("mistakes: usage errors exit 2 naming the flag, an unknown destination exits 1", async () => {
    const usage: [string[], RegExp][] = [
      [
        ["destinations", "set", "webhook", "https://x.example"],
        /--max-in-flight, --rate/,
      ],
      [["destinations", "set", "webhook", "https://x.example", "--rate", "-1"], /'--rate'/],
      [["destinations", "set", "webhook", "https://x.example", "--cooldown", "0"], /'--cooldown'/],
      [["destinations", "frobnicate", "webhook", "x"], /'COMMAND'/],
      [["destinations", "pause", "webhook"], /'DESTINATION'/],
      [["run", "--once", "--max-in-flight", "0"], /'--max-in-flight'/],
    ];
    for (const [args, message] of usage) {
      const res = await runProgram(args, pg);
      assert.equal(res.code, 2, `${args.join(" ")}: ${res.stderr}`);
      assert.match(res.stderr, message);
    }
    const unknown = await runProgram(
      ["destinations", "resume", "webhook", "https://never.example"],
      pg,
    );
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no destination webhook https:\/\/never\.example/);
    assert.equal(
      (await runProgram(["destinations", "show", "webhook", "https://never.example"], pg)).code,
      1,
    );
    // Pausing or setting ahead of the first route works, and says so: often a typo.
    const ahead = await runProgram(["destinations", "pause", "webhook", "127.0.0.1:18101"], pg);
    assert.equal(ahead.code, 0, ahead.stderr);
    assert.match(ahead.stdout, /webhook \*: paused/);
    assert.match(ahead.stderr, /no route has gone to webhook \* yet \('127\.0\.0\.1:18101' is not/);
    const set = await runProgram(
      ["destinations", "set", "webhok", "https://x.example", "--rate", "1"],
      pg,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stderr, /no route has gone to webhok https:\/\/x\.example yet; set ahead/);
    // A URL without its scheme, in that note: masked (its path may be the token).
    const token = "XyZSecretToken123";
    const typo = await runProgram(
      ["destinations", "pause", "slack", `hooks.slack.com/services/T0/B0/${token}`],
      pg,
    );
    assert.equal(typo.code, 0, typo.stderr);
    assert.match(typo.stderr, /'\[redacted\]' is not an http\(s\) URL/);
    assert.equal(`${typo.stdout}${typo.stderr}`.includes(token), false);
  });
});

describe(`herald stats on a destination's long backlog, on ${RUNTIME}`, () => {
  it("says '>1000 queued' past the count's cap; herald destinations counts them all", async () => {
    const env = await freshStore();
    try {
      await env.store.migrate();
      await seedBacklog(env.sql, env.schema, 1_005);
      const pg = { DATABASE_URL, HERALD_SCHEMA: env.schema };
      const stats = await runProgram(["stats"], pg);
      assert.equal(stats.code, 0, stats.stderr);
      assert.match(stats.stdout, /https:\/\/down\.example: open, .*>1000 queued, 0 deferred/);
      assert.match(stats.stdout, /https:\/\/flaky\.example: open, .* 3 queued/);
      const listed = await runProgram(["destinations", "--json"], pg);
      assert.equal(listed.code, 0, listed.stderr);
      const down = listed.stdout.trim().split("\n").map((l) => JSON.parse(l))
        .find((d: { key: string }) => d.key === "https://down.example");
      assert.equal(down?.queued, 1_005);
    } finally {
      await env.cleanup();
    }
  });
});
