/**
 * The published shapes: deno.json and package.json agree on the entry
 * points, and the npm tarball installs into a fresh project where Node and
 * Bun import it, TypeScript type-checks against it, and its `herald` runs.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "../_helpers/spawn.ts";
import { VERSION } from "../../core/version.ts";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

describe("package metadata", () => {
  it("deno.json and package.json export the same entry points", () => {
    assert.deepEqual(Object.keys(pkg.exports).sort(), Object.keys(deno.exports).sort());
    for (const [key, source] of Object.entries(deno.exports as Record<string, string>)) {
      const built = source.replace(/^\.\//, "./dist/").replace(/\.ts$/, "");
      assert.deepEqual(pkg.exports[key], { types: `${built}.d.ts`, default: `${built}.js` }, key);
    }
  });

  it("names, versions, engines and the bin agree", () => {
    assert.equal(pkg.name, deno.name);
    assert.equal(pkg.version, deno.version);
    assert.equal(pkg.version, VERSION);
    assert.equal(pkg.engines.node, ">=22");
    assert.equal(pkg.bin.herald, "./dist/cli/bin.js");
    assert.equal(pkg.type, "module");
    assert.equal(pkg.scripts.prepack, "npm run build");
  });
});

// Packing builds the package and installing it takes a while, and the test
// drives Node and Bun itself: it runs once, under the Node runner.
describe(
  "the npm tarball",
  { skip: RUNTIME !== "node" && "runs under the Node runner only" },
  () => {
    it("installs into a fresh project; Node and Bun import it; tsc checks it; herald --help runs", () => {
      const bin = join(ROOT, "node_modules", ".bin");
      const work = mkdtempSync(join(tmpdir(), "herald-pack-"));
      const env = {
        ...process.env,
        PATH: `${bin}:${process.env["PATH"]}`,
        npm_config_update_notifier: "false",
      };
      try {
        const packed = execFileSync("npm", ["pack", "--silent", "--pack-destination", work], {
          cwd: ROOT,
          env,
          encoding: "utf8",
        }).trim().split("\n").pop()!;
        const tarball = resolve(work, packed);
        assert.ok(existsSync(tarball), `npm pack made ${tarball}`);
        const listing = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" });
        assert.match(listing, /package\/dist\/mod\.js/);
        assert.match(listing, /package\/dist\/mod\.d\.ts/);
        assert.doesNotMatch(listing, /package\/tests\//, "no tests in the package");
        assert.doesNotMatch(
          listing,
          /package\/mod\.ts/,
          "no TypeScript sources for Node to refuse",
        );

        const app = join(work, "app");
        execFileSync("mkdir", ["-p", app]);
        writeFileSync(
          join(app, "package.json"),
          JSON.stringify({ name: "app", private: true, type: "module" }),
        );
        execFileSync("npm", [
          "install",
          "--prefer-offline",
          "--no-audit",
          "--no-fund",
          "--silent",
          tarball,
        ], {
          cwd: app,
          env,
        });

        const probe = `
        import { Worker, PostgresStore, VERSION, webhookChannel, InvalidArgumentError } from "@herald/herald";
        import { verifyWebhook } from "@herald/herald/channels/webhook-signature";
        import { Metrics } from "@herald/herald/metrics";
        let refused = false;
        try { new Worker({ store: {}, channels: {} }); } catch (e) { refused = e instanceof InvalidArgumentError; }
        console.log(JSON.stringify({
          version: VERSION, refused,
          types: [typeof Worker, typeof PostgresStore, typeof webhookChannel, typeof verifyWebhook, typeof Metrics],
        }));`;
        writeFileSync(join(app, "probe.mjs"), probe);
        const expected = {
          version: VERSION,
          refused: true,
          types: ["function", "function", "function", "function", "function"],
        };
        for (const runtime of ["node", "bun"]) {
          const out = execFileSync(join(bin, runtime), ["probe.mjs"], {
            cwd: app,
            env,
            encoding: "utf8",
          });
          assert.deepEqual(JSON.parse(out), expected, runtime);
        }

        writeFileSync(
          join(app, "consumer.ts"),
          `import { Worker, logChannel, type WorkerOptions, type Route } from "@herald/herald";
         import type { Store } from "@herald/herald/store";
         export function make(store: Store): Worker {
           const options: WorkerOptions = { store, channels: { log: logChannel() }, concurrency: 2 };
           return new Worker(options);
         }
         export const kind = (r: Route): string => r.kind;\n`,
        );
        execFileSync(join(bin, "tsc"), [
          "--noEmit",
          "--strict",
          "--module",
          "nodenext",
          "--moduleResolution",
          "nodenext",
          "--target",
          "es2023",
          "--types",
          "node",
          "--typeRoots",
          join(ROOT, "node_modules", "@types"),
          "--skipLibCheck",
          "consumer.ts",
        ], { cwd: app, env, encoding: "utf8" });

        const help = execFileSync(join(app, "node_modules", ".bin", "herald"), ["--help"], {
          cwd: app,
          env,
          encoding: "utf8",
        });
        assert.match(help, /^herald 0\.1\.0/);
        assert.match(help, /Commands:/);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  },
);
