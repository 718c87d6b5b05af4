/**
 * The cache store: a `Map` from key to {@link CacheNode}, an eviction policy,
 * the entry/byte bounds, expiry (lazy on lookup plus an incremental sweep)
 * and flushing. Exported under {@link CACHE_STORE} so that other plugins
 * (persistence, an L2 cache) can snapshot, read and fill it.
 */
import type { Clock, ClockTimer } from '@heimdall/core';
import { WireArena } from './arena.js';
import { type Analysis, analyzeResponse, type CacheEntry, entrySize } from './entry.js';
import { type CacheOptions, type ResolvedCacheOptions, resolveCacheOptions } from './options.js';
import { CacheNode, createPolicy, type EvictionPolicy } from './policy.js';
import { CacheStats } from './stats.js';
import { copyForQuery, equalsIgnoreCase, KEY_DO, nameToWire, writeTtls } from './wire.js';

/** DI token of the {@link CacheStore} bound by the cache plugin. */
export const CACHE_STORE: unique symbol = Symbol.for('heimdall.cache.store');

const systemNow = (): number => Date.now();

/**
 * In-memory store of wire-format responses.
 *
 * Keys are `MessageReader.cacheKey()` plus one flag character (see
 * `cacheKeyOf`); any string works for `setRaw`/`getRaw`, but flushing by
 * name reads the question name from the entry's wire bytes, not the key.
 *
 * Cost: lookups are one `Map.get`; inserts may evict (amortised O(1) for
 * every policy); flushes by name/suffix scan all entries (a few ms per
 * 100 000 entries plus the removals, see README).
 */
export class CacheStore {
  /** Resolved options (bounds, TTL clamps, prefetch and stale settings). */
  readonly options: ResolvedCacheOptions;
  /** Counters (also exported as metrics by the plugin). */
  readonly stats = new CacheStats();
  private readonly map = new Map<string, CacheNode>();
  private readonly policy: EvictionPolicy;
  private used = 0;
  /** How long past expiry an entry is kept for serve-stale (0 when disabled). */
  private readonly staleWindow: number;
  private readonly now: () => number;
  private sweepCursor: Iterator<CacheNode> | null = null;
  private sweepTimer: ClockTimer | null = null;
  private sweepClock: Clock | null = null;
  /** Slabs holding the entries' wire bytes. */
  private readonly arena = new WireArena();
  private readonly allocWire = (length: number): Buffer => this.arena.alloc(length);

  /**
   * @param options raw options (validated here) or already resolved ones.
   * @param clock time source for the methods whose `now` argument is omitted (default `Date.now`).
   */
  constructor(options: CacheOptions | ResolvedCacheOptions = {}, clock?: Pick<Clock, 'now'>) {
    this.options = isResolved(options) ? options : resolveCacheOptions(options);
    this.policy = createPolicy(this.options.policy, this.options.maxEntries);
    this.staleWindow = this.options.serveStale?.maxStaleAge ?? 0;
    this.now = clock ? () => clock.now() : systemNow;
  }

  /** Number of entries (fresh and stale). */
  get size(): number {
    return this.map.size;
  }

  /** Bytes charged against `maxBytes` (wire bytes plus a per-entry overhead estimate). */
  get bytes(): number {
    return this.used;
  }

  /** Slabs of the wire arena holding live entries (diagnostics; see `arena.ts`). */
  get slabs(): number {
    return this.arena.slabs;
  }

  /** Name of the eviction policy in use. */
  get policyName(): string {
    return this.policy.name;
  }

  /**
   * The node under `key`, whatever its age (undefined when absent). For the
   * plugin's middleware; other code should use {@link get}/{@link getRaw}.
   */
  peek(key: string): CacheNode | undefined {
    return this.map.get(key);
  }

  /**
   * The hit path: the answer to `request` from a fresh node, as a new buffer
   * (ID, flags and question letter case from the request, TTLs counted down).
   * Records the hit with the policy and the stats. Returns null when the node
   * is expired or its question name length differs from the request's
   * (`nameEnd`): the caller treats that as a miss.
   *
   * Synchronous; allocates only the returned buffer.
   */
  serve(node: CacheNode, request: Buffer, nameEnd: number, flags: number, now: number): Buffer | null {
    const e = node.entry;
    if (now >= e.expiresAt || e.nameEnd !== nameEnd) return null;
    this.policy.hit(node);
    const out = copyForQuery(e.wire, request, nameEnd, (flags & KEY_DO) !== 0, true);
    // A clock stepped backwards must not make TTLs grow past what was stored.
    const age = now > e.storedAt ? Math.floor((now - e.storedAt) / 1000) : 0;
    writeTtls(out, e.wire, e.ttlOffsets, age, -1);
    this.stats.hits++;
    if (e.kind === 'nxdomain' || e.kind === 'nodata') this.stats.negativeHits++;
    return out;
  }

