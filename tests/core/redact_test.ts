import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { describeError, redact, redactUrl } from "../../core/_redact.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

describe("redact", () => {
  it("cuts URLs to scheme and host", () => {
    const secret = "T000/B000/XXXXsecretXXXX";
    const out = redact(`POST https://hooks.slack.com/services/${secret} failed`);
    assert.equal(out.includes(secret), false);
    assert.match(out, /https:\/\/hooks\.slack\.com/);
    assert.equal(redactUrl("not a url"), "[redacted url]");
  });
  it("masks key=value credentials, bearer tokens and signing secrets", () => {
    const out = redact(
      "api_key=abc123def token: zzz999 Bearer eyJhbGciOi whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    );
    for (const s of ["abc123def", "zzz999", "eyJhbGciOi", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]) {
      assert.equal(out.includes(s), false, `${s} leaked in ${out}`);
    }
  });
  it("masks planted secrets and caps length", () => {
    const out = redact("x".repeat(2000) + "hunter2hunter2", ["hunter2hunter2"]);
    assert.ok(out.length <= 500);
    assert.equal(redact("pw hunter2hunter2", ["hunter2hunter2"]), "pw [redacted]");
  });
  it("never leaves what Postgres text refuses: NUL, or a surrogate pair cut in half", () => {
    const nul = redact("a\u0000b");
    assert.equal(nul.includes("\u0000"), false);
    const cut = redact(`${"x".repeat(498)}\u{1F600}tail`);
    assert.ok(cut.isWellFormed());
    assert.ok(cut.length <= 500);
    assert.ok(redact("lone \uD800 half").isWellFormed());
  });

  it("describes non-errors", () => {
    assert.equal(describeError(42), "non-error thrown: 42");
    assert.equal(describeError(new TypeError("boom")), "TypeError: boom");
  });
});
