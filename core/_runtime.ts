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

/** The arguments that make `runtime`'s executable run the TypeScript file `script`. */
export function scriptArgv(
  runtime: RuntimeKey,
  script: string,
  args: readonly string[],
): string[] {
  if (runtime === "deno") return ["run", "-A", script, ...args];
  if (runtime === "bun") return ["run", script, ...args];
  return [script, ...args];
}
