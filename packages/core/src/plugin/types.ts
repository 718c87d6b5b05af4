/**
 * The plugin contract: what the resolver consumes. Plugin packages build it
 * with {@link definePlugin}, which validates options against the plugin's
 * schema; this interface is what `createResolver` sees.
 */
import type { Container, ContainerModule, ServiceIdentifier } from 'inversify';
import type { TSchema } from '@sinclair/typebox';
import type { Middleware } from '../pipeline/types.js';

/** Exposes a service from a plugin's scope under a token of the resolver's container. */
export interface Provision {
  /** Token in the resolver's container (`UPSTREAM`, `ADMIN_ACTIONS`, your own). */
  readonly token: symbol;
  /** What to resolve in the plugin's scope (a class bound in its module, or a token). */
  readonly use: ServiceIdentifier;
  /**
   * Several plugins may provide the token (collected with `getAll`). Core's
   * `ADMIN_ACTIONS` and `CACHE_TIERS` are always multi. For a single token
   * provided twice, the higher `priority` wins, then the first plugin in chain order.
   */
  readonly multi?: boolean;
  /**
   * For a single token offered by several plugins: the highest wins (default 0).
   * A shared backend outranks a local one: Redis provides `STATE_STORE` at 10,
   * the disk tier at 0, so blocking's state is shared when both are on.
   */
  readonly priority?: number;
}

/**
 * A named unit of resolver behaviour, as `createResolver` consumes it.
 *
 * For each plugin, in the order of its `plugins` list, the resolver:
 * 1. makes the plugin's scope, a child container of the resolver's with
 *    `PLUGIN`, `PLUGIN_OPTIONS`, `PLUGIN_LOGGER` and `PLUGIN_METRICS` bound,
 *    and loads `module` into it (synchronously);
 * 2. binds each of `provides` in the resolver's container;
 * 3. once every plugin is loaded, calls `middleware(scope)` exactly once (so
 *    a plugin may use services provided by plugins listed after it) and puts
 *    the result in the chain at the plugin's position;
 * 4. on `start()`, awaits `start(scope)` in list order; on `stop()`,
 *    `stop(scope)` in reverse order.
 */
export interface HeimdallPlugin {
  /** Instance name, unique in a resolver (`cache`, `upstream-lan`, `@acme/geo`). Used in logs, metrics, admin paths. */
  readonly name: string;
  /** The plugin's own name, shared by its instances (defaults to `name`). */
  readonly kind?: string;
  /** Prefix of its metric names; default `heimdall_<name>_` (see `PluginDefinition.metricsPrefix`). */
  readonly metricsPrefix?: string;
  /** Validated options, bound as `PLUGIN_OPTIONS` in the plugin's scope. */
  readonly options?: unknown;
  /** Bindings of the plugin's own services, loaded into its scope. */
  readonly module?: ContainerModule;
  /** Services offered to the resolver and other plugins. */
  readonly provides?: readonly Provision[];
  /**
   * What the plugin is to the chain, when it is one of two kinds that must
   * see every query:
   * - `observer`: watches queries and answers and never answers itself
   *   (metrics, query log, stats);
   * - `admission`: decides whether a query is served at all (access control,
   *   rate limits).
   * Core answers CHAOS identity, AXFR/IXFR (REFUSED) and ANY (RFC 8482)
   * queries itself, right after the chain's leading run of observer and
   * admission plugins — so those count, log and decide for them too (as
   * CoreDNS's `acl` comes before `chaos`) — and before every other plugin.
   */
  readonly role?: 'observer' | 'admission';
  /** Builds this plugin's middleware, once. Return null to stay out of the chain. */
  middleware?(scope: Container): Middleware | null | undefined;
  /** Async setup (load lists, open pools). Runs in chain order before sockets are bound. */
  start?(scope: Container): void | Promise<void>;
  /** Teardown (flush, close). Runs in reverse chain order after in-flight queries drained. */
  stop?(scope: Container): void | Promise<void>;
  /**
   * Preflight for `heimdall --check`: problems a start would hit (a missing
   * required list file, an unreadable certificate), as messages naming the
   * option path. Must not bind sockets or change state.
   */
  check?(): Promise<readonly string[]> | readonly string[];
}

/** How to make one instance of a plugin. */
export interface InstanceOptions {
  /** Instance name (default: the plugin's name). Two instances of one plugin need different names. */
  readonly name?: string;
  /** Where the options live in a config, for error messages (default: the instance name). */
  readonly path?: string;
}

/**
 * What a plugin package default-exports: options in, plugin out. Made by
 * {@link definePlugin}, which attaches the plugin's name and option schema
 * (the app composes its published JSON Schema from them).
 */
export interface PluginFactory<Input = any> {
  (options?: Input, instance?: InstanceOptions): HeimdallPlugin;
  /** The plugin's name (`cache`). */
  readonly pluginName?: string;
  /** The options schema (TypeBox, i.e. JSON Schema). */
  readonly schema?: TSchema;
  /** One line about the plugin. */
  readonly description?: string;
}

/** One entry of a config file's `plugins` list. */
export interface PluginSpec {
  /** Package name (`@acme/heimdall-geo`) or a path (`./plugins/geo.js`, resolved from `baseDir`). */
  readonly use: string;
  /** Instance name; default the plugin's own. */
  readonly name?: string;
  /** Validated by the plugin's schema. */
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
  for (const k of ['middleware', 'start', 'stop', 'check'] as const) {
    if (p[k] !== undefined && typeof p[k] !== 'function') return false;
  }
  if (p.module !== undefined && (typeof p.module !== 'object' || p.module === null || typeof (p.module as { load?: unknown }).load !== 'function'))
    return false;
  if (p.provides !== undefined && !Array.isArray(p.provides)) return false;
  return true;
}
