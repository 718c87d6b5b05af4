/**
 * The `cache` plugin factory: binds the store under CACHE_STORE, builds the
 * middleware, registers the metrics and runs the expiry sweep between
 * `start` and `stop`.
 */
import { CLOCK, type Clock, type HeimdallPlugin, LOGGER, type Logger, METRICS, type Registry, systemClock, UPSTREAM, type Upstream } from '@heimdall/core';
import { ContainerModule } from 'inversify';
import { createCacheMiddleware } from './middleware.js';
import { type CacheOptions, resolveCacheOptions } from './options.js';
import { registerCacheMetrics } from './stats.js';
import { CACHE_STORE, CacheStore } from './store.js';

type Container = Parameters<NonNullable<HeimdallPlugin['start']>>[0];

const registered = new WeakSet<object>();

function optional<T>(container: Container, token: symbol): T | undefined {
  return container.isBound(token) ? container.get<T>(token) : undefined;
}

/**
 * The cache plugin. Options are validated now (a bad field throws
 * `ConfigError` naming it, e.g. `cache.maxTtl: must be an integer`).
 *
 * Place it after policy plugins (blocking, ACL) and before dedup and
 * upstream: `plugins: [blocking(...), cache({ prefetch: true }), dedup(), upstream(...)]`.
 *
 * @example
 * const resolver = createResolver({
 *   plugins: [cache({ maxEntries: 50_000, serveStale: { maxStaleAge: 86_400_000 } }), upstream({ servers: ['1.1.1.1'] })],
 * });
 */
export function cache(options: CacheOptions = {}): HeimdallPlugin {
  const resolved = resolveCacheOptions(options);
  return {
    name: 'cache',
    module: new ContainerModule((o) => {
      o.bind<CacheStore>(CACHE_STORE)
        .toDynamicValue((ctx) => new CacheStore(resolved, ctx.get<Clock>(CLOCK, { optional: true }) ?? systemClock))
        .inSingletonScope();
    }),
    middleware(container) {
      const store = container.get<CacheStore>(CACHE_STORE);
      const clock = optional<Clock>(container, CLOCK) ?? systemClock;
      const registry = optional<Registry>(container, METRICS);
      if (registry !== undefined && !registered.has(registry)) {
        registered.add(registry);
        registerCacheMetrics(
          registry,
          store.stats,
          () => store.size,
          () => store.bytes,
        );
      }
      const logger = optional<Logger>(container, LOGGER);
      return createCacheMiddleware(store, {
        clock,
        upstream: optional<Upstream>(container, UPSTREAM) ?? null,
        logger: logger?.child({ plugin: 'cache' }) ?? null,
      });
    },
    start(container) {
      container.get<CacheStore>(CACHE_STORE).startSweeping(optional<Clock>(container, CLOCK) ?? systemClock);
    },
    stop(container) {
      container.get<CacheStore>(CACHE_STORE).stopSweeping();
    },
  };
}

export default cache;
