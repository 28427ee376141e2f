/**
 * Hostile input, channel and store configuration: one row per bad option.
 *
 * @module
 */
import { webhookChannel } from "../../channels/webhook.ts";
import { slackChannel } from "../../channels/slack.ts";
import { emailChannel } from "../../channels/email.ts";
import { smsChannel } from "../../channels/sms.ts";
import { telegramChannel } from "../../channels/telegram.ts";
import { PostgresStore } from "../../store.ts";
import { type Any, type Refusal, SECRET, SID } from "./_hostile.ts";

/** Bad channel and store options, each refused at construction naming the option. */
export const CONFIG: readonly Refusal[] = [
  {
    name: "webhook secret not whsec_/base64",
    field: "secret",
    run: () => webhookChannel({ secret: "whsec_!!!" }),
  },
  {
    name: "webhook allowAddresses bad CIDR",
    field: "allowAddresses",
    run: () => webhookChannel({ allowAddresses: ["10.0.0.0/99"] }),
  },
  {
    name: "webhook allowAddresses a host name",
    field: "allowAddresses",
    run: () => webhookChannel({ allowAddresses: ["example.com"] }),
  },
  { name: "webhook timeoutMs 0", field: "timeoutMs", run: () => webhookChannel({ timeoutMs: 0 }) },
  {
    name: "slack timeoutMs NaN",
    field: "timeoutMs",
    run: () => slackChannel({ timeoutMs: Number.NaN }),
  },
  {
    name: "email provider unknown",
    field: "provider",
    run: () => emailChannel({ provider: "mailgun" as Any, apiKey: "k", from: "a@example.com" }),
  },
  {
    name: "email apiKey blank",
    field: "apiKey",
    run: () => emailChannel({ provider: "resend", apiKey: " ", from: "a@example.com" }),
  },
  {
    name: "email apiKey pasted with a line break (every send would fail, retried for ever)",
    field: "apiKey",
    run: () =>
      emailChannel({ provider: "resend", apiKey: `re_${SECRET}\r\nX: y`, from: "a@example.com" }),
  },
  {
    name: "email from with CRLF (header injection)",
    field: "from",
    run: () =>
      emailChannel({
        provider: "resend",
        apiKey: "k",
        from: "a@example.com\r\nBcc: all@example.com",
      }),
  },
  {
    name: "email baseUrl with credentials",
    field: "baseUrl",
    run: () =>
      emailChannel({
        provider: "resend",
        apiKey: "k",
        from: "a@example.com",
        baseUrl: `https://u:${SECRET}@api.example.com`,
      }),
  },
  {
    name: "email baseUrl non-http scheme carrying credentials",
    field: "baseUrl",
    run: () =>
      emailChannel({
        provider: "resend",
        apiKey: "k",
        from: "a@example.com",
        baseUrl: `ftp://u:${SECRET}@api.example.com`,
      }),
    message: new RegExp(`^((?!${SECRET}).)*$`, "s"),
  },
  {
    name: "sms accountSid malformed",
    field: "accountSid",
    run: () => smsChannel({ accountSid: "AC123", authToken: "t", from: "+15005550006" }),
  },
  {
    name: "sms authToken missing",
    field: "authToken",
    run: () => smsChannel({ accountSid: SID, authToken: "", from: "+15005550006" }),
  },
  {
    name: "sms authToken outside Latin-1 (btoa would throw a DOMException)",
    field: "authToken",
    run: () => smsChannel({ accountSid: SID, authToken: "tök€n", from: "+15005550006" }),
  },
  {
    name: "sms apiKeySid with a space",
    field: "apiKeySid",
    run: () =>
      smsChannel({ accountSid: SID, apiKeySid: "SK 1", authToken: "t", from: "+15005550006" }),
  },
  {
    name: "sms baseUrl with a query",
    field: "baseUrl",
    run: () =>
      smsChannel({
        accountSid: SID,
        authToken: "t",
        from: "+1",
        baseUrl: "https://x.example/?a=1",
      }),
  },
  {
    name: "telegram botToken malformed",
    field: "botToken",
    run: () => telegramChannel({ botToken: `bot ${SECRET}` }),
  },
  {
    // Signing would be off without a word: the option is `secret`.
    name: "webhook secret misspelt as secrets",
    field: "secrets",
    run: () => webhookChannel({ secrets: `whsec_${SECRET}` } as Any),
    message: /did you mean 'secret'\?/,
  },
  {
    name: "slack allowHosts misspelt",
    field: "allowHost",
    run: () => slackChannel({ allowHost: ["127.0.0.1"] } as Any),
    message: /did you mean 'allowHosts'\?/,
  },
  {
    name: "email option unknown",
    field: "replyTo",
    run: () =>
      emailChannel({ provider: "resend", apiKey: "k", from: "a@example.com", replyTo: "b" } as Any),
    message: /is not an option of emailChannel/,
  },
  {
    name: "sms authToken in the wrong case",
    field: "authtoken",
    run: () => smsChannel({ accountSid: SID, authtoken: SECRET, from: "+1" } as Any),
    message: /did you mean 'authToken'\?/,
  },
  {
    // The store would quietly use the schema `herald`.
    name: "PostgresStore schema misspelt",
    field: "shema",
    run: () => new PostgresStore({ url: "postgres://db.example/app", shema: "tenant_a" } as Any),
    message: /did you mean 'schema'\?/,
  },
  {
    name: "telegram apiUrl javascript:",
    field: "apiUrl",
    run: () => telegramChannel({ botToken: "1:a", apiUrl: "javascript:alert(1)" }),
  },
];