  /**
   * A stale answer (RFC 8767) from `entry`: every TTL set to `ttl` (the
   * configured stale answer TTL, 30 s by default). Counts a stale answer.
   */
  serveStale(entry: CacheEntry, request: Buffer, flags: number, ttl: number): Buffer {
    const out = copyForQuery(entry.wire, request, entry.nameEnd, (flags & KEY_DO) !== 0, true);
    writeTtls(out, entry.wire, entry.ttlOffsets, 0, ttl);
    this.stats.staleAnswers++;
    return out;
  }

  /** True when `node` may still be served stale at `now`. */
  isServeableStale(node: CacheNode, now: number): boolean {
    return this.staleWindow > 0 && now < node.entry.expiresAt + this.staleWindow;
  }

  /**
   * Removes `node` when it is past expiry and past the stale window (counted
   * as an expired eviction). Returns true when removed.
   */
  dropIfDead(node: CacheNode, now: number): boolean {
    if (now < node.entry.expiresAt + this.staleWindow) return false;
    if (this.map.get(node.key) === node) {
      this.unlinkNode(node);
      this.stats.expiredEvictions++;
    }
    return true;
  }

  /** The fresh entry under `key` (no stats, no policy update), or undefined. */
  get(key: string, now: number = this.now()): CacheEntry | undefined {
    const node = this.map.get(key);
    return node !== undefined && now < node.entry.expiresAt ? node.entry : undefined;
  }

  /** The entry under `key` whatever its age (stale ones included), or undefined. For snapshots and L2 caches. */
  getRaw(key: string): CacheEntry | undefined {
    return this.map.get(key)?.entry;
  }

  /**
   * Stores `entry` under `key` as is (replacing any entry there), then evicts
   * until both bounds hold. Returns false (and stores nothing) when the entry
   * alone exceeds `maxBytes` or is already past its stale window.
   * For snapshots and L2 caches; the middleware uses {@link insert}.
   */
  setRaw(key: string, entry: CacheEntry, now: number = this.now()): boolean {
    if (now >= entry.expiresAt + this.staleWindow) return false;
    const size = entrySize(key, entry);
    if (size > this.options.maxBytes) return false;
    // Never keep a view into someone else's memory (a snapshot file, a socket buffer).
    if (!this.arena.owns(entry.wire)) entry = { ...entry, wire: this.arena.copy(entry.wire) };
    let node = this.map.get(key);
    if (node !== undefined) {
      this.used += size - node.size;
      if (node.entry.wire !== entry.wire) this.arena.release(node.entry.wire);
      node.entry = entry;
      node.size = size;
    } else {
      node = new CacheNode(key, entry, size);
      this.map.set(key, node);
      this.policy.insert(node);
      this.used += size;
    }
    this.enforceBounds();
    return true;
  }

  /**
   * Analyses `response` (the answer to `request`) with the configured TTL
   * rules and stores it under `key` when cacheable. Counts what was stored.
   * A SERVFAIL never replaces a non-SERVFAIL entry that is still fresh or
   * servable stale.
   * Returns the analysis (the entry, or why it was not cached).
   */
  insert(key: string, response: Buffer, request: Buffer, now: number = this.now()): Analysis {
    const analysis = analyzeResponse(response, request, now, this.options, this.allocWire);
    const entry = analysis.entry;
    if (entry === undefined) return analysis;
    if (entry.kind === 'servfail') {
      // A failure must not wipe out data that can still answer (fresh, or stale under RFC 8767).
      const old = this.map.get(key);
      if (old !== undefined && old.entry.kind !== 'servfail' && now < old.entry.expiresAt + this.staleWindow) {
        this.arena.release(entry.wire);
        return analysis;
      }
    }
    if (!this.setRaw(key, entry, now)) {
      this.arena.release(entry.wire);
    } else {
      const s = this.stats;
      if (entry.kind === 'positive') s.positiveStored++;
      else if (entry.kind === 'nxdomain') s.nxdomainStored++;
      else if (entry.kind === 'nodata') s.nodataStored++;
      else s.servfailStored++;
    }
    return analysis;
  }

  /** Removes the entry under `key`. Returns true when there was one. */
  delete(key: string): boolean {
    const node = this.map.get(key);
    if (node === undefined) return false;
    this.unlinkNode(node);
    return true;
  }

  /** Every `[key, entry]` pair, stale entries included, in no particular order. Safe against concurrent deletes. */
  *entries(): IterableIterator<[string, CacheEntry]> {
    for (const node of this.map.values()) yield [node.key, node.entry];
  }

  /** Removes every entry. Returns how many there were. */
  flush(): number {
    const n = this.map.size;
    this.map.clear();
    this.policy.clear();
    this.arena.clear();
    this.used = 0;
    this.sweepCursor = null;
    return n;
  }

