// Builds the npm package: compiled ESM JavaScript and .d.ts files in dist/,
// from the same sources Deno and Bun run directly (Node refuses to strip
// types under node_modules). Run by `npm run build` and by `prepack`.
import { execFileSync } from "node:child_process";
import { copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

rmSync("dist", { recursive: true, force: true });
execFileSync("node_modules/.bin/tsc", ["-p", "tsconfig.build.json"], { stdio: "inherit" });

// tsc rewrites `.ts` specifiers in the JavaScript it emits but not in the
// declarations; point those at the emitted `.js` too, for every consumer's
// module resolution.
const RELATIVE_TS = /(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\.ts\2/g;
for (const entry of readdirSync("dist", { recursive: true })) {
  const file = join("dist", String(entry));
  if (!file.endsWith(".d.ts")) continue;
  const text = readFileSync(file, "utf8");
  const fixed = text.replace(RELATIVE_TS, "$1$2$3.js$2");
  if (fixed !== text) writeFileSync(file, fixed);
}

// The embedded database's prepared data directory, next to the module that
// unpacks it (without it a first open falls back to PGlite's slow initdb).
copyFileSync("embedded/template.tar.gz", "dist/embedded/template.tar.gz");
