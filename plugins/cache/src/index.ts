/**
 * @heimdall/plugin-cache — L1 in-memory cache of wire-format responses
 * (RFC 2308 negative caching, prefetch, RFC 8767 serve-stale).
 */
export {
  type Analysis,
  analyzeResponse,
  type CacheEntry,
  ENTRY_KINDS,
  ENTRY_OVERHEAD,
  type EntryKind,
  entrySize,
  KIND_NODATA,
  KIND_NXDOMAIN,
  KIND_POSITIVE,
  KIND_SERVFAIL,
  type RejectReason,
  type TtlLimits,
} from './entry.js';
export {
  CACHE_DEFAULTS,
  type CacheOptions,
  type EvictionPolicyName,
  type PrefetchOptions,
  type ResolvedCacheOptions,
  resolveCacheOptions,
  type ServeStaleOptions,
} from './options.js';
export { createPolicy, type EvictionPolicy, LruPolicy, S3FifoPolicy, SievePolicy } from './policy.js';
export { CacheStats, registerCacheMetrics } from './stats.js';
export { CACHE_STORE, CacheStore } from './store.js';
export { CacheNameError, flushNameToWire } from './wire.js';
export { buildRefreshQuery, type CacheMiddlewareDeps, createCacheMiddleware, NO_CACHE, STALE_DEADLINE_MARGIN } from './middleware.js';
export { cache, cache as default } from './plugin.js';
export {
  CacheSnapshotError,
  createSnapshot,
  entryEncodingLength,
  readEntry,
  restoreSnapshot,
  serializeEntry,
  writeEntry,
} from './snapshot.js';
