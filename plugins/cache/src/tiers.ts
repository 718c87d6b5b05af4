/**
 * Cache tiers below the in-memory L1 (core's `CACHE_TIERS` contract): a
 * disk or Redis tier provided by another plugin. The cache consults them in
 * chain order on an L1 miss, promotes a hit into L1, writes new cacheable
 * answers through to every tier and passes flushes on.
 *
 * Values are the cache's validated binary entry (`serializeEntry`: the wire
 * answer with each record's TTL at `storedAt`, and the absolute expiry), so
 * TTLs keep counting down across processes; keys are the cache's question
 * key bytes (lowercased name, QTYPE, QCLASS, one flag character for EDNS,
 * DO and CD). Nothing read from a tier is trusted: the entry must decode,
 * carry the key asked for (the stored question produces it), parse, and
 * still be fresh — else it is ignored (and counted in `tier_errors_total`).
 */
import { CACHE_TIERS, type CacheTier, CLOCK, type Clock, type ClockTimer, type FlushScope, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable, multiInject, optional } from '@heimdall/core/di';
import type { CacheEntry } from './entry.js';
import { type CacheOptions, cacheSettings } from './options.js';
import { readEntry, serializeEntry } from './snapshot.js';
import { CacheStore } from './store.js';

const TIMEOUT: unique symbol = Symbol('tier timeout');
type TierValue = Uint8Array | undefined;