  /**
   * Removes every entry whose question name is `name` (all types, classes
   * and flag variants; case-insensitive). Throws `CacheNameError` for an
   * invalid name. Returns the number removed.
   */
  flushName(name: string): number {
    const target = nameToWire(name);
    const len = target.length;
    let removed = 0;
    for (const node of this.map.values()) {
      const e = node.entry;
      if (e.nameEnd - 12 === len && equalsIgnoreCase(e.wire, 12, target, 0, len)) {
        this.unlinkNode(node);
        removed++;
      }
    }
    return removed;
  }

  /**
   * Removes `name` and every name below it (`example.com` removes
   * `example.com`, `www.example.com`, `a.b.example.com`…; a leading `*.` is
   * accepted and means the same). Label-aligned: `example.com` does not
   * match `badexample.com`. Returns the number removed.
   */
  flushSuffix(name: string): number {
    const bare = name.startsWith('*.') ? name.slice(2) : name === '*' ? '' : name;
    const target = nameToWire(bare);
    const len = target.length;
    let removed = 0;
    for (const node of this.map.values()) {
      const e = node.entry;
      const start = e.nameEnd - len;
      if (start < 12 || !equalsIgnoreCase(e.wire, start, target, 0, len)) continue;
      // Label alignment: walk the labels from the start of the name.
      const w = e.wire;
      let p = 12;
      while (p < start) p += w[p] + 1;
      if (p === start) {
        this.unlinkNode(node);
        removed++;
      }
    }
    return removed;
  }

  /**
   * `flushSuffix` for patterns starting with `*.`, `flushName` otherwise,
   * everything when `pattern` is undefined. Returns the number removed.
   */
  flushPattern(pattern?: string): number {
    if (pattern === undefined) return this.flush();
    return pattern.startsWith('*.') || pattern === '*' ? this.flushSuffix(pattern) : this.flushName(pattern);
  }

  /**
   * Examines up to `limit` entries (continuing where the previous call
   * stopped; a call that reaches the end starts over next time) and removes those past expiry and the stale
   * window. Returns the number removed.
   */
  sweep(now: number = this.now(), limit: number = this.options.sweepBatch): number {
    let removed = 0;
    const cursor = this.sweepCursor ?? this.map.values();
    this.sweepCursor = cursor;
    for (let i = 0; i < limit; i++) {
      const r = cursor.next();
      if (r.done) {
        this.sweepCursor = null;
        break;
      }
      const node = r.value;
      if (this.map.get(node.key) !== node) continue;
      const e = node.entry;
      if (now >= e.expiresAt + this.staleWindow) {
        this.unlinkNode(node);
        this.stats.expiredEvictions++;
        removed++;
      } else if (this.arena.isSparse(e.wire)) {
        // Compaction: move a survivor out of a mostly-dead slab so it can be freed.
        const wire = this.arena.copy(e.wire);
        this.arena.release(e.wire);
        node.entry = { ...e, wire };
      }
    }
    return removed;
  }

  /** Starts the periodic sweep on `clock` (every `sweepInterval` ms). Idempotent. */
  startSweeping(clock: Clock): void {
    if (this.sweepTimer !== null) return;
    this.sweepClock = clock;
    const tick = (): void => {
      this.sweep(clock.now());
      this.sweepTimer = clock.setTimeout(tick, this.options.sweepInterval);
      unref(this.sweepTimer);
    };
    this.sweepTimer = clock.setTimeout(tick, this.options.sweepInterval);
    unref(this.sweepTimer);
  }

  /** Stops the periodic sweep. */
  stopSweeping(): void {
    if (this.sweepTimer !== null && this.sweepClock !== null) this.sweepClock.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    this.sweepClock = null;
  }

  private unlinkNode(node: CacheNode): void {
    this.map.delete(node.key);
    this.policy.remove(node);
    this.arena.release(node.entry.wire);
    this.used -= node.size;
  }

  private enforceBounds(): void {
    const { maxEntries, maxBytes } = this.options;
    while (this.map.size > maxEntries || this.used > maxBytes) {
      const victim = this.policy.evict();
      if (victim === null) break;
      this.map.delete(victim.key);
      this.arena.release(victim.entry.wire);
      this.used -= victim.size;
      this.stats.evictions++;
    }
  }
}

function unref(timer: ClockTimer): void {
  if (typeof timer === 'object' && timer !== null && 'unref' in timer && typeof timer.unref === 'function') timer.unref();
}

function isResolved(o: CacheOptions | ResolvedCacheOptions): o is ResolvedCacheOptions {
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof (o as ResolvedCacheOptions).maxEntries === 'number' &&
    (o as ResolvedCacheOptions).prefetch !== undefined &&
    (o as ResolvedCacheOptions).serveStale !== undefined &&
    typeof (o as ResolvedCacheOptions).sweepBatch === 'number' &&
    Object.isFrozen(o)
  );
}
