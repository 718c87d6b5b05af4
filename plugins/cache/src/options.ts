/**
 * Options of the cache plugin: ONE TypeBox schema (names, defaults, bounds,
 * units, descriptions), validated by core's `parseOptions` through
 * `definePlugin`. {@link cacheSettings} derives the internal form the store
 * and the middleware read (prefetch/serveStale `true` → their defaults,
 * `false` → null) and makes the two cross-field checks JSON Schema cannot say.
 */
import { ConfigError, type OptionsInput, options, parseOptions, type Static, Type } from '@heimdall/core';

/** RFC 2181 §8: a TTL is an unsigned 31-bit number of seconds. */
const MAX_TTL = 0x7fffffff;
const DAY_MS = 86_400_000;

const ttl = (dflt: number, description: string) => Type.Integer({ minimum: 0, maximum: MAX_TTL, default: dflt, description });

/** CoreDNS-style prefetch: `prefetch AMOUNT DURATION PERCENTAGE`. */
export const cachePrefetchSchema = options(
  {
    amount: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        default: 1,
        description: 'Hits, each less than `duration` ms after the previous one, that make an entry popular (CoreDNS AMOUNT).',
      }),
    ),
    duration: Type.Optional(
      Type.Integer({ minimum: 1, maximum: DAY_MS, default: 60_000, description: 'Longest gap (ms) between two hits of a popular entry (CoreDNS DURATION).' }),
    ),
    percentage: Type.Optional(
      Type.Integer({
        minimum: 10,
        maximum: 90,
        default: 10,
        description: "Refresh when the remaining TTL is at most this percentage of the entry's TTL, at least 1 s (CoreDNS PERCENTAGE).",
      }),
    ),
    maxConcurrent: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10_000, default: 32, description: 'Most background refreshes in flight at once (more are skipped, not queued).' }),
    ),
    timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000, default: 5000, description: 'Deadline (ms) of one background refresh.' })),
  },
  { description: 'Prefetch settings.' },
);

/** RFC 8767 serve-stale. */
export const cacheServeStaleSchema = options(
  {
    maxStaleAge: Type.Optional(
      Type.Integer({
        minimum: 1000,
        maximum: 30 * DAY_MS,
        default: DAY_MS,
        description: 'How long (ms) after expiry an entry may still answer (RFC 8767 suggests 1 to 3 days).',
      }),
    ),
    clientTimeout: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 600_000,
        default: 1800,
        description:
          'RFC 8767 client-response timer (ms): when the chain has not answered after this long (or by the query deadline), the stale entry answers. 0 = answer stale at once and refresh in the background.',
      }),
    ),
    answerTtl: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 86_400, default: 30, description: 'TTL (s) of every record of a stale answer (RFC 8767 §4).' }),
    ),
    failureRecheck: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: DAY_MS,
        default: 30_000,
        description: 'After a failed refresh, answer stale without asking again for this long (ms; RFC 8767 failure recheck timer).',
      }),
    ),
  },
  { description: 'Serve-stale settings.' },
);

