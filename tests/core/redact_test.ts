import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { describeError, redact, redactDestination, redactUrl } from "../../core/_redact.ts";
import { CHANNEL_WIDE, destinationKey } from "../../core/destination_key.ts";
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

  it("masks credentials by any name ending in a credential word, and an Authorization's value", () => {
    const planted = {
      client_secret: "CsPlanted0001",
      refresh_token: "RtPlanted0002",
      access_token: "AtPlanted0003",
      auth_token: "AuPlanted0004",
      x_api_key: "XkPlanted0005",
      accessToken: "CtPlanted0006",
      privateKey: "PkPlanted0007",
      "x-api-key": "XhPlanted0008",
    };
    const json = redact(`refresh failed: ${JSON.stringify(planted)}`);
    const pairs = redact(Object.entries(planted).map(([k, v]) => `${k}=${v}`).join("&"));
    const colons = redact(Object.entries(planted).map(([k, v]) => `${k}: ${v}`).join(", "));
    for (const secret of Object.values(planted)) {
      for (const out of [json, pairs, colons]) {
        assert.equal(out.includes(secret), false, `${secret} leaked in ${out}`);
      }
    }
    assert.match(json, /"client_secret":"\[redacted\]"/, "the name stays, to say what was masked");
    const spaced = redact(`{"api_key": "AkPlanted0016", 'Authorization': 'Token TkPlanted0017'}`);
    for (const s of ["AkPlanted0016", "TkPlanted0017"]) {
      assert.equal(spaced.includes(s), false, spaced);
    }
    const auth = redact(
      "Authorization: Token TkPlanted0009 Proxy-Authorization: Digest DgPlanted10",
    );
    for (const s of ["TkPlanted0009", "DgPlanted10"]) assert.equal(auth.includes(s), false, auth);
  });
  it("masks a quoted name's value when it is cut off, or bare and token-like", () => {
    const cases = [
      `{"token": "eyJhbGciOiJIUzI1NiJ9PlantedCut`, // an answer cut inside the value
      `{'api_key': sk-abc123def456}`,
      `"password": hunter2hunter2`,
    ];
    for (const text of cases) {
      const out = redact(text);
      for (
        const secret of ["eyJhbGciOiJIUzI1NiJ9PlantedCut", "sk-abc123def456", "hunter2hunter2"]
      ) {
        assert.equal(out.includes(secret), false, `${secret} leaked in ${out}`);
      }
    }
  });
  it("masks tokens known by their prefix", () => {
    const tokens = [
      "xoxb-1234-5678-PlantedSlackBot",
      "sk_live_PlantedStripe0011",
      "ghp_PlantedGitHubToken0012",
      "github_pat_Planted_0013",
      "SG.PlantedSendGrid.Key0014",
    ];
    const out = redact(`provider said: ${tokens.join(" / ")}`);
    for (const t of tokens) assert.equal(out.includes(t), false, `${t} leaked in ${out}`);
  });
  it("leaves the words of ordinary errors alone", () => {
    for (
      const text of [
        'duplicate key value violates unique constraint "routes_pkey"',
        "Key (id)=(42) already exists.",
        "invalid token provided; HTTP 401",
        "status_code: 503",
        "Invalid 'HERALD_DASHBOARD_TOKEN': must be at least 16 characters",
        `Invalid 'secret': must be "whsec_" followed by base64`,
      ]
    ) assert.equal(redact(text), text);
  });
  it("shows a destination key whole: an origin, maybe with its 16-hex-digit tag", () => {
    for (const key of ["https://hooks.slack.com#a15c92b9e06a97d1", "http://127.0.0.1:18104"]) {
      assert.equal(redact(`destination opened: ${key}`), `destination opened: ${key}`);
      assert.equal(redactUrl(key), key);
    }
    // Anything more than that is cut as any URL, whatever it looks like before parsing.
    assert.equal(redactUrl("https://h.example#access_token=x"), "https://h.example/[redacted]");
    assert.equal(redactUrl("https://u:pw@h.example"), "https://h.example/[redacted]");
    for (
      const encoded of [
        "https://bob%3AS3cretPass%40api.example.com",
        "https://hooks.slack.com%2Fservices%2FT0%2FB0%2FXyZSecretToken123",
      ]
    ) assert.equal(redactUrl(encoded), "[redacted url]");
  });
  it("cuts an http(s) URL written without its '//' as any other", () => {
    const out = redact("POST https:hooks.slack.com/services/T0/B0/PathPlanted0015 failed");
    assert.equal(out.includes("PathPlanted0015"), false, out);
    assert.match(out, /https:\/\/hooks\.slack\.com\/\[redacted\]/);
  });
});

describe("redactDestination", () => {
  const token = "SECRETslackTOKEN123";
  it("cuts every spelling of an http(s) URL that a channel would send to", () => {
    for (
      const destination of [
        `https://hooks.slack.com/services/T0/B0/${token}`,
        `https:hooks.slack.com/services/T0/B0/${token}`,
        `https:/hooks.slack.com/services/T0/B0/${token}`,
        `https:\\\\hooks.slack.com\\services\\T0\\B0\\${token}`,
        `HTTPS://Hooks.Slack.com/services/T0/B0/${token}`,
        `https://hooks.slack.com/services/T0/B0\t/${token}`,
      ]
    ) {
      assert.equal(new URL(destination).host, "hooks.slack.com", destination);
      assert.equal(redactDestination(destination), "https://hooks.slack.com/[redacted]");
    }
  });
  it("masks whole what may be a URL without its scheme; shows addresses, numbers and chat ids", () => {
    assert.equal(redactDestination(`hooks.slack.com/services/T0/B0/${token}`), "[redacted]");
    for (const shown of ["ada@example.com", "+4915112345678", "-1001234567890", "@channel"]) {
      assert.equal(redactDestination(shown), shown);
    }
  });
  it("gives every spelling of one webhook URL its one key, never the channel's", () => {
    const url = `https://hooks.slack.com/services/T0/B0/${token}`;
    const key = destinationKey(url);
    assert.notEqual(key, CHANNEL_WIDE);
    const spellings = [
      url.replace("//", ""),
      url.replaceAll("/", "\\"),
      url.replace("https://hooks.slack.com", "HTTPS://Hooks.Slack.COM"),
    ];
    for (const spelling of spellings) assert.equal(destinationKey(spelling), key, spelling);
    assert.equal(destinationKey("https:example.com/hook"), "https://example.com");
    assert.equal(destinationKey("ada@example.com"), CHANNEL_WIDE);
  });
});

describe("describeError", () => {
  it("describes non-errors", () => {
    assert.equal(describeError(42), "non-error thrown: 42");
    assert.equal(describeError(new TypeError("boom")), "TypeError: boom");
  });
});
