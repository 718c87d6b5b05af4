/**
 * @heimdall/plugin-cache — L1 in-memory cache of wire-format responses
 * (RFC 2308 negative caching, prefetch, RFC 8767 serve-stale, tiers below
 * it through core's CACHE_TIERS). Other packages reach it through core's
 * contracts: CACHE_CONTROL, ADMIN_ACTIONS, CACHE_RESULT.
 */
export type { CacheStatsResult } from './control.js';
export type { CacheOptions, CacheOptionsInput, CachePrefetchOptions, CacheServeStaleOptions, EvictionPolicyName } from './options.js';
export { cache, cache as default } from './plugin.js';
