/**
 * The program's flags and environment, spawned: every row of _cases_cli.ts
 * exits 2 by itself with a short message naming the culprit, echoes no
 * secret, and changes no row.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DATABASE_URL } from "../_helpers/pg.ts";
import { inBatches, runProgramWithin } from "../_helpers/hostile_http.ts";
import { checkLeaks } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import { SECRET, sum, useHostileDb } from "./_hostile.ts";
import { CLI } from "./_cases_cli.ts";

checkLeaks();

describe(`hostile input on ${RUNTIME}`, () => {
  const env = useHostileDb();

  describe("the program's flags (spawned)", () => {
    let results: Awaited<ReturnType<typeof runProgramWithin>>[] = [];
    before(async () => {
      const pg = { DATABASE_URL, HERALD_SCHEMA: env().schema };
      const before = await sum(env());
      results = await inBatches(
        CLI.map(([args, extra]) => () => runProgramWithin(args, { ...pg, ...extra }, 60_000)),
        6,
      );
      assert.equal(await sum(env()), before, "no CLI case changed a row");
    });
    CLI.forEach(([args, extra, pattern, todo], i) => {
      const label = [...Object.entries(extra).map(([k, v]) => `${k}=${v}`), ...args]
        .join(" ").slice(0, 90);
      it(label, todo ? { todo } : {}, () => {
        const r = results[i]!;
        assert.equal(r.timedOut, false, "the program exited by itself");
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, pattern);
        assert.equal((r.stdout + r.stderr).includes(SECRET), false, "no secret echoed");
        assert.ok(r.stderr.length < 1_000, "the message is short");
      });
    });
  });
});