/** Cache tiers below the in-memory L1 (`CACHE_TIERS`). */
export const cacheTiersSchema = Type.Object(
  {
    timeoutMs: Type.Integer({
      minimum: 1,
      maximum: 2000,
      default: 20,
      description: 'Budget (ms) for the asynchronous tiers of one L1 miss, all tiers together; a tier that has not answered by then counts as a miss.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'How the cache consults the tiers provided under CACHE_TIERS.' },
);

/** The options schema of the cache plugin. */
export const cacheOptionsSchema = options({
  maxEntries: Type.Integer({ minimum: 1, maximum: 100_000_000, default: 100_000, description: 'Most entries (fresh and stale).' }),
  maxBytes: Type.Integer({
    minimum: 1024,
    maximum: Number.MAX_SAFE_INTEGER,
    default: 128 * 1024 * 1024,
    description: 'Most bytes: key + wire + TTL table + a measured 210-byte overhead per entry.',
  }),
  maxTtl: ttl(3600, "Upper bound (s) of a positive entry's TTL and of every record's TTL in it."),
  minTtl: ttl(0, "Lower bound (s) of a positive entry's TTL: shorter TTLs are raised to it (0 = honour the authority; TTL-0 answers are then not cached)."),
  maxNegativeTtl: ttl(1800, 'Upper bound (s) of NXDOMAIN/NODATA entries.'),
  minNegativeTtl: ttl(0, 'Lower bound (s) of NXDOMAIN/NODATA entries.'),
  servfailTtl: Type.Integer({ minimum: 0, maximum: 300, default: 5, description: 'How long (s) a SERVFAIL is cached; 0 = never (RFC 2308 §7.1).' }),
  policy: Type.Union([Type.Literal('sieve'), Type.Literal('lru'), Type.Literal('s3fifo')], { default: 'sieve', description: 'Eviction policy.' }),
  sweepInterval: Type.Integer({ minimum: 100, maximum: DAY_MS, default: 60_000, description: 'Period (ms) of the background sweep of expired entries.' }),
  sweepBatch: Type.Integer({ minimum: 1, maximum: 100_000_000, default: 20_000, description: 'Entries examined per sweep tick (bounds the pause).' }),
  prefetch: Type.Union([Type.Boolean(), cachePrefetchSchema], {
    default: false,
    description: 'Prefetch popular entries before they expire through UPSTREAM: `true` (defaults), `false` (off) or settings.',
  }),
  serveStale: Type.Union([Type.Boolean(), cacheServeStaleSchema], {
    default: false,
    description: 'Serve expired entries when the chain fails or is slow (RFC 8767): `true` (defaults), `false` (off) or settings.',
  }),
  tiers: cacheTiersSchema,
});

/** Validated options of the cache (defaults filled in), as bound under `PLUGIN_OPTIONS`. */
export type CacheOptions = Static<typeof cacheOptionsSchema>;
/** What `cache(...)` accepts: every field optional. */
export type CacheOptionsInput = OptionsInput<CacheOptions>;
/** Eviction policies the store implements. */
export type EvictionPolicyName = CacheOptions['policy'];
/** Prefetch settings (the object form of `prefetch`). */
export type CachePrefetchOptions = Static<typeof cachePrefetchSchema>;
/** Serve-stale settings (the object form of `serveStale`). */
export type CacheServeStaleOptions = Static<typeof cacheServeStaleSchema>;

/*
 * The fields of the two object forms are Type.Optional with defaults: core's
 * parser fills them either way, and an out-of-range field is then reported
 * as such (`cache.prefetch.percentage: must be an integer in 10..90`)
 * rather than as a missing sibling (the union member's defaults are only
 * applied when the object already fits it).
 */

/** The internal form: prefetch/serveStale resolved to settings or null, tier budget as a number. */
export interface CacheSettings {
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
  readonly prefetch: Readonly<Required<CachePrefetchOptions>> | null;
  readonly serveStale: Readonly<Required<CacheServeStaleOptions>> | null;
  /** `tiers.timeoutMs`. */
  readonly tierTimeoutMs: number;
}

/** What `prefetch: true` / `serveStale: true` mean: the schemas' own defaults. */
const PREFETCH_DEFAULTS = parseOptions(cachePrefetchSchema, {}, 'prefetch') as Required<CachePrefetchOptions>;
const STALE_DEFAULTS = parseOptions(cacheServeStaleSchema, {}, 'serveStale') as Required<CacheServeStaleOptions>;

/**
 * Derives the internal settings from validated options. Throws `ConfigError`
 * (path under `path`) when `minTtl > maxTtl` or `minNegativeTtl > maxNegativeTtl`.
 */
export function cacheSettings(o: CacheOptions, path = 'cache'): CacheSettings {
  if (o.minTtl > o.maxTtl) throw new ConfigError(`${path}.minTtl`, `must not exceed maxTtl (${o.maxTtl})`, o.minTtl);
  if (o.minNegativeTtl > o.maxNegativeTtl) {
    throw new ConfigError(`${path}.minNegativeTtl`, `must not exceed maxNegativeTtl (${o.maxNegativeTtl})`, o.minNegativeTtl);
  }
  return Object.freeze({
    maxEntries: o.maxEntries,
    maxBytes: o.maxBytes,
    maxTtl: o.maxTtl,
    minTtl: o.minTtl,
    maxNegativeTtl: o.maxNegativeTtl,
    minNegativeTtl: o.minNegativeTtl,
    servfailTtl: o.servfailTtl,
    policy: o.policy,
    sweepInterval: o.sweepInterval,
    sweepBatch: o.sweepBatch,
    prefetch: o.prefetch === false ? null : Object.freeze({ ...PREFETCH_DEFAULTS, ...(o.prefetch === true ? {} : o.prefetch) }),
    serveStale: o.serveStale === false ? null : Object.freeze({ ...STALE_DEFAULTS, ...(o.serveStale === true ? {} : o.serveStale) }),
    tierTimeoutMs: o.tiers.timeoutMs,
  });
}