function isPromise(v: unknown): v is Promise<TierValue> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** The tiers the cache consults, with the read budget and the write-through. One per cache instance. */
@injectable()
export class CacheTiers {
  /** The tiers, in chain order (empty when no plugin provides `CACHE_TIERS`). */
  readonly list: readonly CacheTier[];
  private readonly budget: number;
  private readonly store: CacheStore;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(
    @multiInject(CACHE_TIERS) @optional() tiers: CacheTier[] | undefined,
    @inject(PLUGIN_OPTIONS) options: CacheOptions,
    @inject(CacheStore) store: CacheStore,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) logger: Logger,
  ) {
    this.list = Object.freeze([...(tiers ?? [])]);
    this.budget = cacheSettings(options).tierTimeoutMs;
    this.store = store;
    this.clock = clock;
    this.logger = logger;
  }

  /**
   * The first valid, fresh entry for `key` in the tiers, in order. A
   * synchronous tier's value is used at once (the result is then
   * synchronous too); Promise-returning tiers are awaited within the
   * `tiers.timeoutMs` budget counted from `now` for all of them together,
   * after which they count as misses (their late values are dropped).
   * A promoted entry's OPT gets `ednsPayloadSize` (the resolver's own).
   */
  lookup(key: string, now: number, ednsPayloadSize: number): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    const tiers = this.list;
    const keyBytes = Buffer.from(key, 'latin1');
    for (let i = 0; i < tiers.length; i++) {
      const v = this.read(tiers[i], keyBytes);
      if (isPromise(v)) return this.lookupAsync(i, v, key, keyBytes, now + this.budget, ednsPayloadSize);
      const entry = this.accept(v, key, now, ednsPayloadSize);
      if (entry !== undefined) return entry;
    }
    return undefined;
  }

  private async lookupAsync(
    first: number,
    pending: Promise<TierValue>,
    key: string,
    keyBytes: Buffer,
    deadline: number,
    ednsPayloadSize: number,
  ): Promise<CacheEntry | undefined> {
    const tiers = this.list;
    for (let i = first; i < tiers.length; i++) {
      let v: TierValue | Promise<TierValue> = i === first ? pending : this.read(tiers[i], keyBytes);
      if (isPromise(v)) {
        const r = await this.within(v, deadline - this.clock.now());
        if (r === TIMEOUT) {
          this.store.stats.tierTimeouts++;
          continue;
        }
        v = r;
      }
      const entry = this.accept(v, key, this.clock.now(), ednsPayloadSize);
      if (entry !== undefined) return entry;
    }
    return undefined;
  }

  /** A tier's `get`, a throw counted as an error and read as a miss. */
  private read(tier: CacheTier, keyBytes: Buffer): TierValue | Promise<TierValue> {
    try {
      return tier.get(keyBytes);
    } catch (err) {
      this.store.stats.tierErrors++;
      this.logger.debug({ err, tier: tier.name }, 'plugin/cache: tier read failed');
      return undefined;
    }
  }

  /** `p`'s value, or TIMEOUT after `ms` (a rejection reads as a miss; a late value or rejection is dropped). */
  private within(p: Promise<TierValue>, ms: number): Promise<TierValue | typeof TIMEOUT> {
    if (ms <= 0) {
      p.catch(() => {});
      return Promise.resolve(TIMEOUT);
    }
    return new Promise((resolve) => {
      let done = false;
      const timer: ClockTimer = this.clock.setTimeout(() => {
        if (done) return;
        done = true;
        resolve(TIMEOUT);
      }, ms);
      p.then(
        (v) => {
          if (done) return;
          done = true;
          this.clock.clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          if (done) return;
          done = true;
          this.clock.clearTimeout(timer);
          this.store.stats.tierErrors++;
          this.logger.debug({ err }, 'plugin/cache: tier read failed');
          resolve(undefined);
        },
      );
    });
  }

  /**
   * Decodes and checks a tier's value: the key asked for, a valid entry,
   * still fresh at `now`, an OPT (if any) holding only EDE options; its
   * payload size becomes ours.
   */
  private accept(value: TierValue, key: string, now: number, ednsPayloadSize: number): CacheEntry | undefined {
    if (value === undefined || value === null) return undefined;
    if (!(value instanceof Uint8Array)) {
      this.store.stats.tierErrors++;
      return undefined;
    }
    const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    try {
      const r = readEntry(buf, 0);
      if (r.next !== buf.length || r.key !== key) throw new Error('not the entry asked for');
      if (now >= r.entry.expiresAt) return undefined; // expired in the tier: a miss, not an error
      if (r.optPayload >= 0) {
        const wire = r.entry.wire; // a copy made by readEntry: ours to patch
        if (!onlyEde(wire, r.optPayload)) throw new Error('OPT record carries options other than EDE');
        wire.writeUInt16BE(ednsPayloadSize, r.optPayload);
      }
      return r.entry;
    } catch (err) {
      this.store.stats.tierErrors++;
      this.logger.debug({ err }, 'plugin/cache: ignoring a tier entry that does not hold up');
      return undefined;
    }
  }

  /** Writes a newly stored entry through to every tier (each `set` must not block; a throw is counted and logged). */
  write(key: string, entry: CacheEntry): void {
    const tiers = this.list;
    if (tiers.length === 0) return;
    const value = serializeEntry(key, entry);
    const keyBytes = Buffer.from(key, 'latin1');
    for (const tier of tiers) {
      try {
        tier.set(keyBytes, value, entry.expiresAt);
      } catch (err) {
        this.store.stats.tierErrors++;
        this.logger.debug({ err, tier: tier.name }, 'plugin/cache: tier write failed');
      }
    }
  }

  /** Passes a flush on to every tier (not awaited; failures are counted and logged). */
  flush(scope: FlushScope): void {
    for (const tier of this.list) {
      const fail = (err: unknown): void => {
        this.store.stats.tierErrors++;
        this.logger.warn({ err, tier: tier.name }, 'plugin/cache: tier flush failed');
      };
      try {
        const r = tier.flush(scope);
        if (isPromise(r)) (r as Promise<void>).catch(fail);
      } catch (err) {
        fail(err);
      }
    }
  }
}

/** True when the OPT record whose CLASS field is at `at` holds only well-formed EDE options (what the cache stores). */
function onlyEde(wire: Buffer, at: number): boolean {
  const start = at + 8;
  const end = start + ((wire[at + 6] << 8) | wire[at + 7]);
  if (end > wire.length) return false;
  for (let q = start; q < end; ) {
    if (q + 4 > end || ((wire[q] << 8) | wire[q + 1]) !== 15) return false;
    q += 4 + ((wire[q + 2] << 8) | wire[q + 3]);
    if (q > end) return false;
  }
  return true;
}
