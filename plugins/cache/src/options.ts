/**
 * Options of the cache plugin: defaults, validation (every bad field raises a
 * `ConfigError` naming it) and the resolved form the store and the middleware
 * read (milliseconds, plain numbers, no optional fields).
 */
import { ConfigError } from '@heimdall/core';

/** Eviction policies the store implements. `sieve` is the default (see the README for the measurements). */
export type EvictionPolicyName = 'sieve' | 'lru' | 's3fifo';

/** CoreDNS-style prefetch: `prefetch AMOUNT DURATION PERCENTAGE`. */
export interface PrefetchOptions {
  /** Hits needed, each less than `duration` ms after the previous one, before an entry is prefetched. Default 1, as CoreDNS (1..1e6). */
  amount?: number;
  /** Longest gap (ms) between two hits that still counts as "popular". Default 60 000. */
  duration?: number;
  /** Refresh when the remaining TTL falls to this percentage of the entry's TTL (10..90, CoreDNS range). Default 10. */
  percentage?: number;
  /** Most background refreshes (prefetch and stale refresh through UPSTREAM) in flight at once. Default 32. */
  maxConcurrent?: number;
  /** Time limit of one background refresh (ms). Default 5000. */
  timeout?: number;
}

/** RFC 8767 serve-stale. */
export interface ServeStaleOptions {
  /** How long after expiry an entry may still be served stale (ms). Default 86 400 000 (1 day; RFC 8767 suggests 1 to 3 days). */
  maxStaleAge?: number;
  /**
   * RFC 8767 "client response timer" (ms): when the chain below has not
   * answered after this long (or by the query's deadline, whichever comes
   * first), the stale entry answers and the chain keeps refreshing in the
   * background. 0 = answer stale at once and refresh in the background
   * (AdGuard's "optimistic cache"). Default 1800.
   */
  clientTimeout?: number;
  /** TTL written into stale answers (s). Default 30 (RFC 8767 §4). */
  answerTtl?: number;
  /** After a failed refresh, serve stale without asking again for this long (ms). RFC 8767 "failure recheck timer". Default 30 000. */
  failureRecheck?: number;
}

/** Options of {@link cache}. Every field is optional; defaults in the doc of each field. */
export interface CacheOptions {
  /** Most entries kept. Default 100 000 (1..1e8). */
  maxEntries?: number;
  /** Most bytes kept (wire bytes plus a measured per-entry overhead of 540 bytes). Default 128 MiB. */
  maxBytes?: number;
  /** Upper bound of a positive entry's TTL (s). Default 3600. */
  maxTtl?: number;
  /**
   * Lower bound of a positive entry's TTL (s): shorter TTLs are raised to it
   * (CoreDNS `success … MINTTL`, whose default is 5). Default 0: honour the
   * authority's TTL exactly (TTL 0 answers are then not cached).
   */
  minTtl?: number;
  /** Upper bound of a negative (NXDOMAIN/NODATA) entry's TTL (s). Default 1800. */
  maxNegativeTtl?: number;
  /** Lower bound of a negative entry's TTL (s). Default 0. */
  minNegativeTtl?: number;
  /** How long a SERVFAIL is cached (s, 0 = never, at most 300 per RFC 2308 §7.1). Default 5. */
  servfailTtl?: number;
  /** Eviction policy. Default `'sieve'`. */
  policy?: EvictionPolicyName;
  /** Interval of the background sweep of expired entries (ms). Default 60 000. */
  sweepInterval?: number;
  /** Entries examined per sweep tick (bounds the pause). Default 20 000. */
  sweepBatch?: number;
  /** Prefetch popular entries before they expire (needs the UPSTREAM service). `false` (default) disables it. */
  prefetch?: PrefetchOptions | boolean;
  /** Serve expired entries when the chain below fails or is slow (RFC 8767). `false` (default) disables it. */
  serveStale?: ServeStaleOptions | boolean;
}

/** Options after defaults and validation. Durations in ms except the TTL bounds (s). */
export interface ResolvedCacheOptions {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly maxTtl: number;
  readonly minTtl: number;
  readonly maxNegativeTtl: number;
  readonly minNegativeTtl: number;
  readonly servfailTtl: number;
  readonly policy: EvictionPolicyName;
  readonly sweepInterval: number;
  readonly sweepBatch: number;
  readonly prefetch: Readonly<Required<PrefetchOptions>> | null;
  readonly serveStale: Readonly<Required<ServeStaleOptions>> | null;
}

/** Default values, for documentation and tests. */
export const CACHE_DEFAULTS = {
  maxEntries: 100_000,
  maxBytes: 128 * 1024 * 1024,
  maxTtl: 3600,
  minTtl: 0,
  maxNegativeTtl: 1800,
  minNegativeTtl: 0,
  servfailTtl: 5,
  policy: 'sieve' as EvictionPolicyName,
  sweepInterval: 60_000,
  sweepBatch: 20_000,
  prefetch: { amount: 1, duration: 60_000, percentage: 10, maxConcurrent: 32, timeout: 5000 },
  serveStale: { maxStaleAge: 86_400_000, clientTimeout: 1800, answerTtl: 30, failureRecheck: 30_000 },
} as const;

/** RFC 2181 §8: a TTL is an unsigned 31-bit number of seconds. */
const MAX_TTL = 0x7fffffff;

function int(path: string, value: unknown, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(path, 'must be an integer', value);
  if (value < min || value > max) throw new ConfigError(path, `must be between ${min} and ${max}`, value);
  return value;
}

