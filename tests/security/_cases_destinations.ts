/**
 * Hostile input, destinations: `enqueue` only checks their generic shape; the channels refuse
 * the rest at send time, which ends the route `failed` with a clear, secret-free `last_error`.
 * One row per destination.
 *
 * @module
 */
import { SECRET } from "./_hostile.ts";

/** [channel, destination (PORT is the live server's port), what last_error must say] */
export type DestinationCase = [channel: string, destination: string, lastError: RegExp];

/** Destinations the channels refuse when they send. */
export const DESTINATIONS: readonly DestinationCase[] = [
  ["webhook", `not a url ${SECRET}`, /not a valid absolute URL/],
  ["webhook", `//hooks.example.com/${SECRET}`, /not a valid absolute URL/],
  ["webhook", `/relative/${SECRET}`, /not a valid absolute URL/],
  ["webhook", `ftp://files.example.com/drop/${SECRET}`, /scheme "ftp:" is not http\(s\)/],
  ["webhook", "file:///etc/passwd", /scheme "file:" is not http\(s\)/],
  ["webhook", "javascript:alert(document.cookie)", /scheme "javascript:" is not http\(s\)/],
  ["webhook", "data:text/plain,hello", /scheme "data:" is not http\(s\)/],
  ["webhook", "gopher://127.0.0.1:6379/_FLUSHALL", /scheme "gopher:" is not http\(s\)/],
  ["webhook", `http://admin:${SECRET}@hooks.example.com/x`, /must not contain credentials/],
  ["webhook", `https://:${SECRET}@hooks.example.com/`, /must not contain credentials/],
  ["webhook", `https://${SECRET}@hooks.example.com/`, /must not contain credentials/],
  ["webhook", `http://127.0.0.1:PORT/${SECRET}`, /loopback address \(127\.0\.0\.1\)/],
  ["webhook", `http://localhost:PORT/${SECRET}`, /resolves to a loopback address/],
  ["webhook", "http://[::1]:PORT/", /loopback address \(::1\)/],
  ["webhook", "http://0.0.0.0:PORT/", /unspecified address/],
  ["webhook", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", /link-local/],
  ["webhook", "http://10.0.0.1/", /private address/],
  ["webhook", "http://100.64.0.1/", /carrier-grade NAT/],
  ["webhook", "http://0x7f.0.0.1:PORT/", /loopback/],
  ["webhook", "http://2130706433:PORT/", /loopback/],
  ["webhook", "http://0177.0.0.1:PORT/", /loopback/],
  ["webhook", "http://[::ffff:127.0.0.1]:PORT/", /loopback \(IPv4-mapped\)/],
  ["webhook", "http://１２７．０．０．１:PORT/", /loopback address \(127\.0\.0\.1\)/],
  ["webhook", "http://bücher.example/", /resolves to a private address/],
  ["webhook", "http://xn--80ak6aa92e.com/", /resolves to a private address/],
  ["webhook", "http://hooks.example.com:99999/", /not a valid absolute URL/],
  ["webhook", "http://[fe80::1%25eth0]/", /not a valid absolute URL/],
  ["webhook", "http://hooks.exa\tmple.com/", /resolves to a private address/],
  ["webhook", "http://hooks.example.com\\@127.0.0.1/", /resolves to a private address/],
  ["webhook", "http://127.0.0.1.nip.io/", /resolves to a private address/],
  ["webhook-https", `http://hooks.example.com/${SECRET}`, /is not https \(https-only mode\)/],
  [
    "slack",
    `https://hooks.slack.com.evil.internal/services/T0/B0/${SECRET}`,
    /slack: refused destination: host resolves to a private/,
  ],
  ["slack", `slack://general/${SECRET}`, /slack: the destination scheme "slack:"/],
  ["slack", "http://[::]/", /unspecified/],
  ["email", "not-an-address", /not a single e-mail address/],
  ["email", "ada@example.com\r\nBcc: everyone@example.com", /not a single e-mail address/],
  ["email", "Ada <ada@example.com>", /not a single e-mail address/],
  ["email", "a@example.com, b@example.com", /not a single e-mail address/],
  ["email", `"'; DROP TABLE notification_routes; --"@example.com`, /not a single e-mail address/],
  ["email", `${"a".repeat(250)}@example.com`, /not a single e-mail address/],
  ["sms", "5551234", /not an E\.164 phone number/],
  ["sms", "+0123456789", /not an E\.164 phone number/],
  ["sms", "+1 555 123 4567", /not an E\.164 phone number/],
  ["sms", "+15551234567; DROP TABLE x", /not an E\.164 phone number/],
  ["sms", "+1555123456789012345", /not an E\.164 phone number/],
  ["telegram", "@ab", /numeric chat id or an @channel username/],
  ["telegram", "chat-123", /numeric chat id or an @channel username/],
  ["telegram", "123456789012345678901", /numeric chat id or an @channel username/],
  ["telegram", "@channel/../../sendMessage", /numeric chat id or an @channel username/],
];
