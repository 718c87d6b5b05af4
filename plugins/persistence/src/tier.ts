/**
 * The disk tier (core's `CacheTier`, name `disk`): synchronous reads
 * straight from the memory map, writes buffered and committed in bounded
 * batches off the hot path.
 */
import { Buffer } from 'node:buffer';
import { CLOCK, type CacheTier, type Clock, type ClockTimer, type FlushScope, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { CorruptValues } from './corrupt.js';
import { type OpenEnv, PersistenceEnv } from './env.js';
import { AGE_PREFIX, ageKey, ageValue, EXPIRES_AT, entryValue, HEADER, intact, keyNameUnder, nameToLowerWire, readF64, WRITTEN_AT } from './layout.js';
import { EVICT_ABOVE, type PersistenceOptions, REFUSE_ABOVE } from './options.js';
import { PersistenceStats } from './stats.js';

/** LMDB's key limit in lmdb-js builds is larger, but a DNS key is at most 255 + 5 bytes. */
const MAX_KEY = 511;

interface PendingWrite {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly expiresAt: number;
  readonly writtenAt: number;
}

/** The tier contributed under `CACHE_TIERS`. One per plugin instance. */
@injectable()
export class DiskTier implements CacheTier {
  readonly name = 'disk';
  private readonly env: PersistenceEnv;
  private readonly stats: PersistenceStats;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly corrupt: CorruptValues;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly maxPending: number;
  private readonly capBytes: number;
  /** Writes not yet handed to LMDB, by key (a rewrite replaces the waiting one). */
  private readonly pending = new Map<string, PendingWrite>();
  private timer: ClockTimer | null = null;
  private committing: Promise<void> | null = null;
  /** Above {@link REFUSE_ABOVE} of the cap: new writes are dropped until eviction frees room. */
  private refusing = false;
  private lastErrorLog = 0;
  /** Called after a commit leaves the store above the eviction threshold (the maintenance tick hooks in). */
  onPressure: (() => void) | null = null;

  constructor(
    @inject(PersistenceEnv) env: PersistenceEnv,
    @inject(PersistenceStats) stats: PersistenceStats,
    @inject(PLUGIN_OPTIONS) options: PersistenceOptions,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(CorruptValues) corrupt: CorruptValues,
  ) {
    this.env = env;
    this.stats = stats;
    this.clock = clock;
    this.logger = logger;
    this.corrupt = corrupt;
    this.batchSize = options.batchSize;
    this.flushIntervalMs = options.flushIntervalMs;
    this.maxPending = options.maxPendingWrites;
    this.capBytes = options.maxSizeMb * 1024 * 1024;
  }

  /**
   * The entry stored under `key` if it is still fresh and intact: a view of
   * lmdb-js's read buffer (no allocation for the bytes, no copy into JS
   * heap), valid until the next read of this environment — the cache
   * decodes it at once. A value that fails its checksum (changed on disk,
   * or stored under another key) is a miss, counted in `corrupt_total`,
   * logged, and removed in the background.
   */
  get(key: Uint8Array): Uint8Array | undefined {
    const env = this.env.env;
    if (env === null || key.length === 0 || key.length > MAX_KEY) return undefined;
    let v: Uint8Array | undefined;
    try {
      v = env.entries.getBinaryFast(key as Buffer);
    } catch (err) {
      this.stats.readErrors++;
      this.stats.misses++;
      this.logError(err, 'read failed');
      return undefined;
    }
    if (v === undefined) {
      this.stats.misses++;
      return undefined;
    }
    const length = v.length;
    // Expired (as far as the header says): a miss, checked by no one — the sweep removes it.
    if (length >= HEADER && readF64(v, EXPIRES_AT) <= this.clock.now()) {
      this.stats.misses++;
      return undefined;
    }
    if (!intact(key, v)) {
      this.stats.misses++;
      this.removeCorrupt(key);
      return undefined;
    }
    if (length === HEADER) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    return v.subarray(HEADER, length);
  }

  /** Counts, logs and removes (once its write transaction re-checked it) the corrupt value under `key`. */
  private removeCorrupt(key: Uint8Array): void {
    const env = this.env.env;
    if (env === null) return;
    const k = Buffer.from(key);
    this.corrupt.remove('entries', k.toString('hex'), () => env.entries.transaction(() => removeIfCorrupt(env, k)));
  }

  /** Counts a corrupt `entries` value found (and removed) inside a write transaction. */
  private readonly foundCorrupt = (key: Uint8Array): void => this.corrupt.found('entries', Buffer.from(key).toString('hex'));

  /** Queues an entry for the next batch (never blocks; drops and counts when the buffer or the store is full). */
  set(key: Uint8Array, entry: Uint8Array, expiresAt: number): void {
    const now = this.clock.now();
    if (!(expiresAt > now)) return;
    if (this.env.env === null || this.refusing || this.pending.size >= this.maxPending || key.length === 0 || key.length > MAX_KEY) {
      this.stats.droppedWrites++;
      return;
    }
    const value = entryValue(key, entry, expiresAt, now);
    const k = Buffer.from(key);
    const id = k.latin1Slice(0, k.length);
    this.pending.delete(id);
    this.pending.set(id, { key: k, value, expiresAt, writtenAt: now });
    if (this.pending.size >= this.batchSize) this.schedule(0);
    else if (this.timer === null) this.schedule(this.flushIntervalMs);
  }

  /** Writes waiting in memory. */
  get pendingWrites(): number {
    return this.pending.size;
  }

  private schedule(ms: number): void {
    if (this.committing !== null) return; // the running commit reschedules when it ends
    if (this.timer !== null) {
      if (ms > 0) return;
      this.clock.clearTimeout(this.timer);
    }
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.commit();
    }, ms);
  }

  /** Commits one batch (at most `batchSize` writes, oldest first) in one LMDB transaction. */
  private commit(): Promise<void> {
    if (this.committing !== null) return this.committing;
    const env = this.env.env;
    if (env === null || this.pending.size === 0) return Promise.resolve();
    const batch: PendingWrite[] = [];
    for (const [id, w] of this.pending) {
      batch.push(w);
      this.pending.delete(id);
      if (batch.length >= this.batchSize) break;
    }
    this.committing = env.entries
      .transaction(() => writeBatch(env, batch, this.foundCorrupt))
      .then(
        (written) => {
          this.stats.writes += written;
          this.stats.batches++;
        },
        (err: unknown) => {
          this.stats.writeErrors += batch.length;
          this.logError(err, `a batch of ${batch.length} writes failed`);
        },
      )
      .finally(() => {
        this.committing = null;
        this.checkSize();
        if (this.pending.size > 0) this.schedule(this.pending.size >= this.batchSize ? 0 : this.flushIntervalMs);
      });
    return this.committing;
  }

  /** Commits everything waiting, and waits for the removals of corrupt values (stop, tests). */
  async drain(): Promise<void> {
    if (this.timer !== null) {
      this.clock.clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.committing !== null || this.pending.size > 0) {
      await (this.committing ?? this.commit());
      if (this.timer !== null) {
        this.clock.clearTimeout(this.timer);
        this.timer = null;
      }
    }
    await this.corrupt.settled();
  }

  /** Drops what is waiting (the environment is gone). */
  discard(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.stats.droppedWrites += this.pending.size;
    this.pending.clear();
  }

  /** Re-reads the size of the store: refuses writes above 95 % of the cap, reports pressure above 80 %. */
  checkSize(): void {
    if (this.env.env === null) return;
    let u: { usedBytes: number; fileBytes: number; entries: number };
    try {
      u = this.env.usage();
    } catch {
      return;
    }
    this.stats.usedBytes = u.usedBytes;
    this.stats.fileBytes = u.fileBytes;
    this.stats.entries = u.entries;
    const refusing = u.usedBytes >= REFUSE_ABOVE * this.capBytes;
    if (refusing && !this.refusing)
      this.logger.warn(
        { usedBytes: u.usedBytes, capBytes: this.capBytes },
        'plugin/persistence: store at 95 % of maxSizeMb; dropping new entries until eviction frees room',
      );
    this.refusing = refusing;
    if (u.usedBytes > EVICT_ABOVE * this.capBytes) this.onPressure?.();
  }

  /** Whether new writes are refused (store above 95 % of its cap). */
  get full(): boolean {
    return this.refusing;
  }

  /**
   * Removes entries: everything, one name (every type, class and flag
   * variant: a range of keys), or a name and everything below it (a scan
   * of the keys in bounded chunks). Writes still waiting that match are
   * dropped too. Resolves when done.
   */
  async flush(scope: FlushScope): Promise<void> {
    let match: (key: Uint8Array) => boolean;
    let prefix: Buffer | null = null;
    if ('all' in scope) match = () => true;
    else if ('name' in scope) {
      const wire = nameToLowerWire(scope.name);
      prefix = wire;
      match = (key) => key.length === wire.length + 5 && Buffer.compare(wire, Buffer.from(key.buffer, key.byteOffset, wire.length)) === 0;
    } else {
      const wire = nameToLowerWire(scope.suffix.startsWith('*.') ? scope.suffix.slice(2) : scope.suffix);
      match = (key) => keyNameUnder(key, wire);
    }
    for (const [id, w] of this.pending) if (match(w.key)) this.pending.delete(id);
    const env = this.env.env;
    if (env === null) return;
    if ('all' in scope) {
      const removed = await env.entries.transaction(() => {
        const n = (env.entries.getStats() as { entryCount: number }).entryCount;
        env.entries.clearSync();
        env.age.clearSync();
        return n;
      });
      this.stats.flushed += removed;
      this.checkSize();
      return;
    }
    // Keys in order, in chunks; each chunk's deletions are one transaction.
    const chunk = 2000;
    let start: Buffer | undefined = prefix ?? undefined;
    for (;;) {
      const live = this.env.env;
      if (live === null) return;
      const keys: Buffer[] = [];
      let last: Buffer | undefined;
      let seen = 0;
      let done = false;
      for (const k of live.entries.getKeys({ start, limit: chunk }) as Iterable<Buffer>) {
        seen++;
        if (prefix !== null && (k.length < prefix.length || Buffer.compare(prefix, k.subarray(0, prefix.length)) !== 0)) {
          done = true;
          break;
        }
        last = Buffer.from(k);
        if (match(last)) keys.push(last);
      }
      if (keys.length > 0) this.stats.flushed += await live.entries.transaction(() => removeEntries(live, keys, null, undefined, this.foundCorrupt));
      if (done || seen < chunk || last === undefined) return;
      // Next chunk: from just after the last key seen.
      start = Buffer.concat([last, Buffer.from([0])]);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private logError(err: unknown, what: string): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = now;
    this.logger.warn({ err }, `plugin/persistence: ${what}`);
  }
}

