/**
 * Strings full of SQL reach Postgres only as parameters: every string of
 * _cases_sql.ts is stored verbatim wherever text goes, and every SQL-laden
 * operator call there finds, refuses or changes nothing it should not.
 */
import { describe, it } from "node:test";
import { checkLeaks } from "../_helpers/leaks.ts";
import { RUNTIME } from "../_helpers/spawn.ts";
import { useHostileDb } from "./_hostile.ts";
import { SQL_CALLS, SQLISH, storedVerbatim } from "./_cases_sql.ts";

checkLeaks();

describe(`hostile input on ${RUNTIME}`, () => {
  const env = useHostileDb();

  describe("strings full of SQL reach Postgres only as parameters", () => {
    SQLISH.forEach((s, i) => {
      it(`stored verbatim: ${s}`, async () => {
        const payload = { [s]: s, list: [s, { nested: s }] };
        await storedVerbatim(env(), s, `${s} #${i}`, payload, `${s}:${i}`);
      });
    });
    for (const c of SQL_CALLS) it(c.name, () => c.run(env()));
  });
});