function object(path: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(path, 'must be an object', value);
  }
  return value as Record<string, unknown>;
}

function noUnknown(path: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(value)) {
    if (!known.includes(k)) throw new ConfigError(`${path}.${k}`, `unknown option (known: ${known.join(', ')})`);
  }
}

const TOP_KEYS = [
  'maxEntries',
  'maxBytes',
  'maxTtl',
  'minTtl',
  'maxNegativeTtl',
  'minNegativeTtl',
  'servfailTtl',
  'policy',
  'sweepInterval',
  'sweepBatch',
  'prefetch',
  'serveStale',
] as const;

/**
 * Applies defaults and validates. Throws `ConfigError` whose path starts with
 * `prefix` (default `cache`), e.g. `cache.prefetch.percentage: must be between 10 and 90`.
 */
export function resolveCacheOptions(options: CacheOptions = {}, prefix = 'cache'): ResolvedCacheOptions {
  const o = object(prefix, options);
  noUnknown(prefix, o, TOP_KEYS);
  const d = CACHE_DEFAULTS;
  const maxEntries = int(`${prefix}.maxEntries`, o.maxEntries, d.maxEntries, 1, 100_000_000);
  const maxBytes = int(`${prefix}.maxBytes`, o.maxBytes, d.maxBytes, 1024, Number.MAX_SAFE_INTEGER);
  const maxTtl = int(`${prefix}.maxTtl`, o.maxTtl, d.maxTtl, 0, MAX_TTL);
  const minTtl = int(`${prefix}.minTtl`, o.minTtl, d.minTtl, 0, MAX_TTL);
  if (minTtl > maxTtl) throw new ConfigError(`${prefix}.minTtl`, `must not exceed maxTtl (${maxTtl})`, minTtl);
  const maxNegativeTtl = int(`${prefix}.maxNegativeTtl`, o.maxNegativeTtl, d.maxNegativeTtl, 0, MAX_TTL);
  const minNegativeTtl = int(`${prefix}.minNegativeTtl`, o.minNegativeTtl, d.minNegativeTtl, 0, MAX_TTL);
  if (minNegativeTtl > maxNegativeTtl) {
    throw new ConfigError(`${prefix}.minNegativeTtl`, `must not exceed maxNegativeTtl (${maxNegativeTtl})`, minNegativeTtl);
  }
  const servfailTtl = int(`${prefix}.servfailTtl`, o.servfailTtl, d.servfailTtl, 0, 300);
  let policy: EvictionPolicyName = d.policy;
  if (o.policy !== undefined) {
    if (o.policy !== 'sieve' && o.policy !== 'lru' && o.policy !== 's3fifo') {
      throw new ConfigError(`${prefix}.policy`, "must be 'sieve', 'lru' or 's3fifo'", o.policy);
    }
    policy = o.policy;
  }
  const sweepInterval = int(`${prefix}.sweepInterval`, o.sweepInterval, d.sweepInterval, 100, 86_400_000);
  const sweepBatch = int(`${prefix}.sweepBatch`, o.sweepBatch, d.sweepBatch, 1, 100_000_000);

  let prefetch: ResolvedCacheOptions['prefetch'] = null;
  if (o.prefetch !== undefined && o.prefetch !== false) {
    const p = o.prefetch === true ? {} : object(`${prefix}.prefetch`, o.prefetch);
    const pp = `${prefix}.prefetch`;
    noUnknown(pp, p, ['amount', 'duration', 'percentage', 'maxConcurrent', 'timeout']);
    const dp = d.prefetch;
    prefetch = {
      amount: int(`${pp}.amount`, p.amount, dp.amount, 1, 1_000_000),
      duration: int(`${pp}.duration`, p.duration, dp.duration, 1, 86_400_000),
      percentage: int(`${pp}.percentage`, p.percentage, dp.percentage, 10, 90),
      maxConcurrent: int(`${pp}.maxConcurrent`, p.maxConcurrent, dp.maxConcurrent, 1, 10_000),
      timeout: int(`${pp}.timeout`, p.timeout, dp.timeout, 1, 600_000),
    };
  }

  let serveStale: ResolvedCacheOptions['serveStale'] = null;
  if (o.serveStale !== undefined && o.serveStale !== false) {
    const s = o.serveStale === true ? {} : object(`${prefix}.serveStale`, o.serveStale);
    const sp = `${prefix}.serveStale`;
    noUnknown(sp, s, ['maxStaleAge', 'clientTimeout', 'answerTtl', 'failureRecheck']);
    const ds = d.serveStale;
    serveStale = {
      maxStaleAge: int(`${sp}.maxStaleAge`, s.maxStaleAge, ds.maxStaleAge, 1000, 30 * 86_400_000),
      clientTimeout: int(`${sp}.clientTimeout`, s.clientTimeout, ds.clientTimeout, 0, 600_000),
      answerTtl: int(`${sp}.answerTtl`, s.answerTtl, ds.answerTtl, 1, 86_400),
      failureRecheck: int(`${sp}.failureRecheck`, s.failureRecheck, ds.failureRecheck, 0, 86_400_000),
    };
  }

  return Object.freeze({
    maxEntries,
    maxBytes,
    maxTtl,
    minTtl,
    maxNegativeTtl,
    minNegativeTtl,
    servfailTtl,
    policy,
    sweepInterval,
    sweepBatch,
    prefetch,
    serveStale,
  });
}
