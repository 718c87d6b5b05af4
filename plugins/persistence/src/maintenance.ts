/**
 * The periodic maintenance tick (every `sweepIntervalMs`, at most
 * `sweepBatch` index entries examined per tick): re-reads the store's size;
 * above 80 % of the cap evicts the oldest entries (age index order) until
 * under 70 %, ticking again soon while it is over; otherwise removes expired
 * entries, resuming where the previous tick stopped; and forgets expired
 * state records. Every worker sharing the environment runs it: removals are
 * checked against the entry actually stored, so two sweepers never remove
 * a rewritten entry.
 */
import { CLOCK, type Clock, type ClockTimer, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { type OpenEnv, PersistenceEnv } from './env.js';
import { AGE_PREFIX, ageKeyTime, readF64 } from './layout.js';
import { EVICT_ABOVE, EVICT_DOWN_TO, type PersistenceOptions } from './options.js';
import { PersistenceStats } from './stats.js';
import { DiskTier, removeEntries } from './tier.js';

/** While evicting, the next tick comes this soon (ms). */
const EVICT_AGAIN_MS = 50;

@injectable()
export class Maintenance {
  private readonly env: PersistenceEnv;
  private readonly tier: DiskTier;
  private readonly stats: PersistenceStats;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly interval: number;
  private readonly batch: number;
  private readonly capBytes: number;
  private timer: ClockTimer | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  /** Where the expired-entry sweep resumes (an age key), or undefined for the start. */
  private cursor: Buffer | undefined;

  constructor(
    @inject(PersistenceEnv) env: PersistenceEnv,
    @inject(DiskTier) tier: DiskTier,
    @inject(PersistenceStats) stats: PersistenceStats,
    @inject(PLUGIN_OPTIONS) options: PersistenceOptions,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) logger: Logger,
  ) {
    this.env = env;
    this.tier = tier;
    this.stats = stats;
    this.clock = clock;
    this.logger = logger;
    this.interval = options.sweepIntervalMs;
    this.batch = options.sweepBatch;
    this.capBytes = options.maxSizeMb * 1024 * 1024;
  }

  start(): void {
    this.stopped = false;
    this.tier.onPressure = () => this.soon();
    this.tier.checkSize();
    this.schedule(this.interval);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.tier.onPressure = null;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, ms);
  }

  /** Asks for a tick soon (the store went over the eviction threshold). */
  private soon(): void {
    if (this.running === null) this.schedule(EVICT_AGAIN_MS);
  }

  /** One tick: evict or sweep (bounded), then schedule the next. Resolves when its transaction committed. */
  tick(): Promise<void> {
    if (this.running !== null) return this.running;
    this.running = this.work()
      .catch((err: unknown) => this.logger.warn({ err }, 'plugin/persistence: maintenance tick failed'))
      .then((again) => {
        this.running = null;
        this.schedule(again === true ? EVICT_AGAIN_MS : this.interval);
      });
    return this.running;
  }

  /** Returns true when the store is still over the eviction threshold. */
  private async work(): Promise<boolean> {
    const env = this.env.env;
    if (env === null) return false;
    const u = this.env.usage();
    if (u.usedBytes > EVICT_ABOVE * this.capBytes && u.entries > 0) {
      // Oldest first, as many as should bring usage under 70 %, at most sweepBatch.
      const perEntry = u.usedBytes / u.entries;
      const want = Math.min(this.batch, Math.max(1, Math.ceil((u.usedBytes - EVICT_DOWN_TO * this.capBytes) / perEntry)));
      const keys: Buffer[] = [];
      const ageKeys: Buffer[] = [];
      const written: number[] = [];
      for (const { key } of env.age.getRange({ limit: want }) as Iterable<{ key: Buffer }>) {
        const k = Buffer.from(key);
        ageKeys.push(k);
        keys.push(k.subarray(AGE_PREFIX));
        written.push(ageKeyTime(k));
      }
      if (keys.length === 0) return false;
      const removed = await env.entries.transaction(() => removeEntries(env, keys, written, ageKeys));
      this.stats.evictions += removed;
      this.tier.checkSize();
      return this.stats.usedBytes > EVICT_ABOVE * this.capBytes;
    }
    // Expired entries, resuming at the cursor.
    const now = this.clock.now();
    const keys: Buffer[] = [];
    const ageKeys: Buffer[] = [];
    const written: number[] = [];
    let seen = 0;
    let last: Buffer | undefined;
    for (const { key, value } of env.age.getRange({ start: this.cursor, limit: this.batch }) as Iterable<{ key: Buffer; value: Buffer }>) {
      seen++;
      last = Buffer.from(key);
      if (value.length === 8 && readF64(value, 0) > now) continue;
      ageKeys.push(last);
      keys.push(last.subarray(AGE_PREFIX));
      written.push(ageKeyTime(last));
    }
    this.cursor = seen < this.batch || last === undefined ? undefined : Buffer.concat([last, Buffer.from([0])]);
    if (keys.length > 0) this.stats.expiredRemoved += await env.entries.transaction(() => removeEntries(env, keys, written, ageKeys));
    await this.sweepState(env, now);
    this.tier.checkSize();
    return false;
  }

  /** Forgets state records past their `ttlMs` (and old deletion markers), at most sweepBatch per tick. */
  private async sweepState(env: OpenEnv, now: number): Promise<void> {
    const gone: string[] = [];
    for (const { key, value } of env.state.getRange({ limit: this.batch }) as Iterable<{ key: string; value: unknown }>) {
      const e = (value as { e?: unknown } | null)?.e;
      if (typeof e === 'number' && e <= now) gone.push(key);
    }
    if (gone.length === 0) return;
    await env.state.transaction(() => {
      for (const key of gone) {
        const e = (env.state.get(key) as { e?: unknown } | undefined)?.e;
        if (typeof e === 'number' && e <= now) env.state.removeSync(key);
      }
    });
  }
}
