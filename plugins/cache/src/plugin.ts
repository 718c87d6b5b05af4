/**
 * The `cache` plugin: an in-memory L1 of wire-format answers in the plugin's
 * scope (store, tiers, middleware), `CACHE_CONTROL` and an `ADMIN_ACTIONS`
 * group for everyone else, and the expiry sweep between `start` and `stop`.
 */
import { ADMIN_ACTIONS, CACHE_CONTROL, definePlugin } from '@heimdall/core';
import { ContainerModule } from '@heimdall/core/di';
import { CacheAdmin, CacheControlService } from './control.js';
import { CacheMiddleware } from './middleware.js';
import { cacheOptionsSchema, cacheSettings } from './options.js';
import { CacheStore } from './store.js';
import { CacheTiers } from './tiers.js';

/**
 * The cache plugin. Options are validated at the call (a bad field throws
 * `ConfigError` naming it, e.g. `cache.maxTtl: must be an integer in 0..2147483647`).
 *
 * Place it after policy plugins (blocking, ACL) and before dedup and
 * upstream: `plugins: [blocking(...), cache({ prefetch: true }), dedup(), upstream(...)]`.
 *
 * @example
 * const resolver = createResolver({
 *   plugins: [cache({ maxEntries: 50_000, serveStale: { maxStaleAge: 86_400_000 } }), upstream({ servers: ['1.1.1.1'] })],
 * });
 */
export const cache = definePlugin({
  name: 'cache',
  description: 'In-memory cache of wire-format answers: RFC 2308 negative caching, prefetch, RFC 8767 serve-stale, tiers below it.',
  options: cacheOptionsSchema,
  setup: (o, { name }) => {
    cacheSettings(o, name); // the cross-field checks, at the factory call
    return {
      module: new ContainerModule(({ bind }) => {
        bind(CacheStore).toSelf();
        bind(CacheTiers).toSelf();
        bind(CacheMiddleware).toSelf();
        bind(CacheControlService).toSelf();
        bind(CacheAdmin).toSelf();
      }),
      provides: [
        { token: CACHE_CONTROL, use: CacheControlService },
        { token: ADMIN_ACTIONS, use: CacheAdmin },
      ],
      middleware: (scope) => scope.get(CacheMiddleware).handle,
      start: (scope) => scope.get(CacheStore).startSweeping(),
      stop: (scope) => scope.get(CacheStore).stopSweeping(),
    };
  },
});

export default cache;