/**
 * Inside a write transaction: stores each write and moves its age-index
 * entry. A corrupt value in the way is replaced (and reported to
 * `onCorrupt`): its header's writtenAt cannot be trusted. Returns how many
 * were stored.
 */
function writeBatch(env: OpenEnv, batch: readonly PendingWrite[], onCorrupt: (key: Uint8Array) => void): number {
  let written = 0;
  for (const w of batch) {
    try {
      const old = env.entries.getBinaryFast(w.key);
      if (old !== undefined) {
        const ok = intact(w.key, old);
        const oldWritten = old.length >= HEADER ? readF64(old, WRITTEN_AT) : Number.NaN;
        if (ok && oldWritten > w.writtenAt) continue; // another process stored a newer answer meanwhile
        if (!ok) onCorrupt(w.key);
        // (A corrupt writtenAt names no age key of this entry, or the right one: removing it is safe either way.)
        if (old.length >= HEADER) env.age.removeSync(ageKey(oldWritten, w.key));
      }
      env.entries.putSync(w.key, w.value);
      const ak = ageKey(w.writtenAt, w.key);
      env.age.putSync(ak, ageValue(ak, w.expiresAt));
      written++;
    } catch {
      // one bad write does not spoil the batch
    }
  }
  return written;
}

/**
 * Inside a write transaction: removes the value under `key` (and the age
 * record its header names) if it still fails its checksum — a fresh write
 * that replaced it since it was read is kept. Returns whether it removed.
 */
