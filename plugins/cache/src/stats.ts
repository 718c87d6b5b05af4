/**
 * Cache statistics: plain number fields incremented on the hot path, read by
 * prom-client only when the registry is scraped (`collect()`), so a hit costs
 * one integer increment and no label lookup.
 */
import type { PluginMetrics } from '@heimdall/core';

/** Counters of one cache. All monotonic except where noted. */
export class CacheStats {
  /** Fresh answers served from the cache (positive, negative and SERVFAIL entries). */
  hits = 0;
  /** Lookups that found no fresh entry. */
  misses = 0;
  /** Hits on NXDOMAIN/NODATA entries (also counted in `hits`). */
  negativeHits = 0;
  /** Entries evicted to respect maxEntries/maxBytes. */
  evictions = 0;
  /** Entries removed because they expired (lazily on lookup or by the sweep). */
  expiredEvictions = 0;
  /** Positive entries stored. */
  positiveStored = 0;
  /** NXDOMAIN entries stored. */
  nxdomainStored = 0;
  /** NODATA entries stored. */
  nodataStored = 0;
  /** SERVFAIL entries stored. */
  servfailStored = 0;
  /** Background prefetches started. */
  prefetches = 0;
  /** Background refreshes (prefetch) that failed. */
  refreshFailures = 0;
  /** Stale answers served (RFC 8767). */
  staleAnswers = 0;
  /** L1 misses answered from a cache tier (also counted in `hits`). */
  tierHits = 0;
  /** Asynchronous tier reads abandoned at the `tiers.timeoutMs` budget. */
  tierTimeouts = 0;
  /** Tier reads that threw, rejected or returned an entry that did not hold up; tier writes/flushes that threw. */
  tierErrors = 0;
}

/** Metric names (with the `heimdall_cache_` prefix) and the stat each one reads. */
const COUNTERS: ReadonlyArray<readonly [string, keyof CacheStats, string]> = [
  ['hits_total', 'hits', 'Queries answered from the cache (fresh entries).'],
  ['misses_total', 'misses', 'Cache lookups that found no fresh entry.'],
  ['negative_hits_total', 'negativeHits', 'Hits on NXDOMAIN/NODATA entries.'],
  ['evictions_total', 'evictions', 'Entries evicted to respect maxEntries/maxBytes.'],
  ['expired_evictions_total', 'expiredEvictions', 'Expired entries removed (lazily or by the sweep).'],
  ['positive_stored_total', 'positiveStored', 'Positive responses stored.'],
  ['nxdomain_stored_total', 'nxdomainStored', 'NXDOMAIN responses stored.'],
  ['nodata_stored_total', 'nodataStored', 'NODATA responses stored.'],
  ['servfail_stored_total', 'servfailStored', 'SERVFAIL responses stored.'],
  ['prefetches_total', 'prefetches', 'Background prefetches started.'],
  ['refresh_failures_total', 'refreshFailures', 'Background refreshes that failed.'],
  ['stale_answers_total', 'staleAnswers', 'Stale answers served (RFC 8767).'],
  ['tier_hits_total', 'tierHits', 'L1 misses answered from a cache tier.'],
  ['tier_timeouts_total', 'tierTimeouts', 'Tier reads abandoned at the tiers.timeoutMs budget.'],
  ['tier_errors_total', 'tierErrors', 'Tier reads, writes or flushes that failed, and tier entries that did not validate.'],
];

/**
 * Registers the cache's metrics through the plugin's `PLUGIN_METRICS` (names
 * `heimdall_<instance>_hits_total`…, so `heimdall_cache_…` for the default
 * instance): one counter per stat plus the `entries` and `bytes` gauges read
 * from `size()`/`bytes()`. Values are copied from `stats` at scrape time.
 */
export function registerCacheMetrics(metrics: PluginMetrics, stats: CacheStats, size: () => number, bytes: () => number): void {
  metrics.counterFields(stats, COUNTERS);
  metrics.gaugeOf('entries', 'Entries in the cache (fresh and stale).', size);
  metrics.gaugeOf('bytes', 'Bytes charged against maxBytes.', bytes);
}
