/**
 * The periodic maintenance tick (every `sweepIntervalMs`, at most
 * `sweepBatch` index entries examined per tick): re-reads the store's size;
 * above 80 % of the cap evicts the oldest entries (age index order) until
 * under 70 %, ticking again soon while it is over; otherwise removes expired
 * entries, resuming where the previous tick stopped; and forgets expired
 * state records.
 *
 * One maintenance owner per environment. Every worker sharing the
 * environment ticks, but each tick first consults a lease in the `meta`
 * database (`maintenance-lease`: `{ pid, token, at, until }`, epoch ms of
 * the CLOCK): a plain read when another live owner holds it (then nothing is
 * written), otherwise one small write transaction that takes it when it is
 * absent, expired, or already ours (renewed at most every half interval).
 * The lease lasts {@link leaseMsOf} (3 × `sweepIntervalMs`, at least 1 s),
 * so a crashed owner is replaced by the next tick of another worker after
 * its lease runs out; `stop()` deletes the lease when it is still ours, so a
 * clean stop hands over at the next tick of any other worker.
 *
 * Only the owner sweeps expired entries and state records (and keeps the
 * sweep cursor). Eviction above 80 % runs in whichever worker sees the
 * pressure (its writes refused above 95 % cannot wait for the owner's next
 * tick): two evictors may pick the same oldest keys, which costs a wasted
 * lookup, never a wrong removal — removals are checked against the entry
 * actually stored, so no sweeper or evictor ever removes a rewritten entry,
 * even in the moment two workers both believe they own the lease (an owner
 * stalled past its lease).
 */
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { randomBytes } from 'node:crypto';
import { CLOCK, type Clock, type ClockTimer, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { CorruptValues } from './corrupt.js';
import { type OpenEnv, PersistenceEnv } from './env.js';
import { AGE_EXPIRES_AT, AGE_PREFIX, AGE_VALUE, ageKeyTime, intact, readF64, readStateValue } from './layout.js';
import { EVICT_ABOVE, EVICT_DOWN_TO, type PersistenceOptions } from './options.js';
import { PersistenceStats } from './stats.js';
import { DiskTier, removeEntries } from './tier.js';

/** While evicting, the next tick comes this soon (ms). */
const EVICT_AGAIN_MS = 50;
/** Key of the maintenance lease in the `meta` database. */
export const LEASE_KEY = 'maintenance-lease';
/** Shortest lease (ms), whatever the interval: longer than an ordinary event-loop stall. */
export const LEASE_MIN_MS = 1_000;

/** The longest lease any instance takes (3 × the largest `sweepIntervalMs`). */
const LEASE_MAX_MS = 3 * 3_600_000;

/** How long a maintenance lease lasts (ms) for a tick every `sweepIntervalMs`: three ticks, at least {@link LEASE_MIN_MS}. */
export function leaseMsOf(sweepIntervalMs: number): number {
  return Math.max(LEASE_MIN_MS, 3 * sweepIntervalMs);
}

/** The lease record under `meta/maintenance-lease`. */
export interface LeaseRecord {
  /** Owner's process id (for people reading the record; identity is `token`). */
  readonly pid: number;
  /** Random per Maintenance instance: two instances in one process are two owners. */
  readonly token: string;
  /** When it was taken or last renewed (epoch ms). */
  readonly at: number;
  /** When it expires (epoch ms). */
  readonly until: number;
}

function isLease(v: unknown): v is LeaseRecord {
  const r = v as LeaseRecord | null | undefined;
  return typeof r === 'object' && r !== null && typeof r.token === 'string' && typeof r.at === 'number' && typeof r.until === 'number';
}

@injectable()
export class Maintenance {
  private readonly env: PersistenceEnv;
  private readonly tier: DiskTier;
  private readonly stats: PersistenceStats;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly corrupt: CorruptValues;
  private readonly interval: number;
  private readonly batch: number;
  private readonly capBytes: number;
  private readonly leaseMs: number;
  /** This instance's identity in the lease. */
  readonly token = randomBytes(8).toString('hex');
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
    @inject(CorruptValues) corrupt: CorruptValues,
  ) {
    this.env = env;
    this.tier = tier;
    this.stats = stats;
    this.clock = clock;
    this.logger = logger;
    this.corrupt = corrupt;
    this.interval = options.sweepIntervalMs;
    this.batch = options.sweepBatch;
    this.capBytes = options.maxSizeMb * 1024 * 1024;
    this.leaseMs = leaseMsOf(options.sweepIntervalMs);
  }

  /** Whether this instance held the maintenance lease at its last tick. */
  get owner(): boolean {
    return this.stats.maintenanceOwner;
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
    await this.release();
  }

  /**
   * Takes or renews the lease when it is absent, expired or ours; returns
   * whether this instance owns maintenance now. A live lease of another
   * owner is seen with a read only (no write transaction).
   */
  private async lease(env: OpenEnv): Promise<boolean> {
    if (this.stopped) return false;
    // A fresh read snapshot: lmdb-js keeps one per environment handle until a 0 ms timer ends it, so a release
    // committed meanwhile through another handle of this process could still look held (a test failed so in CI).
    env.meta.resetReadTxn();
    const seen = this.readLease(env);
    const now = this.clock.now();
    if (this.heldByOther(seen, now)) return this.setOwner(false, seen);
    // Ours and renewed less than half an interval ago (an eviction tick every 50 ms): nothing to write.
    if (isLease(seen) && seen.token === this.token && now - seen.at < this.interval / 2 && seen.at <= now) return this.setOwner(true, seen);
    let previous: unknown;
    const mine = await env.meta.transaction(() => {
      const current = this.readLease(env);
      const t = this.clock.now();
      if (this.heldByOther(current, t)) {
        previous = current;
        return false;
      }
      previous = current;
      env.meta.putSync(LEASE_KEY, { pid: process.pid, token: this.token, at: t, until: t + this.leaseMs } satisfies LeaseRecord);
      return true;
    });
    return this.setOwner(mine, previous);
  }

  /**
   * The lease record, or undefined when there is none or it is unreadable
   * (a corrupt meta value: then it is taken over and rewritten, rather than
   * failing every tick).
   */
  private readLease(env: OpenEnv): unknown {
    try {
      return env.meta.get(LEASE_KEY);
    } catch (err) {
      this.logger.warn({ err }, 'plugin/persistence: the maintenance lease record is unreadable; taking it over');
      return undefined;
    }
  }

  /**
   * Whether `v` is a lease of another owner that still runs. A lease taken
   * further ahead than one lease from now comes from before a backwards
   * jump of the clock: treated as expired. So is one longer than any
   * lease can be (a changed `until`: meta values carry no checksum), which
   * would otherwise keep the sweeps stopped long after its owner died.
   */
  private heldByOther(v: unknown, now: number): boolean {
    return isLease(v) && v.token !== this.token && v.until > now && v.at <= now + this.leaseMs && v.until - v.at <= LEASE_MAX_MS;
  }

  private setOwner(mine: boolean, previous: unknown): boolean {
    const was = this.stats.maintenanceOwner;
    if (mine && !was) {
      this.stats.maintenanceTakeovers++;
      const prev = isLease(previous) && previous.token !== this.token ? { pid: previous.pid, until: previous.until } : null;
      this.logger.info({ previous: prev, leaseMs: this.leaseMs }, 'plugin/persistence: this process now runs maintenance');
    } else if (!mine && was) {
      this.cursor = undefined;
      this.logger.info({ owner: isLease(previous) ? previous.pid : null }, 'plugin/persistence: maintenance lease lost to another process');
    }
    this.stats.maintenanceOwner = mine;
    return mine;
  }

  /** Deletes the lease when it is still ours (the next tick of another worker takes it). */
  private async release(): Promise<void> {
    const was = this.stats.maintenanceOwner;
    this.stats.maintenanceOwner = false;
    this.cursor = undefined;
    const env = this.env.env;
    if (!was || env === null) return;
    try {
      await env.meta.transaction(() => {
        const current = this.readLease(env);
        if (isLease(current) && current.token === this.token) env.meta.removeSync(LEASE_KEY);
      });
    } catch (err) {
      this.logger.warn({ err }, 'plugin/persistence: could not release the maintenance lease (another worker takes it when it expires)');
    }
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
    const owner = await this.lease(env);
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
      const removed = await env.entries.transaction(() => removeEntries(env, keys, written, ageKeys, this.foundCorrupt));
      this.stats.evictions += removed;
      this.tier.checkSize();
      return this.stats.usedBytes > EVICT_ABOVE * this.capBytes;
    }
    // The periodic sweeps are the owner's alone.
    if (!owner) {
      this.tier.checkSize();
      return false;
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
      if (value.length !== AGE_VALUE || !intact(last, value)) {
        // Its expiry cannot be trusted: removed now, with its entry unless that was rewritten since (the entry is checked itself).
        this.corrupt.found('age', last.toString('hex'));
      } else if (readF64(value, AGE_EXPIRES_AT) > now) continue;
      ageKeys.push(last);
      keys.push(last.subarray(AGE_PREFIX));
      written.push(ageKeyTime(last));
    }
    this.cursor = seen < this.batch || last === undefined ? undefined : Buffer.concat([last, Buffer.from([0])]);
    if (keys.length > 0) this.stats.expiredRemoved += await env.entries.transaction(() => removeEntries(env, keys, written, ageKeys, this.foundCorrupt));
    await this.sweepState(env, now);
    this.tier.checkSize();
    return false;
  }

  /** Counts a corrupt `entries` value found (and removed) inside a write transaction. */
  private readonly foundCorrupt = (key: Uint8Array): void => this.corrupt.found('entries', Buffer.from(key).toString('hex'));

  /**
   * Forgets state records past their `ttlMs` (and old deletion markers), at
   * most sweepBatch per tick, and corrupt ones (counted, and re-checked in
   * the transaction that removes them).
   */
  private async sweepState(env: OpenEnv, now: number): Promise<void> {
    const due = (key: string, value: Buffer | undefined): 'corrupt' | boolean => {
      if (value === undefined) return false;
      const record = readStateValue(key, value);
      if (record === undefined) return 'corrupt';
      const e = (record as { e?: unknown } | null)?.e;
      return typeof e === 'number' && e <= now;
    };
    const gone: string[] = [];
    for (const { key, value } of env.state.getRange({ limit: this.batch }) as Iterable<{ key: string; value: Buffer }>) {
      if (due(key, value) !== false) gone.push(key);
    }
    if (gone.length === 0) return;
    await env.state.transaction(() => {
      for (const key of gone) {
        const verdict = due(key, env.state.get(key));
        if (verdict === false) continue;
        if (verdict === 'corrupt') this.corrupt.found('state', key);
        env.state.removeSync(key);
      }
    });
  }
}
