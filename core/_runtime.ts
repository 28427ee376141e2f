/**
 * Which runtime runs this code, decided in this one place (as Hono's
 * `getRuntimeKey()`), and how each runtime is asked to run a TypeScript file.
 *
 * @module
 */

/** The three runtimes Herald runs on. */
export type RuntimeKey = "deno" | "bun" | "node";

interface RuntimeGlobals {
  readonly Deno?: { readonly version: { readonly deno: string } };
  readonly Bun?: { readonly version: string };
  readonly process?: { readonly versions?: { readonly node?: string } };
}

/** The runtime executing this code. */
export function runtimeKey(): RuntimeKey {
  const g = globalThis as RuntimeGlobals;
  return g.Deno ? "deno" : g.Bun ? "bun" : "node";
}

/** The runtime and its version, e.g. `node 24.1.0`. */
export function runtimeVersion(): string {
  const g = globalThis as RuntimeGlobals;
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${g.process?.versions?.node ?? "?"}`;
}

/**
 * The arguments that make `runtime`'s executable run the TypeScript file
 * `script`, with `v8Flags` (e.g. `--max-semi-space-size=2`) where each
 * runtime takes them: Deno in one `--v8-flags=`, Node before the script.
 * Bun runs on JavaScriptCore and has none.
 */
export function scriptArgv(
  runtime: RuntimeKey,
  script: string,
  args: readonly string[],
  v8Flags: readonly string[] = [],
): string[] {
  if (runtime === "deno") {
    const flags = v8Flags.length > 0 ? [`--v8-flags=${v8Flags.join(",")}`] : [];
    return ["run", "-A", ...flags, script, ...args];
  }
  if (runtime === "bun") {
    if (v8Flags.length > 0) throw new Error("Bun has no V8: it takes no V8 flags");
    return ["run", script, ...args];
  }
  return [...v8Flags, script, ...args];
}
