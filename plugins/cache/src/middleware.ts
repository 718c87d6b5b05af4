/**
 * The cache middleware: a synchronous hit path, insertion after the chain
 * below answers, CoreDNS-style prefetch through the UPSTREAM service, and
 * RFC 8767 serve-stale.
 */
import { Buffer } from 'node:buffer';
import {
  CACHE_RESULT,
  CLOCK,
  type Clock,
  type DnsContext,
  EdeCode,
  type Logger,
  type Middleware,
  type Next,
  PLUGIN_LOGGER,
  PLUGIN_METRICS,
  type PluginMetrics,
  UPSTREAM,
  type Upstream,
} from '@heimdall/core';
import { inject, injectable, optional } from '@heimdall/core/di';
import { KEY_CD, KEY_DO, KEY_EDNS } from '@heimdall/core/wire';
import { type CacheEntry, KIND_SERVFAIL } from './entry.js';
import { registerCacheMetrics } from './stats.js';
import { CacheStore } from './store.js';
import { CacheTiers, TIER_STALE } from './tiers.js';

type Ctx = DnsContext;

/** RFC 8914 info codes "Stale Answer", "Stale NXDOMAIN Answer" and "Cached Error" (a SERVFAIL answered from the cache). */
const EDE_STALE_ANSWER = EdeCode.STALE_ANSWER;
const EDE_STALE_NXDOMAIN_ANSWER = EdeCode.STALE_NXDOMAIN_ANSWER;
const EDE_CACHED_ERROR = EdeCode.CACHED_ERROR;
/**
 * A stale answer must leave before the resolver's own deadline SERVFAIL:
 * the client-response timer fires at most this many ms before `ctx.deadline`.
 */
export const STALE_DEADLINE_MARGIN = 50;

/** What the cache middleware needs besides its store. */
export interface CacheMiddlewareDeps {
  /** Time source (TTL ages, timers). */
  readonly clock: Clock;
  /** Forwarder for prefetches; null/undefined disables prefetch. */
  readonly upstream?: Upstream | null;
  /** Where background refresh failures are logged (debug level). */
  readonly logger?: Logger | null;
  /** Tiers below L1 (`CACHE_TIERS`); null/undefined or an empty list: none. */
  readonly tiers?: CacheTiers | null;
}

/**
 * A fresh query for a background refresh: the request's header (new RD=1,
 * CD per key, AD=1, Z cleared) and question, plus an OPT record (1232 bytes, DO
 * per key) when the key says EDNS. No client options (cookies, ECS) are
 * carried over.
 */
export function buildRefreshQuery(request: Buffer, questionEnd: number, flags: number): Buffer {
  const edns = (flags & KEY_EDNS) !== 0;
  const out = Buffer.alloc(questionEnd + (edns ? 11 : 0));
  request.copy(out, 0, 0, questionEnd);
  out[2] = 0x01; // QR=0 opcode QUERY, RD
  out[3] = ((flags & KEY_CD) !== 0 ? 0x10 : 0) | 0x20; // AD=1: the refreshed entry keeps the upstream's AD (RFC 6840 §5.7)
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(edns ? 1 : 0, 10);
  if (edns) {
    const p = questionEnd;
    out[p] = 0;
    out.writeUInt16BE(41, p + 1);
    out.writeUInt16BE(1232, p + 3);
    out[p + 7] = (flags & KEY_DO) !== 0 ? 0x80 : 0;
  }
  return out;
}

function rcodeOf(response: Buffer): number {
  return response.length >= 4 ? response[3] & 0x0f : -1;
}

/**
 * Builds the cache middleware over `store`.
 *
 * Hit path (fresh entry): key, `Map.get`, copy + patch, `ctx.response = …`,
 * return — synchronous, without calling `next()`. Miss: `next()`, then the
 * response is analysed and stored (synchronously when the chain below was
 * synchronous). Expired-but-servable entries take the serve-stale path when
 * enabled. Prefetch needs `deps.upstream`.
 */
