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
 * With serve-stale on, an expired entry within the stale window is taken
 * too, as a stale L1 entry would be (RFC 8767: the chain is tried, the
 * stale answer goes out when it fails or is slow); so that tiers keep such
 * entries, the time a tier is given with each write is the entry's expiry
 * plus the stale window.
 *
 * The hit path checks the value in place ({@link checkEntry}: no
 * allocation) and copies it once, into the L1 slot it is served from: a
 * tier's value may be a view that is only valid until the next read of
 * that tier (LMDB).
 */
import { Buffer } from 'node:buffer';
import { CACHE_TIERS, type CacheTier, CLOCK, type Clock, type FlushScope, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable, multiInject, optional } from '@heimdall/core/di';
import { Deadlines } from '@heimdall/core/pipeline';
import { type CacheEntry, KIND_SERVFAIL } from './entry.js';
import { type CacheOptions, cacheSettings } from './options.js';
import { checkEntry, EntryLayout, serializeEntry } from './snapshot.js';
import { CacheStore } from './store.js';

/** {@link CacheTiers.lookup}: no tier had a usable entry. (A fresh one is reported by its L1 slot number, >= 0.) */
export const TIER_NONE = -1;
/** {@link CacheTiers.lookup}: an expired entry within the serve-stale window is now in L1 under the key (and no tier had a fresh one). */
export const TIER_STALE = -2;

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
  /** How long past expiry an entry may still answer stale (0: serve-stale off). */
  private readonly staleWindow: number;
  /** Scratch for {@link checkEntry} (lookups are synchronous up to it). */
  private readonly layout = new EntryLayout();
  /** The read budgets of the lookups in flight, on one timer. */
  private readonly deadlines: Deadlines;
  /** Key scratch buffers by length ({@link keyBytes}). */
  private readonly scratch: Array<Buffer | undefined> = [];

  constructor(
    @multiInject(CACHE_TIERS) @optional() tiers: CacheTier[] | undefined,
    @inject(PLUGIN_OPTIONS) options: CacheOptions,
    @inject(CacheStore) store: CacheStore,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) logger: Logger,
  ) {
    this.list = Object.freeze([...(tiers ?? [])]);
    const settings = cacheSettings(options);
    this.budget = settings.tierTimeoutMs;
    this.staleWindow = settings.serveStale?.maxStaleAge ?? 0;
    this.store = store;
    this.clock = clock;
    this.logger = logger;
    this.deadlines = new Deadlines(clock);
  }

  /**
   * Consults the tiers in order for `key` and promotes what they hold into
   * L1: the first valid, fresh entry ends the search, and its L1 slot number
   * is returned (the promotion never evicts its own slot); with serve-stale
   * on, an expired one within the stale window is promoted too (unless L1
   * holds a later one) and the search goes on for a fresh one
   * ({@link TIER_STALE} when none comes; {@link TIER_NONE} for nothing).
   * From the Promise form, a slot number only says "fresh": other work ran
   * meanwhile, look the key up again. Synchronous tiers are read at once
   * (the result is then synchronous too); Promise-returning tiers are
   * awaited within the `tiers.timeoutMs` budget counted from `now` for all
   * of them together, after which they count as misses (their late values
   * are dropped). A promoted entry's OPT gets `ednsPayloadSize` (the
   * resolver's own).
   */
  lookup(key: string, now: number, ednsPayloadSize: number): number | Promise<number> {
    const tiers = this.list;
    const keyBytes = this.keyBytes(key);
    let found = TIER_NONE;
    const deadline = now + this.budget;
    for (let i = 0; i < tiers.length; i++) {
      const v = this.read(tiers[i], keyBytes, deadline);
      // The scratch key is reused by the next lookup: the asynchronous path keeps its own copy.
      if (isPromise(v)) return this.lookupAsync(i, v, key, Buffer.from(keyBytes), deadline, ednsPayloadSize, found);
      const r = this.accept(v, key, keyBytes, now, ednsPayloadSize);
      if (r >= 0) return r;
      if (r === TIER_STALE) found = r;
    }
    return found;
  }

  private async lookupAsync(
    first: number,
    pending: Promise<TierValue>,
    key: string,
    keyBytes: Buffer,
    deadline: number,
    ednsPayloadSize: number,
    found: number,
  ): Promise<number> {
    const tiers = this.list;
    for (let i = first; i < tiers.length; i++) {
      const tier = tiers[i];
      let v: TierValue | Promise<TierValue> = i === first ? pending : this.read(tier, keyBytes, deadline);
      if (isPromise(v)) {
        // A tier that settles by the deadline itself is awaited as is.
        const r = tier.settlesByDeadline === true ? await v : await this.within(v, deadline);
        if (r === TIMEOUT) {
          this.store.stats.tierTimeouts++;
          continue;
        }
        v = r;
      }
      const r = this.accept(v, key, keyBytes, this.clock.now(), ednsPayloadSize);
      if (r >= 0) return r;
      if (r === TIER_STALE) found = r;
    }
    return found;
  }

  /**
   * `key`'s octets in a scratch buffer of exactly its length, reused by the
   * next lookup (no allocation on the hit path). Tiers may use the key only
   * during `get` (core's `CacheTier` contract).
   */
  private keyBytes(key: string): Buffer {
    const n = key.length;
    let b = this.scratch[n];
    if (b === undefined) {
      b = Buffer.allocUnsafeSlow(n);
      this.scratch[n] = b;
    }
    b.write(key, 0, n, 'latin1');
    return b;
  }

  /** A tier's `get`, a throw counted as an error and read as a miss. */
  private read(tier: CacheTier, keyBytes: Buffer, deadline: number): TierValue | Promise<TierValue> {
    try {
      return tier.get(keyBytes, deadline);
    } catch (err) {
      this.store.stats.tierErrors++;
      this.logger.debug({ err, tier: tier.name }, 'plugin/cache: tier read failed');
      return undefined;
    }
  }

  /** `p`'s value, or TIMEOUT at `deadline` (epoch ms; a rejection reads as a miss; a late value or rejection is dropped). */
  private within(p: Promise<TierValue>, deadline: number): Promise<TierValue | typeof TIMEOUT> {
    if (deadline <= this.clock.now()) {
      p.catch(() => {});
      return Promise.resolve(TIMEOUT);
    }
    return new Promise((resolve) => {
      // One shared timer for every read in flight (no setTimeout/clearTimeout per read).
      const d = this.deadlines.add(deadline, () => resolve(TIMEOUT));
      if (d === null) {
        p.catch(() => {});
        resolve(TIMEOUT);
        return;
      }
      p.then(
        (v) => {
          if (d.done) return;
          d.finish();
          resolve(v);
        },
        (err: unknown) => {
          if (d.done) return;
          d.finish();
          this.store.stats.tierErrors++;
          this.logger.debug({ err }, 'plugin/cache: tier read failed');
          resolve(undefined);
        },
      );
    });
  }

  /**
   * Checks a tier's value in place (the key asked for, a valid entry, an OPT
   * (if any) holding only EDE options) and promotes it into L1 when it is
   * fresh at `now`, or (serve-stale on) expired within the stale window and
   * later than what L1 holds (unless that is a SERVFAIL). The check
   * allocates nothing (unless the value is not a Buffer); the promotion
   * copies the entry once, into its L1 slot. Returns the slot of a fresh
   * entry, {@link TIER_STALE} or {@link TIER_NONE}.
   */
  private accept(value: TierValue, key: string, keyBytes: Buffer, now: number, ednsPayloadSize: number): number {
    if (value === undefined || value === null) return TIER_NONE;
    if (!(value instanceof Uint8Array)) {
      this.store.stats.tierErrors++;
      return TIER_NONE;
    }
    // lmdb-js hands out Buffers (plain Uint8Arrays only for large values): wrap only those.
    const buf = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const e = this.layout;
    let why: string | null = null;
    if (!checkEntry(buf, 0, e)) why = e.error;
    else if (e.next !== buf.length || !sameKey(buf, e.keyStart, e.keyLength, keyBytes)) why = 'not the entry asked for';
    else if (e.optPayload >= 0 && !onlyEde(buf, e.wireStart + e.optPayload, e.wireStart + e.wireLength)) why = 'OPT record carries options other than EDE';
    if (why !== null) {
      this.store.stats.tierErrors++;
      this.logger.debug({ err: new Error(why) }, 'plugin/cache: ignoring a tier entry that does not hold up');
      return TIER_NONE;
    }
    const store = this.store;
    if (now >= e.expiresAt) {
      // Expired in the tier: a miss (not an error), unless serve-stale can use it.
      if (this.staleWindow === 0 || now >= e.expiresAt + this.staleWindow || e.kind === KIND_SERVFAIL) return TIER_NONE;
      const current = store.peek(key);
      if (current !== undefined && store.slotKind(current) !== KIND_SERVFAIL && store.slotExpiresAt(current) >= e.expiresAt) return TIER_NONE;
      return store.promote(key, buf, e, now, ednsPayloadSize) < 0 ? TIER_NONE : TIER_STALE;
    }
    // A tier's SERVFAIL must not replace an L1 entry that can still answer stale.
    if (e.kind === KIND_SERVFAIL && store.peek(key) !== undefined) return TIER_NONE;
    const slot = store.promote(key, buf, e, now, ednsPayloadSize);
    return slot < 0 ? TIER_NONE : slot;
  }

  /** Writes a newly stored entry through to every tier (each `set` must not block; a throw is counted and logged). */
  write(key: string, entry: CacheEntry): void {
    const tiers = this.list;
    if (tiers.length === 0) return;
    const value = serializeEntry(key, entry);
    const keyBytes = Buffer.from(key, 'latin1');
    // Kept for serve-stale after it expires (a stale SERVFAIL is never served).
    const keepUntil = entry.kind === 'servfail' ? entry.expiresAt : entry.expiresAt + this.staleWindow;
    for (const tier of tiers) {
      try {
        tier.set(keyBytes, value, keepUntil);
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

/** True when `buf[start..start+length)` is `key`. */
function sameKey(buf: Buffer, start: number, length: number, key: Buffer): boolean {
  if (length !== key.length) return false;
  for (let i = 0; i < length; i++) if (buf[start + i] !== key[i]) return false;
  return true;
}

/** True when the OPT record whose CLASS field is at `at` (a wire ending at `wireEnd`) holds only well-formed EDE options (what the cache stores). */
function onlyEde(wire: Buffer, at: number, wireEnd: number): boolean {
  const start = at + 8;
  const end = start + ((wire[at + 6] << 8) | wire[at + 7]);
  if (end > wireEnd) return false;
  for (let q = start; q < end; ) {
    if (q + 4 > end || ((wire[q] << 8) | wire[q + 1]) !== 15) return false;
    q += 4 + ((wire[q + 2] << 8) | wire[q + 3]);
    if (q > end) return false;
  }
  return true;
}
