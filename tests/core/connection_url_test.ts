import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkConnectionUrl } from "../../core/_connection_url.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import { PostgresStore } from "../../store.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("a Postgres connection URL", () => {
  it("is taken as users write it", () => {
    for (
      const url of [
        "postgres://postgres@127.0.0.1:5432/test",
        "postgresql://user:p%40ss%2Fw%3Frd@db.example/app?sslmode=require",
        "postgres://h1:5432,h2:5433/app?target_session_attrs=read-write",
        "postgres://db.example",
        "postgres://u:pw@db.example/app?options=-c%20search_path%3Dx@y",
        // The driver reads these as written too: a database named with an '@',
        // and (the URL standard's reading, which it follows) two '@' with one host.
        "postgres://u:pw@db.example/te@st",
        "postgres://u:p@ss@db.example/app",
      ]
    ) assert.doesNotThrow(() => checkConnectionUrl("url", url), url);
  });

  it("is refused, naming the field and never showing the password, when the driver would misread it", () => {
    const cases: [string, RegExp][] = [
      // One slash: the driver sends the rest, password included, as the database name.
      ["postgres:/postgres:SECRETpw@db.example:5432/test", /must start with postgres:\/\//],
      ["postgres:postgres:SECRETpw@db.example/test", /must start with postgres:\/\//],
      ["mysql://root:SECRETpw@db.example/test", /must start with postgres:\/\//],
      // Unencoded '/', '?', '#' or '%' in the password.
      ["postgres://u:SECRET/pw@db.example/test", /not a valid URL: percent-encode/],
      ["postgres://u:SECRET?pw@db.example/test", /not a valid URL: percent-encode/],
      ["postgres://u:SECRET#pw@db.example/test", /not a valid URL: percent-encode/],
      ["postgres://u:SECRET%zzpw@db.example/test", /not a valid URL: percent-encode/],
      // One that starts with digits reads as a port, and the rest as the database.
      ["postgres://u:12/SECRETpw=x@db.example/test", /'@' after its host: percent-encode/],
      ["postgres://u:12?SECRETpw@db.example/test", /'@' after its host: percent-encode/],
      // Several hosts: the driver splits at the first '@', so part of the password is a host.
      ["postgres://u:SECRET@pw@h1,h2/test", /several '@' before its hosts: percent-encode/],
    ];
    for (const [url, problem] of cases) {
      assert.throws(() => checkConnectionUrl("DATABASE_URL", url), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError, url);
        assert.equal(err.field, "DATABASE_URL");
        assert.match(err.message, problem, url);
        assert.doesNotMatch(err.message, /SECRET|pw@/, `the password shows in ${err.message}`);
        return true;
      });
    }
  });

  it("is checked when a PostgresStore opens its pool, before anything connects", () => {
    assert.throws(
      () => new PostgresStore({ url: "postgres:/u:SECRETpw@db.example/test" }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "url",
    );
    assert.throws(
      () =>
        new PostgresStore({
          url: "postgres://db.example/test",
          listenUrl: "postgres://u:SECRET/pw@db.example/test",
        }),
      (err: unknown) => err instanceof InvalidArgumentError && err.field === "listenUrl",
    );
  });
});
