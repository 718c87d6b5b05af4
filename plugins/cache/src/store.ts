/**
 * The cache store: a `Map` from key to a slot number, the slots' fields in
 * typed arrays (struct of arrays, grown by doubling up to `maxEntries`), the
 * entries' bytes in a slab arena, an eviction policy over the slots, the
 * entry/byte bounds, expiry (lazy on lookup plus an incremental sweep) and
 * flushing. No JS object exists per entry besides the key string (and,
 * once the entry has been hit, a view of its wire bytes, see `views`): a
 * {@link CacheEntry} is built only on the cold paths (`get`, `getRaw`,
 * `entries`, snapshots, serve-stale). Bound in the plugin's scope; other
 * packages see it through core's `CACHE_CONTROL` and `ADMIN_ACTIONS`.
 */
import { Buffer } from 'node:buffer';
import { CLOCK, type Clock, type ClockTimer, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { CoarseClock } from '@heimdall/core/pipeline';
import { BadRequestError } from '@heimdall/core/errors';
import { WireArena } from './arena.js';
import {
  type Analysis,
  analyzeResponse,
  type CacheEntry,
  ENTRY_KINDS,
  ENTRY_OVERHEAD,
  entrySize,
  KIND_NODATA,
  KIND_NXDOMAIN,
  KIND_POSITIVE,
  KIND_SERVFAIL,
} from './entry.js';
import { type CacheOptions, type CacheSettings, cacheSettings } from './options.js';
import { createPolicy, type EvictionPolicy } from './policy.js';
import type { EntryLayout } from './snapshot.js';
import { CacheStats } from './stats.js';
import { copyForQuery, equalsIgnoreCase, KEY_DO, writeTtlsAt } from '@heimdall/core/wire';
import { CacheNameError, flushNameToWire } from './wire.js';

const poolAlloc = (length: number): Buffer => Buffer.allocUnsafe(length);
/** Slots allocated up front (the arrays then double up to maxEntries + 1). */
const INITIAL_SLOTS = 1024;
/** Largest wire length a slot holds (u16 TTL offsets; also the DNS message limit). */
const MAX_WIRE = 0xffff;

/**
 * In-memory store of wire-format responses.
 *
 * Keys are `MessageReader.cacheKey()` plus one flag character (see
 * `cacheKeyOf`); any string works for `setRaw`/`getRaw`, but flushing by
 * name reads the question name from the entry's wire bytes, not the key.
 *
 * Slots: `peek(key)` gives the slot number of a key; the `slot*` accessors,
 * {@link serve}, {@link dropIfDead} and {@link isServeableStale} take it. A
 * slot number is only valid until the next call that can remove or insert
 * entries (insert, setRaw, delete, flush, sweep): never keep one across an
 * `await`; use {@link entryAt} to keep an entry.
 *
 * Cost: lookups are one `Map.get`; inserts may evict (amortised O(1) for
 * every policy); flushes by name/suffix scan all entries (a few ms per
 * 100 000 entries plus the removals, see README).
 */
@injectable()
export class CacheStore {
  /** Settings derived from the options (bounds, TTL clamps, prefetch and stale settings). */
  readonly options: CacheSettings;
  /** Counters (also exported as metrics by the plugin). */
  readonly stats = new CacheStats();
  private readonly map = new Map<string, number>();
  private readonly policy: EvictionPolicy;
  private used = 0;
  /** How long past expiry an entry is kept for serve-stale (0 when disabled). */
  private readonly staleWindow: number;
  private readonly clock: Clock;
  /**
   * The time the middleware reads per query: the clock copied every 10 ms by
   * a timer that runs only while queries arrive (no `Date.now()` per hit).
   * Entries may be served up to 10 ms past their expiry, which no TTL in
   * whole seconds can tell. Shared with the other plugins on this clock.
   */
  readonly coarse: CoarseClock;
  private sweepCursor: Iterator<string> | null = null;
  private sweepTimer: ClockTimer | null = null;
  /** Slabs holding the entries' wire bytes and TTL tables. */
  private readonly arena = new WireArena();
  private readonly bufs: Array<Buffer | undefined>;

  // ---- per-slot fields (struct of arrays) ----
  private capacity = 0;
  /** Slots handed out since the last flush (slots >= this were never used). */
  private highWater = 0;
  private readonly freeSlots: number[] = [];
  private readonly keys: Array<string | undefined> = [];
  /**
   * A view of the wire bytes, made on a slot's first hit and kept while the
   * entry stays put. Why: on Node 20, `Buffer#copy` from an offset inside a
   * larger buffer allocates a temporary `Uint8Array` on every call (+20-30 ns
   * per hit, measured), while copying a whole view does not. Entries that are
   * never hit (most of a large cache) have no view and cost no object.
   */
  private readonly views: Array<Buffer | undefined> = [];
  private slabOf = new Int32Array(0);
  private offOf = new Int32Array(0);
  /** Wire length; the TTL table follows at `offOf + lenOf`. */
  private lenOf = new Uint16Array(0);
  private nameEndOf = new Uint16Array(0);
  private kindOf = new Uint8Array(0);
  private ttlOf = new Uint32Array(0);
  private storedAtOf = new Float64Array(0);
  private expiresAtOf = new Float64Array(0);
  /** Bytes charged against maxBytes. */
  private sizeOf = new Uint32Array(0);
  /** Prefetch: hits in the current run; allocated only when prefetch is configured. */
  private hitsOf = new Uint32Array(0);
  /** Prefetch: epoch ms of the last hit. */
  private lastHitOf = new Float64Array(0);

  /**
   * @param options the plugin's validated options (`PLUGIN_OPTIONS`; outside DI, `parseOptions(cacheOptionsSchema, {...}, 'cache')`).
   * @param clock time source (`CLOCK`): the sweep's timer and the `now` of methods called without one.
   */
  constructor(@inject(PLUGIN_OPTIONS) options: CacheOptions, @inject(CLOCK) clock: Clock) {
    this.options = cacheSettings(options);
    this.policy = createPolicy(this.options.policy, this.options.maxEntries, (slot) => this.keys[slot] as string);
    this.staleWindow = this.options.serveStale?.maxStaleAge ?? 0;
    this.clock = clock;
    this.coarse = CoarseClock.shared(clock);
    this.bufs = this.arena.buffers;
    this.resize(Math.min(INITIAL_SLOTS, this.options.maxEntries + 1));
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

  /** Slots allocated in the per-entry arrays (diagnostics: grows by doubling up to maxEntries + 1). */
  get slotCapacity(): number {
    return this.capacity;
  }

  /** Name of the eviction policy in use. */
  get policyName(): string {
    return this.policy.name;
  }

  /**
   * The slot under `key`, whatever its age (undefined when absent). For the
   * plugin's middleware; other code should use {@link get}/{@link getRaw}.
   */
  peek(key: string): number | undefined {
    return this.map.get(key);
  }

  /** Entry kind code of a slot (`KIND_POSITIVE`…`KIND_SERVFAIL`). */
  slotKind(slot: number): number {
    return this.kindOf[slot];
  }

  /** Entry TTL (s) of a slot. */
  slotTtl(slot: number): number {
    return this.ttlOf[slot];
  }

  /** Epoch ms when the slot's entry was stored. */
  slotStoredAt(slot: number): number {
    return this.storedAtOf[slot];
  }

  /** Epoch ms when the slot's entry stops being fresh. */
  slotExpiresAt(slot: number): number {
    return this.expiresAtOf[slot];
  }

  /**
   * Prefetch bookkeeping (CoreDNS): counts a hit at `now` and returns the
   * number of hits in the current run (a gap of `duration` ms or more
   * restarts the run at 1). Needs prefetch in the options (else returns 0).
   */
  countHit(slot: number, now: number, duration: number): number {
    if (this.hitsOf.length <= slot) return 0;
    const h = now - this.lastHitOf[slot] < duration ? this.hitsOf[slot] + 1 : 1;
    this.hitsOf[slot] = h;
    this.lastHitOf[slot] = now;
    return h;
  }

  /**
   * The hit path: the answer to `request` from a fresh slot, as a new buffer
   * (ID, flags and question letter case from the request, TTLs counted down).
   * Records the hit with the policy and the stats. Returns null when the entry
   * is expired or its question name length differs from the request's
   * (`nameEnd`): the caller treats that as a miss.
   *
   * `folded`: whether the request's question name has ASCII capitals
   * (`ctx.questionNameFolded`). Stored names are lowercase (see `place`), so
   * only then is the request's name copied over the stored one; pass true
   * when unsure.
   *
   * Synchronous; allocates only the returned buffer.
   */
  serve(slot: number, request: Buffer, nameEnd: number, flags: number, now: number, folded = true): Buffer | null {
    if (now >= this.expiresAtOf[slot] || this.nameEndOf[slot] !== nameEnd) return null;
    this.policy.hit(slot);
    const view = this.views[slot] ?? this.makeView(slot);
    const out = copyForQuery(view, request, nameEnd, (flags & KEY_DO) !== 0, true, folded);
    // A clock stepped backwards must not make TTLs grow past what was stored.
    const storedAt = this.storedAtOf[slot];
    writeTtlsAt(out, this.bufs[this.slabOf[slot]] as Buffer, this.offOf[slot], view.length, now > storedAt ? Math.floor((now - storedAt) / 1000) : 0);
    this.stats.hits++;
    const kind = this.kindOf[slot];
    if (kind === KIND_NXDOMAIN || kind === KIND_NODATA) this.stats.negativeHits++;
    return out;
  }

  /** Makes (and keeps) the wire view of a slot: on its first hit, out of the hit path's bytecode. */
  private makeView(slot: number): Buffer {
    const off = this.offOf[slot];
    const view = (this.bufs[this.slabOf[slot]] as Buffer).subarray(off, off + this.lenOf[slot]);
    this.views[slot] = view;
    return view;
  }

  /**
   * A stale answer (RFC 8767) from `entry`: every TTL set to `ttl` (the
   * configured stale answer TTL, 30 s by default). Counts a stale answer.
   */
  serveStale(entry: CacheEntry, request: Buffer, flags: number, ttl: number): Buffer {
    const wire = entry.wire;
    const out = copyForQuery(wire, request, entry.nameEnd, (flags & KEY_DO) !== 0, true);
    for (const o of entry.ttlOffsets) out.writeUInt32BE(ttl, o);
    this.stats.staleAnswers++;
    return out;
  }

  /** True when the entry in `slot` may still be served stale at `now`. */
  isServeableStale(slot: number, now: number): boolean {
    return this.staleWindow > 0 && now < this.expiresAtOf[slot] + this.staleWindow;
  }

  /**
   * Removes the entry in `slot` when it is past expiry and past the stale
   * window (counted as an expired eviction). Returns true when removed.
   */
  dropIfDead(slot: number, now: number): boolean {
    if (now < this.expiresAtOf[slot] + this.staleWindow) return false;
    if (this.keys[slot] !== undefined) {
      this.removeSlot(slot);
      this.stats.expiredEvictions++;
    }
    return true;
  }

  /**
   * The entry in `slot` as a plain object (its `wire` is a view of the
   * store's slab: read or copy it, never write to it). Cold path.
   */
  entryAt(slot: number): CacheEntry {
    const src = this.bufs[this.slabOf[slot]] as Buffer;
    const off = this.offOf[slot];
    const len = this.lenOf[slot];
    const t = off + len;
    const n = (src[t] << 8) | src[t + 1];
    const ttlOffsets = new Array<number>(n);
    for (let i = 0, q = t + 2; i < n; i++, q += 2) ttlOffsets[i] = (src[q] << 8) | src[q + 1];
    return {
      wire: src.subarray(off, off + len),
      nameEnd: this.nameEndOf[slot],
      ttlOffsets,
      kind: ENTRY_KINDS[this.kindOf[slot]],
      ttl: this.ttlOf[slot],
      storedAt: this.storedAtOf[slot],
      expiresAt: this.expiresAtOf[slot],
    };
  }

  /** The fresh entry under `key` (no stats, no policy update), or undefined. Built on each call. */
  get(key: string, now: number = this.clock.now()): CacheEntry | undefined {
    const slot = this.map.get(key);
    return slot !== undefined && now < this.expiresAtOf[slot] ? this.entryAt(slot) : undefined;
  }

  /** The entry under `key` whatever its age (stale ones included), or undefined. For snapshots and L2 caches. Built on each call. */
  getRaw(key: string): CacheEntry | undefined {
    const slot = this.map.get(key);
    return slot !== undefined ? this.entryAt(slot) : undefined;
  }

  /**
   * Stores a copy of `entry` under `key` (replacing any entry there), then
   * evicts until both bounds hold. Returns false (and stores nothing) when the
   * entry alone exceeds `maxBytes`, its wire exceeds 65535 bytes, or it is
   * already past its stale window.
   * For snapshots and L2 caches; the middleware uses {@link insert}.
   */
  setRaw(key: string, entry: CacheEntry, now: number = this.clock.now()): boolean {
    if (now >= entry.expiresAt + this.staleWindow) return false;
    const wire = entry.wire;
    const len = wire.length;
    if (len > MAX_WIRE) return false;
    const size = entrySize(key, entry);
    if (size > this.options.maxBytes) return false;
    // The bytes and the TTL table go into the arena (never a view of someone else's memory).
    const offsets = entry.ttlOffsets;
    const n = offsets.length;
    const foot = len + 2 + 2 * n;
    const off = this.arena.alloc(foot);
    const sid = this.arena.lastSlab;
    const dst = this.bufs[sid] as Buffer;
    wire.copy(dst, off, 0, len);
    let q = off + len;
    dst[q++] = n >>> 8;
    dst[q++] = n & 0xff;
    for (let i = 0; i < n; i++) {
      const o = offsets[i];
      dst[q++] = o >>> 8;
      dst[q++] = o & 0xff;
    }
    this.place(key, sid, off, len, size, entry.nameEnd, kindCode(entry.kind), entry.ttl, entry.storedAt, entry.expiresAt, false);
    return true;
  }

  /**
   * Stores the serialized entry that {@link checkEntry} laid out in `src`
   * (`e`) under `key`: its wire bytes and TTL table are copied once into the
   * arena, straight from `src` (no {@link CacheEntry} is built), and the
   * OPT record's payload size becomes `ednsPayloadSize`. The new slot is
   * never the victim of the eviction this insertion causes, so
   * {@link peek} finds it right after. Returns the slot, or -1 (nothing
   * stored) on the same grounds as {@link setRaw}.
   * For promotions from a cache tier; `src` may be a view that is only
   * valid during this call (LMDB).
   */
  promote(key: string, src: Buffer, e: EntryLayout, now: number, ednsPayloadSize: number): number {
    if (now >= e.expiresAt + this.staleWindow) return -1;
    const len = e.wireLength;
    const n = e.count;
    if (len > MAX_WIRE) return -1;
    const size = ENTRY_OVERHEAD + key.length + len + 2 + 2 * n;
    if (size > this.options.maxBytes) return -1;
    const foot = len + 2 + 2 * n;
    const off = this.arena.alloc(foot);
    const sid = this.arena.lastSlab;
    const dst = this.bufs[sid] as Buffer;
    // A byte loop for a usual answer: Buffer#copy's range checks and native call cost more below a few hundred octets.
    if (len <= 256) for (let i = 0, from = e.wireStart; i < len; i++) dst[off + i] = src[from + i];
    else src.copy(dst, off, e.wireStart, e.wireStart + len);
    // The TTL table (count + offsets): the same layout in both, a few bytes.
    for (let i = 0, from = e.tableStart, to = off + len; i < foot - len; i++) dst[to + i] = src[from + i];
    if (e.optPayload >= 0) {
      dst[off + e.optPayload] = ednsPayloadSize >>> 8;
      dst[off + e.optPayload + 1] = ednsPayloadSize & 0xff;
    }
    return this.place(key, sid, off, len, size, e.nameEnd, e.kind, e.ttl, e.storedAt, e.expiresAt, true);
  }

  /**
   * Points `key`'s slot (a new one, or the one it has, whose old bytes are
   * released) at the entry bytes written at `off` in slab `sid`, then evicts
   * until both bounds hold — never this slot when `protect`. Returns the slot.
   */
  private place(
    key: string,
    sid: number,
    off: number,
    len: number,
    size: number,
    nameEnd: number,
    kind: number,
    ttl: number,
    storedAt: number,
    expiresAt: number,
    protect: boolean,
  ): number {
    let slot = this.map.get(key);
    if (slot !== undefined) {
      this.used += size - this.sizeOf[slot];
      this.releaseBytes(slot);
      this.views[slot] = undefined;
    } else {
      slot = this.takeSlot();
      this.keys[slot] = key;
      this.map.set(key, slot);
      this.policy.insert(slot);
      this.used += size;
      if (this.hitsOf.length > slot) {
        this.hitsOf[slot] = 0;
        this.lastHitOf[slot] = 0;
      }
    }
    // The question name is kept in lowercase (the key's case): a hit whose name has no capitals then needs no
    // name copy (`serve`), and answer names that point at the question follow it. Length octets are never capitals.
    const bytes = this.bufs[sid] as Buffer;
    for (let i = off + 12, end = off + nameEnd; i < end; i++) {
      const c = bytes[i];
      if (c >= 0x41 && c <= 0x5a) bytes[i] = c | 0x20;
    }
    this.slabOf[slot] = sid;
    this.offOf[slot] = off;
    this.lenOf[slot] = len;
    this.nameEndOf[slot] = nameEnd;
    this.kindOf[slot] = kind;
    this.ttlOf[slot] = ttl;
    this.storedAtOf[slot] = storedAt;
    this.expiresAtOf[slot] = expiresAt;
    this.sizeOf[slot] = size;
    this.enforceBounds(protect ? slot : -1);
    return slot;
  }

  /**
   * Analyses `response` (the answer to `request`) with the configured TTL
   * rules and stores it under `key` when cacheable. Counts what was stored.
   * A SERVFAIL never replaces a non-SERVFAIL entry that is still fresh or
   * servable stale.
   * Returns the analysis: the entry when stored (its `wire` is a scratch
   * copy, the store keeps its own), else why not (`not-stored` when the
   * response was cacheable but the store kept its entry or refused it).
   * `ednsPayloadSize` goes into the stored OPT record (the resolver's own, RFC 6891 §6.1.1).
   */
  insert(key: string, response: Buffer, request: Buffer, now: number = this.clock.now(), ednsPayloadSize = 1232): Analysis {
    const analysis = analyzeResponse(response, request, now, this.options, poolAlloc, ednsPayloadSize);
    const entry = analysis.entry;
    if (entry === undefined) return analysis;
    if (entry.kind === 'servfail') {
      // A failure must not wipe out data that can still answer (fresh, or stale under RFC 8767).
      const old = this.map.get(key);
      if (old !== undefined && this.kindOf[old] !== KIND_SERVFAIL && now < this.expiresAtOf[old] + this.staleWindow) return NOT_STORED;
    }
    if (!this.setRaw(key, entry, now)) return NOT_STORED;
    const s = this.stats;
    if (entry.kind === 'positive') s.positiveStored++;
    else if (entry.kind === 'nxdomain') s.nxdomainStored++;
    else if (entry.kind === 'nodata') s.nodataStored++;
    else s.servfailStored++;
    return analysis;
  }

  /** Removes the entry under `key`. Returns true when there was one. */
  delete(key: string): boolean {
    const slot = this.map.get(key);
    if (slot === undefined) return false;
    this.removeSlot(slot);
    return true;
  }

  /** Every `[key, entry]` pair, stale entries included, in no particular order (entries built on the fly). Safe against concurrent deletes. */
  *entries(): IterableIterator<[string, CacheEntry]> {
    for (const [key, slot] of this.map) yield [key, this.entryAt(slot)];
  }

  /** Removes every entry. Returns how many there were. Shrinks the per-slot arrays back to their initial size. */
  flush(): number {
    const n = this.map.size;
    this.map.clear();
    this.policy.clear();
    this.arena.clear();
    this.used = 0;
    this.sweepCursor = null;
    this.keys.length = 0;
    this.views.length = 0;
    this.freeSlots.length = 0;
    this.highWater = 0;
    this.capacity = 0;
    this.resize(Math.min(INITIAL_SLOTS, this.options.maxEntries + 1), true);
    return n;
  }

  /**
   * Removes every entry whose question name is `name` (all types, classes
   * and flag variants; case-insensitive). Throws `BadRequestError` for an
   * invalid name. Returns the number removed.
   */
  flushName(name: string): number {
    const target = wireName(name);
    const len = target.length;
    let removed = 0;
    for (const slot of this.map.values()) {
      if (this.nameEndOf[slot] - 12 === len && equalsIgnoreCase(this.bufs[this.slabOf[slot]] as Buffer, this.offOf[slot] + 12, target, 0, len)) {
        this.removeSlot(slot);
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
    const target = wireName(bare);
    const len = target.length;
    let removed = 0;
    for (const slot of this.map.values()) {
      const w = this.bufs[this.slabOf[slot]] as Buffer;
      const off = this.offOf[slot];
      const start = off + this.nameEndOf[slot] - len;
      if (start < off + 12 || !equalsIgnoreCase(w, start, target, 0, len)) continue;
      // Label alignment: walk the labels from the start of the name.
      let p = off + 12;
      while (p < start) p += w[p] + 1;
      if (p === start) {
        this.removeSlot(slot);
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
  sweep(now: number = this.clock.now(), limit: number = this.options.sweepBatch): number {
    let removed = 0;
    const cursor = this.sweepCursor ?? this.map.keys();
    this.sweepCursor = cursor;
    for (let i = 0; i < limit; i++) {
      const r = cursor.next();
      if (r.done) {
        this.sweepCursor = null;
        break;
      }
      const slot = this.map.get(r.value);
      if (slot === undefined) continue;
      if (now >= this.expiresAtOf[slot] + this.staleWindow) {
        this.removeSlot(slot);
        this.stats.expiredEvictions++;
        removed++;
      } else if (this.arena.isSparse(this.slabOf[slot])) {
        // Compaction: move a survivor out of a mostly-dead slab so it can be freed.
        const src = this.bufs[this.slabOf[slot]] as Buffer;
        const off = this.offOf[slot];
        const foot = this.footprint(src, off, this.lenOf[slot]);
        const to = this.arena.alloc(foot);
        const sid = this.arena.lastSlab;
        src.copy(this.bufs[sid] as Buffer, to, off, off + foot);
        this.arena.release(this.slabOf[slot], foot);
        this.slabOf[slot] = sid;
        this.offOf[slot] = to;
        this.views[slot] = undefined;
      }
    }
    return removed;
  }

  /** Starts the periodic sweep on the store's clock (every `sweepInterval` ms). Idempotent. */
  startSweeping(): void {
    if (this.sweepTimer !== null) return;
    const clock = this.clock;
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
    if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Bytes an entry occupies in its slab: wire, then the TTL table (u16 count + u16 each). */
  private footprint(src: Buffer, off: number, len: number): number {
    const t = off + len;
    return len + 2 + 2 * ((src[t] << 8) | src[t + 1]);
  }

  private releaseBytes(slot: number): void {
    const sid = this.slabOf[slot];
    const src = this.bufs[sid];
    if (src !== undefined) this.arena.release(sid, this.footprint(src, this.offOf[slot], this.lenOf[slot]));
  }

  private removeSlot(slot: number): void {
    this.map.delete(this.keys[slot] as string);
    this.policy.remove(slot);
    this.freeSlot(slot);
  }

  /** Returns an unlinked slot's bytes, charge and number. */
  private freeSlot(slot: number): void {
    this.releaseBytes(slot);
    this.used -= this.sizeOf[slot];
    this.keys[slot] = undefined;
    this.views[slot] = undefined;
    this.freeSlots.push(slot);
  }

  private takeSlot(): number {
    if (this.freeSlots.length > 0) return this.freeSlots.pop() as number;
    if (this.highWater === this.capacity) {
      const cap = this.capacity;
      this.resize(Math.max(cap + 1, Math.min(cap * 2, this.options.maxEntries + 1)));
    }
    // Keep the JS arrays dense (filled in slot order): a store far past their
    // length would turn them into slow dictionary-mode arrays.
    const slot = this.highWater++;
    this.keys[slot] = undefined;
    this.views[slot] = undefined;
    return slot;
  }

  /** Grows (or, with `reset`, reallocates) the per-slot arrays to `capacity` slots. */
  private resize(capacity: number, reset = false): void {
    const grow = <T extends Int32Array | Uint32Array | Uint16Array | Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(capacity);
      if (!reset) b.set(a);
      return b;
    };
    this.slabOf = grow(this.slabOf, (n) => new Int32Array(n));
    this.offOf = grow(this.offOf, (n) => new Int32Array(n));
    this.lenOf = grow(this.lenOf, (n) => new Uint16Array(n));
    this.nameEndOf = grow(this.nameEndOf, (n) => new Uint16Array(n));
    this.kindOf = grow(this.kindOf, (n) => new Uint8Array(n));
    this.ttlOf = grow(this.ttlOf, (n) => new Uint32Array(n));
    this.storedAtOf = grow(this.storedAtOf, (n) => new Float64Array(n));
    this.expiresAtOf = grow(this.expiresAtOf, (n) => new Float64Array(n));
    this.sizeOf = grow(this.sizeOf, (n) => new Uint32Array(n));
    if (this.options.prefetch !== null) {
      this.hitsOf = grow(this.hitsOf, (n) => new Uint32Array(n));
      this.lastHitOf = grow(this.lastHitOf, (n) => new Float64Array(n));
    }
    this.policy.resize(capacity);
    this.capacity = capacity;
  }

  /** Evicts until both bounds hold. `keep` (a slot, or -1): if the policy picks it, it is held out and put back after. */
  private enforceBounds(keep: number): void {
    const { maxEntries, maxBytes } = this.options;
    let held = -1;
    while (this.map.size > maxEntries || this.used > maxBytes) {
      const victim = this.policy.evict();
      if (victim < 0) break;
      if (victim === keep) {
        held = victim;
        continue;
      }
      this.map.delete(this.keys[victim] as string);
      this.freeSlot(victim);
      this.stats.evictions++;
    }
    if (held >= 0) this.policy.insert(held);
  }
}

function kindCode(kind: CacheEntry['kind']): number {
  switch (kind) {
    case 'positive':
      return KIND_POSITIVE;
    case 'nxdomain':
      return KIND_NXDOMAIN;
    case 'nodata':
      return KIND_NODATA;
    default:
      return KIND_SERVFAIL;
  }
}

function unref(timer: ClockTimer): void {
  if (typeof timer === 'object' && timer !== null && 'unref' in timer && typeof timer.unref === 'function') timer.unref();
}

const NOT_STORED: Analysis = Object.freeze({ reason: 'not-stored' as const });

/** A flush name in lowercased wire form; a bad name is the caller's mistake (admin API: 400). */
function wireName(name: string): Buffer {
  try {
    return flushNameToWire(name);
  } catch (e) {
    if (e instanceof CacheNameError) throw new BadRequestError(e.message);
    throw e;
  }
}
