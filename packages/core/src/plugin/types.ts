/**
 * The plugin contract: what a third-party package exports.
 */
import type { Container, ContainerModule } from 'inversify';
import type { Middleware } from '../pipeline/types.js';

/**
 * A named unit of resolver behaviour. Everything is optional except the name:
 * a plugin may only contribute services (a cache store) and no middleware, or
 * only middleware.
 *
 * The resolver, for each plugin in the order of its `plugins` list:
 * 1. loads `module` into the resolver's container (synchronously: do async
 *    setup in `start`);
 * 2. once every module is loaded, calls `middleware(container)` (so a plugin
 *    may use services bound by plugins listed after it) and puts the result in
 *    the chain at the plugin's position;
 * 3. on `resolver.start()`, awaits `start(container)` in list order, and on
 *    `resolver.stop()`, awaits `stop(container)` in reverse order.
 *
 * @example
 * export default function whoami(options: { ttl?: number } = {}): HeimdallPlugin {
 *   const ttl = options.ttl ?? 0;
 *   return { name: 'whoami', middleware: () => (ctx) => ctx.answer([...]) };
 * }
 */
export interface HeimdallPlugin {
  /** Unique in a resolver: `'cache'`, `'@acme/geo'`. Used in logs, errors and metrics. */
  readonly name: string;
  /** Bindings this plugin contributes: its services, under the tokens it exports. */
  readonly module?: ContainerModule;
  /** Builds this plugin's middleware, once, at resolver build time. Return null to stay out of the chain. */
  middleware?(container: Container): Middleware | null | undefined;
  /** Async setup (load lists, open pools). Runs in chain order before sockets are bound. */
  start?(container: Container): void | Promise<void>;
  /** Teardown (flush, close). Runs in reverse chain order after in-flight queries drained. */
  stop?(container: Container): void | Promise<void>;
}

/**
 * What a plugin package default-exports: a function from options (validated,
 * with defaults) to a plugin. It must throw `ConfigError` with the field path
 * (`geo.database: must be a file path`) on bad options.
 */
export type PluginFactory<Options = any> = (options: Options) => HeimdallPlugin;

/** One entry of a config file's `plugins` list. */
export interface PluginSpec {
  /** Package name (`@acme/heimdall-geo`) or a path (`./plugins/geo.js`, resolved from `baseDir`). */
  readonly use: string;
  /** Passed to the factory as is. */
  readonly options?: unknown;
}

/**
 * Narrows `value` to a {@link HeimdallPlugin}, checking shape at runtime
 * (useful for values coming from dynamically imported code).
 */
export function isHeimdallPlugin(value: unknown): value is HeimdallPlugin {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  if (typeof p.name !== 'string' || p.name.length === 0) return false;
  for (const k of ['middleware', 'start', 'stop'] as const) {
    if (p[k] !== undefined && typeof p[k] !== 'function') return false;
  }
  if (p.module !== undefined && (typeof p.module !== 'object' || p.module === null || typeof (p.module as { load?: unknown }).load !== 'function')) return false;
  return true;
}