export function removeIfCorrupt(env: OpenEnv, key: Buffer): boolean {
  const cur = env.entries.getBinaryFast(key);
  if (cur === undefined || intact(key, cur)) return false;
  // A corrupt writtenAt names no age record of this key (the orphan is removed when the sweep or eviction reaches it) or the right one.
  if (cur.length >= HEADER) env.age.removeSync(ageKey(readF64(cur, WRITTEN_AT), key));
  env.entries.removeSync(key);
  return true;
}

/**
 * Inside a write transaction: removes these entries and their age-index
 * entries. With `writtenAt` given (from the age index), an entry is removed
 * only when it is still that write (not rewritten since). A corrupt entry
 * is removed whatever its header says, reported to `onCorrupt` and not
 * counted. Returns how many entries were removed.
 */
export function removeEntries(
  env: OpenEnv,
  keys: readonly Buffer[],
  writtenAt: readonly number[] | null,
  ageKeys: readonly Buffer[] | undefined,
  onCorrupt: (key: Uint8Array) => void,
): number {
  let removed = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const cur = env.entries.getBinaryFast(key);
    if (ageKeys !== undefined) env.age.removeSync(ageKeys[i]);
    if (cur === undefined) continue;
    if (!intact(key, cur)) {
      removeIfCorrupt(env, key);
      onCorrupt(key);
      continue;
    }
    if (cur.length < HEADER) continue;
    const curWritten = readF64(cur, WRITTEN_AT);
    if (writtenAt !== null && curWritten !== writtenAt[i]) continue;
    if (ageKeys === undefined) env.age.removeSync(ageKey(curWritten, key));
    env.entries.removeSync(key);
    removed++;
  }
  return removed;
}

export { AGE_PREFIX };
