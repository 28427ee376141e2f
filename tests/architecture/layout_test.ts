/**
 * The shape of the source tree (docs/ARCHITECTURE.md), checked: the rooms and
 * the one direction of imports between them (type-only imports included),
 * no import circle, at most four files at the root, no source file over 350
 * lines, and every public type defined in a public module.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { checkLeaks } from "../_helpers/leaks.ts";

checkLeaks();

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SOURCE_DIRS = [
  "core",
  "observe",
  "channels",
  "postgres",
  "embedded",
  "worker",
  "dashboard",
  "cli",
];

/**
 * Each file's layer: an import may only point to a lower layer, or within
 * its own room. core/ is the floor; observe/ (logging, metrics, tracing) and
 * channels/ sit on it; postgres/ and embedded/ may trace and log; the
 * contract (`store.ts`) sits above them; worker/ above store.ts; only cli/
 * (and mod.ts) import cli/.
 */
function layer(file: string): number {
  if (file.startsWith("core/")) return 0;
  if (/^(observe|channels)\//.test(file)) return 1;
  if (/^(postgres|embedded)\//.test(file)) return 2;
  if (file === "store.ts") return 3;
  if (file === "embedded.ts") return 4;
  if (file.startsWith("worker/")) return 4;
  if (file.startsWith("dashboard/")) return 4;
  if (file === "worker.ts") return 5;
  if (file.startsWith("cli/")) return 6;
  if (file === "mod.ts") return 7;
  throw new Error(`${file} is in no room`);
}

function room(file: string): string {
  return file.includes("/") ? file.slice(0, file.indexOf("/")) : file;
}

function sourceFiles(): string[] {
  const files = readdirSync(ROOT).filter((f) => f.endsWith(".ts"));
  for (const dir of SOURCE_DIRS) {
    for (const entry of readdirSync(join(ROOT, dir), { recursive: true })) {
      const path = join(dir, String(entry));
      if (path.endsWith(".ts") && statSync(join(ROOT, path)).isFile()) files.push(path);
    }
  }
  return files.sort();
}

/** Relative imports and re-exports of `file` (type-only ones included), as root-relative paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "") // doc comments hold example imports
    .replace(/^\s*\/\/.*$/gm, "");
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s*["'](\.[^"']+)["']/g)]
    .map((m) => m[1]!);
  const dynamic = [...text.matchAll(/import\(\s*["'](\.[^"']+)["']\s*\)/g)].map((m) => m[1]!);
  return [...specs, ...dynamic].map((spec) => normalize(join(dirname(file), spec)));
}

describe("the layout", () => {
  const files = sourceFiles();
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it("imports run one way: down the layers, or within a room", () => {
    const upward: string[] = [];
    for (const [file, imports] of graph) {
      for (const target of imports) {
        if (room(target) === room(file)) continue;
        if (layer(target) >= layer(file)) upward.push(`${file} -> ${target}`);
      }
    }
    assert.deepEqual(upward, []);
  });

  it("core/ imports nothing else of Herald's; postgres/ never imports store.ts", () => {
    const wrong = [...graph].flatMap(([file, imports]) =>
      imports.filter((t) =>
        (file.startsWith("core/") && !t.startsWith("core/")) ||
        (file.startsWith("postgres/") && t === "store.ts") ||
        (file.startsWith("channels/") && /^(store\.ts|postgres\/|worker)/.test(t))
      ).map((t) => `${file} -> ${t}`)
    );
    assert.deepEqual(wrong, []);
  });

  it("has no import circle, not even through type-only imports", () => {
    const state = new Map<string, "open" | "done">();
    const circles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") {
        circles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
        return;
      }
      state.set(file, "open");
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    assert.deepEqual(circles, []);
  });

  it("the root holds at most four source files", () => {
    const root = files.filter((f) => !f.includes("/"));
    assert.ok(root.length <= 4, `root files: ${root.join(", ")}`);
  });

  it("no source file is over 350 lines", () => {
    const long = files
      .map((f) => [f, readFileSync(join(ROOT, f), "utf8").split("\n").length] as const)
      .filter(([, n]) => n > 351)
      .map(([f, n]) => `${f}: ${n}`);
    assert.deepEqual(long, []);
  });

  it("every type an entry point exports is defined in a public module", () => {
    const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
    const entries = Object.values(deno.exports as Record<string, string>).map((p) => normalize(p));
    const privateSources: string[] = [];
    for (const entry of entries) {
      const text = readFileSync(join(ROOT, entry), "utf8");
      for (const m of text.matchAll(/export type (?:\{[^}]*\}|\*) from\s*["'](\.[^"']+)["']/g)) {
        const target = normalize(join(dirname(entry), m[1]!));
        if (/(^|\/)_[^/]*$/.test(target)) privateSources.push(`${entry} <- ${target}`);
      }
    }
    assert.deepEqual(privateSources, []);
  });

  it("the npm exports match the JSR exports entry for entry", () => {
    const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    for (const [name, source] of Object.entries(deno.exports as Record<string, string>)) {
      const built = (pkg.exports[name] as { default: string } | undefined)?.default;
      assert.equal(
        relative(".", built ?? "").replace(/^dist\//, "").replace(/\.js$/, ".ts"),
        normalize(source),
        name,
      );
    }
  });
});
