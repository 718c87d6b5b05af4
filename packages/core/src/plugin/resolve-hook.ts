/**
 * Module resolution hook (node:module `register`) that makes every
 * `@heimdall/*` import, from wherever it comes (a plugin installed next to
 * the config or in a plugins folder), resolve to the host's own copy: one
 * `@heimdall/core` per process, so DI tokens, state keys and error classes
 * are shared. Registered by {@link shareHostPackages}.
 */
interface ResolveContext {
  parentURL?: string;
  conditions: string[];
  importAttributes?: Record<string, string>;
}
type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string; format?: string | null; shortCircuit?: boolean }>;

let hostURL: string | undefined;

/** Receives the host's URL (a file inside the app that depends on @heimdall/*). */
export function initialize(data: { parentURL: string }): void {
  hostURL = data.parentURL;
}

/** Resolves `@heimdall/*` from the host; everything else as usual. */
export async function resolve(specifier: string, context: ResolveContext, next: NextResolve) {
  if (hostURL !== undefined && specifier.startsWith('@heimdall/')) {
    try {
      return await next(specifier, { ...context, parentURL: hostURL });
    } catch {
      // not a package the host has: resolve it where it is imported
    }
  }
  return next(specifier, context);
}
