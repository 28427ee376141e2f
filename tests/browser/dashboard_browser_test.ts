/**
 * The dashboard in a real browser (Debian's chromium, driven by
 * playwright-core), served by `herald dashboard` on each runtime in turn:
 * the overview's numbers equal SQL counts, a filter narrows the list, a
 * failed route shows its attempts, clicking retry re-queues it and a worker
 * sends it, a `<script>` payload stays text, a forged cross-site POST is
 * refused, and a non-loopback bind refuses a request without the token.
 * A screenshot of each page lands in test-output/dashboard/ and is checked
 * not to be blank.
 *
 * Driven from Node (playwright-core's home runtime); under Deno and Bun the
 * file skips, since the Node run already serves the dashboard from all three.
 * Without chromium it skips saying so, unless HERALD_REQUIRE_BROWSER=1
 * (`.ci/run` installs chromium and sets it).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { webhookChannel } from "../../channels/mod.ts";
import { Worker } from "../../worker.ts";
import { silentLogger } from "../../observe/logger.ts";
import { DATABASE_URL, freshStore } from "../_helpers/pg.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { collect, RUNTIME, waitForLine } from "../_helpers/spawn.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHROMIUM = process.env["HERALD_CHROMIUM"] ?? "/usr/bin/chromium";
const OUT = `${ROOT}test-output/dashboard`;
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN = "browser-test-token-0123456789";
const RUNTIMES = {
  node: [`${ROOT}node_modules/.bin/node`, "mod.ts"],
  deno: [`${ROOT}node_modules/.bin/deno`, "run", "-A", "mod.ts"],
  bun: [`${ROOT}node_modules/.bin/bun`, "run", "mod.ts"],
} as const;

const skip = RUNTIME !== "node"
  ? "driven from Node, which serves the dashboard from all three runtimes"
  : !existsSync(CHROMIUM) && process.env["HERALD_REQUIRE_BROWSER"] !== "1"
  ? `no chromium at ${CHROMIUM} (apt-get install chromium)`
  : false;

// deno-lint-ignore no-explicit-any
type Any = any;

describe("the dashboard in chromium, served by each runtime", { skip }, () => {
  let env: Awaited<ReturnType<typeof freshStore>>;
  let receiver: TestServer;
  let attacker: TestServer;
  let worker: Worker;
  let browser: Any;
  let healthy = false;
  const children: ChildProcess[] = [];

  /** Starts `herald dashboard` on `runtime`; resolves with its address. */
  async function serveOn(
    runtime: keyof typeof RUNTIMES,
    extra: string[] = [],
    vars: Record<string, string> = {},
  ): Promise<string> {
    const [exe, ...argv] = RUNTIMES[runtime];
    const child = spawn(exe, [
      ...argv,
      "--schema",
      env.schema,
      "dashboard",
      "--port",
      "0",
      ...extra,
    ], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL, NO_COLOR: "1", ...vars },
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.push(child);
    const line = await waitForLine(child.stderr!, /dashboard at http/);
    return /http:\/\/\S+/.exec(line)![0].replace(/\/$/, "");
  }

  async function count(where: string): Promise<number> {
    const [row] = await env.sql.unsafe(
      `SELECT count(*)::int AS n FROM "${env.schema}".notification_routes WHERE ${where}`,
    );
    return row!["n"];
  }

  /** Saves a screenshot and checks it holds more than a blank page: many colours, much ink. */
  async function screenshot(page: Any, name: string): Promise<void> {
    const png: Uint8Array = await page.screenshot({ fullPage: true });
    writeFileSync(`${OUT}/${name}.png`, png);
    const probe = await browser.newPage();
    try {
      const stats = await probe.evaluate(async (b64: string) => {
        const blob = await (await fetch(`data:image/png;base64,${b64}`)).blob();
        const bitmap = await createImageBitmap(blob);
        const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        const g = canvas.getContext("2d") as Any;
        g.drawImage(bitmap, 0, 0);
        const data = g.getImageData(0, 0, bitmap.width, bitmap.height).data;
        const colours = new Set<number>();
        let ink = 0;
        for (let i = 0; i < data.length; i += 4) {
          colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
          if (data[i]! + data[i + 1]! + data[i + 2]! < 600) ink++;
        }
        return { colours: colours.size, ink: ink / (data.length / 4) };
      }, Buffer.from(png).toString("base64"));
      assert.ok(stats.colours > 16, `${name}: ${stats.colours} colours, a blank page has one`);
      assert.ok(stats.ink > 0.005, `${name}: ${(stats.ink * 100).toFixed(2)}% ink`);
    } finally {
      await probe.close();
    }
  }

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    env = await freshStore();
    await env.store.migrate();
    receiver = await startServer((req, res) => {
      res.writeHead(healthy || req.path === "/ok" ? 204 : 500).end("no");
    });
    const hostile = `<script>window.owned = 1</script><img src=x onerror="window.owned = 2">`;
    const routes = [
      ...Object.keys(RUNTIMES).map((_, i) => ({
        channel: "webhook",
        destination: `${receiver.url}/bad/${i}?token=s3cr3t-in-url`,
        maxAttempts: 1,
      })),
      { channel: "webhook", destination: `${receiver.url}/ok` },
      { channel: "webhook", destination: `${receiver.url}/ok` },
    ];
    await env.store.enqueue({ kind: "order.shipped", payload: { note: hostile } }, routes);
    await env.store.enqueue({ kind: "user.welcome" }, [
      {
        channel: "webhook",
        destination: `${receiver.url}/later`,
        deliverAt: new Date(Date.now() + 3_600_000),
      },
    ]);
    worker = new Worker({
      store: env.store,
      channels: { webhook: webhookChannel({ secret: SECRET, allowHosts: ["127.0.0.1"] }) },
      logger: silentLogger,
    });
    assert.equal(await worker.tick(), routes.length);
    // A page of another origin that posts a form to the dashboard, as a forger would.
    attacker = await startServer((req, res) => {
      const target = decodeURIComponent(req.path.slice(1));
      res.writeHead(200, { "content-type": "text/html" }).end(
        `<form id="f" method="post" action="${target}"><input name="csrf" value="guess"></form>` +
          `<script>document.getElementById("f").submit()</script>`,
      );
    });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const closed = new Promise((resolve) => child.once("close", resolve));
      child.kill("SIGTERM");
      await closed;
    }));
    await attacker?.close();
    await receiver?.close();
    await env?.cleanup();
  });

  for (const runtime of Object.keys(RUNTIMES) as (keyof typeof RUNTIMES)[]) {
    it(`served by ${runtime}: overview, filter, attempts, retry, escaping, CSRF`, async () => {
      const base = await serveOn(runtime);
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      try {
        await page.goto(`${base}/`);
        for (const status of ["queued", "sent", "failed", "cancelled", "poisoned"]) {
          const shown = await page.locator(`.card [data-status="${status}"]`).textContent();
          assert.equal(Number(shown), await count(`status = '${status}'`), `${runtime}: ${status}`);
        }
        await screenshot(page, `${runtime}-overview`);

        await page.goto(`${base}/routes`);
        const all = await page.locator("table.routes tbody tr").count();
        assert.equal(all, await count("true"));
        await page.selectOption("select[name=status]", "failed");
        await page.click("form.filters button[type=submit]");
        await page.waitForURL(/status=failed/);
        const failed = await page.locator("table.routes tbody tr").count();
        assert.equal(failed, await count("status = 'failed'"));
        assert.ok(failed < all, "the filter narrowed the list");
        await screenshot(page, `${runtime}-routes`);

        await page.locator("table.routes tbody tr a").first().click();
        await page.waitForURL(/\/routes\/[0-9a-f-]{36}$/);
        const id = page.url().split("/").pop()!;
        assert.equal(await page.locator("[data-testid=status]").textContent(), "failed");
        assert.ok(await page.locator("table.attempts tbody tr").count() >= 1, "its attempts");
        assert.match(await page.locator("table.attempts").textContent(), /500/);
        assert.match(
          await page.locator("[data-testid=payload]").textContent(),
          /<script>window\.owned/,
        );
        assert.equal(
          await page.evaluate(() => (globalThis as Any).owned),
          undefined,
          "no script ran",
        );
        assert.ok(!(await page.content()).includes("s3cr3t-in-url"), "the destination is redacted");
        await screenshot(page, `${runtime}-route`);

        // A form posted from a page of another origin (another port: the same site,
        // so the browser's Sec-Fetch-Site lets it through) without the CSRF
        // token the forger cannot read: refused, and nothing changes.
        const forged = await browser.newPage();
        const refused = forged.waitForResponse((r: Any) =>
          r.url().endsWith("/cancel") || r.url().endsWith("/retry")
        );
        await forged.goto(`${attacker.url}/${encodeURIComponent(`${base}/routes/${id}/retry`)}`);
        assert.equal((await refused).status(), 403);
        await forged.close();
        assert.equal(await count(`route_id = '${id}' AND status = 'failed'`), 1);

        await page.click("button:has-text('Retry now')");
        // The page drops ?done= from its address once shown: wait for the message itself.
        await page.locator(".flash").waitFor();
        assert.match(await page.locator(".flash").textContent(), /1 route\(s\) queued again/);
        assert.ok(!page.url().includes("done="), "the message is not kept in the address");
        assert.equal(await page.locator("[data-testid=status]").textContent(), "queued");
        healthy = true;
        try {
          assert.equal(await worker.tick(), 1, "a worker sends the retried route");
        } finally {
          healthy = false;
        }
        assert.equal((await env.store.getRoute(id))?.status, "sent");

        await page.goto(`${base}/destinations`);
        await screenshot(page, `${runtime}-destinations`);
      } finally {
        await page.close();
      }
    });
  }

  it("with JavaScript, the overview refreshes in place as the table changes", async () => {
    const base = await serveOn("node");
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/`);
      const before = Number(await page.locator('.card [data-status="queued"]').textContent());
      await page.evaluate(() => ((globalThis as Any).sameDocument = true));
      await env.store.enqueue({ kind: "late" }, [
        {
          channel: "webhook",
          destination: `${receiver.url}/later`,
          deliverAt: new Date(Date.now() + 3_600_000),
        },
      ]);
      // Waits on the page's own refresh (every 5 s), not on a timer of the test's.
      await page.waitForFunction(
        (n: number) =>
          Number(
            (globalThis as Any).document.querySelector('.card [data-status="queued"]')?.textContent,
          ) === n,
        before + 1,
      );
      assert.equal(await page.evaluate(() => (globalThis as Any).sameDocument), true, "no reload");
    } finally {
      await page.close();
    }
  });

  it("beyond loopback the token is required, and the CLI refuses a bind without one", async (t) => {
    const address = Object.values(networkInterfaces()).flat()
      .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
    if (address === undefined) return void t.skip("this machine has no non-loopback IPv4 address");
    const refused = spawn(RUNTIMES.node[0], [
      RUNTIMES.node[1],
      "--schema",
      env.schema,
      "dashboard",
      "--host",
      address,
    ], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL, HERALD_DASHBOARD_TOKEN: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = await collect(refused);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /HERALD_DASHBOARD_TOKEN/);

    const local = await serveOn("bun", ["--host", address], { HERALD_DASHBOARD_TOKEN: TOKEN });
    const page = await browser.newPage();
    try {
      const denied = await page.goto(`${local}/`);
      assert.equal(denied.status(), 401);
      await page.goto(`${local}/?token=${TOKEN}`);
      assert.equal(new URL(page.url()).search, "", "the token leaves the address bar");
      assert.equal(await page.locator("h1").textContent(), "Overview");
      const cookies = await page.context().cookies();
      assert.ok(cookies.some((c: Any) => c.name === "herald_dashboard" && c.httpOnly));
    } finally {
      await page.close();
    }
  });
});