export function createCacheMiddleware(store: CacheStore, deps: CacheMiddlewareDeps): Middleware {
  const clock = deps.clock;
  const upstream = deps.upstream ?? null;
  const logger = deps.logger ?? null;
  const stats = store.stats;
  const prefetch = upstream === null ? null : store.options.prefetch;
  const stale = store.options.serveStale;
  /** Keys with a prefetch in flight: at most one per key, `maxConcurrent` in all. */
  const refreshing = new Set<string>();
  const prefetchRatio = prefetch === null ? 0 : prefetch.percentage / 100;
  /**
   * Serve-stale failure recheck (RFC 8767): key → epoch ms before which a
   * stale entry answers without trying the chain. Only keys whose refresh
   * failed are here; cleared on success, pruned when it outgrows the cache.
   */
  const recheck = new Map<string, number>();
  const tiers = deps.tiers != null && deps.tiers.list.length > 0 ? deps.tiers : null;
  /**
   * The resolver's EDNS payload size, for the OPT record of stored answers.
   * Read from the query context on each miss (core has no public accessor yet).
   */
  let payload = 1232;

  /** Stores an answer in L1 and writes it through to the tiers when it was stored. */
  function storeAnswer(key: string, response: Buffer, request: Buffer, now: number) {
    const a = store.insert(key, response, request, now, payload);
    if (tiers !== null && a.entry !== undefined) tiers.write(key, a.entry);
    return a;
  }

  /**
   * Stores the chain's answer, unless marked `ctx.noCache` or an entry stored
   * since this query's lookup (`since`) already answers it: behind dedup, a
   * burst of identical misses would otherwise analyse and store the same
   * response once per query.
   */
  function insertFrom(ctx: Ctx, key: string, since: number): void {
    const response = ctx.response;
    if (response === null || ctx.noCache) return;
    const current = store.peek(key);
    if (current !== undefined && store.slotStoredAt(current) >= since && store.slotKind(current) !== KIND_SERVFAIL) return;
    try {
      storeAnswer(key, response, ctx.request, clock.now());
    } catch (err) {
      // Caching is best effort: a response we cannot store still goes to the client.
      logger?.warn({ err, plugin: 'cache' }, 'plugin/cache: could not store a response');
    }
  }

  function startPrefetch(key: string, request: Buffer, questionEnd: number, flags: number): void {
    if (prefetch === null || upstream === null || refreshing.size >= prefetch.maxConcurrent || refreshing.has(key)) return;
    const query = buildRefreshQuery(request, questionEnd, flags);
    refreshing.add(key);
    stats.prefetches++;
    // Our own bound too: an upstream that ignores the deadline must not hold the slot forever.
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clock.clearTimeout(timer);
      refreshing.delete(key);
    };
    const timer = clock.setTimeout(() => {
      if (released) return;
      stats.refreshFailures++;
      release();
    }, prefetch.timeout);
    let p: Promise<Buffer>;
    try {
      p = upstream.resolve(query, { deadline: clock.now() + prefetch.timeout });
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then((response) => {
      const a = storeAnswer(key, response, query, clock.now());
      if (!released && (a.entry === undefined || a.entry.kind === 'servfail')) stats.refreshFailures++;
    })
      .catch((err: unknown) => {
        if (!released) stats.refreshFailures++;
        logger?.debug({ err, plugin: 'cache' }, 'plugin/cache: prefetch failed');
      })
      .finally(release);
  }

  function answerStale(ctx: Ctx, entry: CacheEntry, flags: number): Buffer {
    const out = store.serveStale(entry, ctx.request, flags, stale!.answerTtl);
    ctx.response = out;
    ctx.set(CACHE_RESULT, 'stale');
    ctx.ede(entry.kind === 'nxdomain' ? EDE_STALE_NXDOMAIN_ANSWER : EDE_STALE_ANSWER);
    return ctx.response ?? out;
  }

  /** RFC 8767: try the chain, answer stale when it fails or is slower than the client-response timer. */
  function staleFlow(ctx: Ctx, next: Next, key: string, entry: CacheEntry, flags: number, now: number): void | Promise<void> {
    const s = stale!;
    const retryAt = recheck.get(key);
    if (retryAt !== undefined) {
      if (now < retryAt) {
        answerStale(ctx, entry, flags);
        return;
      }
      recheck.delete(key);
    }
    const wait = Math.min(s.clientTimeout, Math.max(0, ctx.deadline - now - STALE_DEADLINE_MARGIN));
    return new Promise<void>((resolve) => {
      let answered = false;
      let staleAnswer: Buffer | null = null;
      const timer = clock.setTimeout(() => {
        if (answered) return;
        answered = true;
        staleAnswer = answerStale(ctx, entry, flags);
        resolve();
      }, wait);
      const finish = (ok: boolean): void => {
        clock.clearTimeout(timer);
        if (ok) recheck.delete(key);
        else {
          if (recheck.size >= store.options.maxEntries) recheck.clear();
          recheck.set(key, clock.now() + s.failureRecheck);
        }
        if (!answered) {
          answered = true;
          if (!ok) answerStale(ctx, entry, flags);
          resolve();
        } else if (staleAnswer !== null) {
          // Already answered stale; the late result only refreshed the cache.
          ctx.response = staleAnswer;
        }
      };
      const settle = (): void => {
        const response = ctx.response;
        if (response === null || rcodeOf(response) === 2) {
          finish(false);
          return;
        }
        insertFrom(ctx, key, now);
        finish(true);
      };
      let r: void | Promise<void>;
      try {
        r = next();
      } catch (err) {
        logger?.debug({ err, plugin: 'cache' }, 'plugin/cache: chain failed, answering stale');
        finish(false);
        return;
      }
      if (r === undefined) settle();
      else
        r.then(settle, (err: unknown) => {
          logger?.debug({ err, plugin: 'cache' }, 'plugin/cache: chain failed, answering stale');
          finish(false);
        });
    });
  }

  /** Answers from the L1 slot a fresh tier entry was just promoted into; false when it cannot. */
  function fromTier(ctx: Ctx, slot: number, nameEnd: number, flags: number, now: number): boolean {
    const out = store.serve(slot, ctx.request, nameEnd, flags, now, ctx.questionNameFolded);
    if (out === null) return false;
    stats.tierHits++;
    ctx.response = out;
    ctx.set(CACHE_RESULT, 'hit');
    if (store.slotKind(slot) === KIND_SERVFAIL) ctx.ede(EDE_CACHED_ERROR);
    return true;
  }

  /**
   * L1 miss: the tiers (a sync tier answers at once; async ones within the
   * budget), then the chain — with a stale entry (L1's own, or a tier's now
   * promoted into L1) taking the serve-stale path.
   */
  function miss(ctx: Ctx, next: Next, key: string, slot: number | undefined, nameEnd: number, flags: number, now: number): void | Promise<void> {
    ctx.set(CACHE_RESULT, 'miss');
    payload = ctx.ednsPayloadSize;
    if (tiers !== null) {
      const found = tiers.lookup(key, now, payload);
      if (typeof found !== 'number') {
        return found.then((f) => {
          const t = clock.now();
          // The slot number did not survive the await: look it up again.
          const s = store.peek(key);
          if (f >= 0 && s !== undefined && fromTier(ctx, s, nameEnd, flags, t)) return;
          return chain(ctx, next, key, s, flags, t);
        });
      }
      if (found >= 0) {
        if (fromTier(ctx, found, nameEnd, flags, now)) return;
        slot = found;
      } else if (found === TIER_STALE) slot = store.peek(key);
    }
    return chain(ctx, next, key, slot, flags, now);
  }

  /** No fresh entry anywhere: serve-stale flow, or the chain and then the store. */
  function chain(ctx: Ctx, next: Next, key: string, slot: number | undefined, flags: number, now: number): void | Promise<void> {
    stats.misses++;
    if (slot !== undefined) {
      if (stale !== null && now >= store.slotExpiresAt(slot) && store.isServeableStale(slot, now)) {
        // The flow outlives this call (and the slot number): keep the entry itself.
        return staleFlow(ctx, next, key, store.entryAt(slot), flags, now);
      }
      store.dropIfDead(slot, now);
    }
    const r = next();
    if (r === undefined) {
      insertFrom(ctx, key, now);
      return;
    }
    return r.then(() => insertFrom(ctx, key, now));
  }

  // The query's key, computed once per query for every plugin that asks (core's memo: a repeated question gets
  // the very string the store holds, so the Map compares by identity and the hit path allocates nothing).
  const coarse = store.coarse;

  return function cache(ctx: Ctx, next: Next): void | Promise<void> {
    const key = ctx.questionKey();
    if (key === null) {
      ctx.set(CACHE_RESULT, 'miss'); // not a cacheable question: never looked up, never stored
      return next();
    }
    const nameEnd = ctx.questionNameEnd;
    const flags = ctx.questionKeyFlags;
    const now = coarse.read();
    const slot = store.peek(key);
    if (slot !== undefined) {
      const out = store.serve(slot, ctx.request, nameEnd, flags, now, ctx.questionNameFolded);
      if (out !== null) {
        ctx.response = out;
        ctx.set(CACHE_RESULT, 'hit');
        const kind = store.slotKind(slot);
        if (kind === KIND_SERVFAIL) ctx.ede(EDE_CACHED_ERROR);
        if (prefetch !== null) {
          const hits = store.countHit(slot, now, prefetch.duration);
          // CoreDNS: refresh when the TTL left is at most PERCENTAGE of the entry's TTL (and at least 1 s before expiry).
          if (
            hits >= prefetch.amount &&
            kind !== KIND_SERVFAIL &&
            now >= store.slotExpiresAt(slot) - Math.max(1, Math.ceil(prefetchRatio * store.slotTtl(slot))) * 1000
          ) {
            startPrefetch(key, ctx.request, nameEnd + 4, flags);
          }
        }
        return;
      }
    }
    return miss(ctx, next, key, slot, nameEnd, flags, now);
  };
}

/**
 * The cache's middleware, built once per cache instance in its scope
 * (`handle` is what goes into the chain). Registers the cache's metrics.
 * Prefetch needs `UPSTREAM` (without it, prefetch is off); tiers come from
 * `CACHE_TIERS` through {@link CacheTiers}.
 */
@injectable()
export class CacheMiddleware {
  readonly handle: Middleware;

  constructor(
    @inject(CacheStore) store: CacheStore,
    @inject(CacheTiers) tiers: CacheTiers,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(PLUGIN_METRICS) metrics: PluginMetrics,
    @inject(UPSTREAM) @optional() upstream: Upstream | undefined,
  ) {
    registerCacheMetrics(
      metrics,
      store.stats,
      () => store.size,
      () => store.bytes,
    );
    this.handle = createCacheMiddleware(store, { clock, upstream: upstream ?? null, logger, tiers });
  }
}
