/**
 * The Redis tier (core's `CacheTier`, name `redis`): reads within a strict
 * budget behind the circuit breaker, writes buffered and pipelined in
 * batches, flushes shared with the other instances and applied to Redis.
 */
import { Buffer } from 'node:buffer';
import { CLOCK, type CacheTier, type Clock, type ClockTimer, type FlushScope, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { Deadlines } from '@heimdall/core/pipeline';
import { Cluster } from 'ioredis';
import { Breaker } from './breaker.js';
import { RedisConnection } from './connection.js';
import { flushMatcher } from './keys.js';
import type { RedisOptions } from './options.js';
import { RedisStats } from './stats.js';
import { RedisFlusher, SyncChannel } from './sync.js';

/** A DNS cache key is at most 255 + 5 bytes. */
const MAX_KEY = 512;

@injectable()
export class RedisTier implements CacheTier {
  readonly name = 'redis';
  /** `get` never rejects and settles by the cache's deadline (or its own budget, if sooner). */
  readonly settlesByDeadline = true;
  private readonly conn: RedisConnection;
  private readonly breaker: Breaker;
  private readonly stats: RedisStats;
  private readonly clock: Clock;
  private readonly flusher: RedisFlusher;
  private readonly channel: SyncChannel;
  private readonly budget: number;
  /** The budgets of the reads in flight, on one timer. */
  private readonly deadlines: Deadlines;
  private readonly batchSize: number;
  private readonly intervalMs: number;
  private readonly maxPending: number;
  /** Longest wait (ms) for a write batch before Redis counts as stuck. */
  private readonly writeTimeoutMs: number;
  private readonly prefix: Buffer;
  // The write buffer: parallel arrays (full Redis key, value, PX).
  private keys: Buffer[] = [];
  private values: Uint8Array[] = [];
  private ttls: number[] = [];
  private timer: ClockTimer | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(
    @inject(RedisConnection) conn: RedisConnection,
    @inject(Breaker) breaker: Breaker,
    @inject(RedisStats) stats: RedisStats,
    @inject(RedisFlusher) flusher: RedisFlusher,
    @inject(SyncChannel) channel: SyncChannel,
    @inject(PLUGIN_OPTIONS) options: RedisOptions,
    @inject(CLOCK) clock: Clock,
  ) {
    this.conn = conn;
    this.breaker = breaker;
    this.stats = stats;
    this.flusher = flusher;
    this.channel = channel;
    this.clock = clock;
    this.budget = options.timeoutMs;
    this.deadlines = new Deadlines(clock);
    this.batchSize = options.writes.batchSize;
    this.intervalMs = options.writes.intervalMs;
    this.maxPending = options.writes.maxPending;
    this.writeTimeoutMs = Math.max(1000, options.timeoutMs * 10);
    this.prefix = flusher.cachePrefix;
  }

  /**
   * The entry under `key`, or undefined. Answers at once (undefined) when
   * Redis is down or the breaker is open; otherwise within `timeoutMs`, or
   * by the caller's `deadline` (epoch ms) if that is sooner (a late reply is
   * dropped and counts as a timeout). Never rejects.
   */
  get(key: Uint8Array, deadline?: number): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    const client = this.conn.client;
    if (client === null || !this.conn.ready || key.length === 0 || key.length > MAX_KEY || !this.breaker.allowRead()) {
      this.stats.skipped++;
      return undefined;
    }
    const k = Buffer.allocUnsafe(this.prefix.length + key.length);
    this.prefix.copy(k, 0);
    k.set(key, this.prefix.length);
    return new Promise((resolve) => {
      // The budgets of all reads in flight share one timer (no setTimeout/clearTimeout per read).
      const own = this.clock.now() + this.budget;
      const d = this.deadlines.add(deadline !== undefined && deadline < own ? deadline : own, () => {
        this.stats.timeouts++;
        resolve(undefined);
        this.breaker.timeout(); // may replace the connection (many in a row): after resolving
      });
      if (d === null) {
        this.stats.skipped++;
        resolve(undefined);
        return;
      }
      client.getBuffer(k).then(
        (v) => {
          if (d.done) return;
          d.finish();
          this.breaker.success();
          if (v === null) {
            this.stats.misses++;
            resolve(undefined);
          } else {
            this.stats.hits++;
            resolve(v);
          }
        },
        (err: unknown) => {
          if (d.done) return;
          d.finish();
          this.stats.errors++;
          this.breaker.failure();
          this.conn.logError(err, 'read failed');
          resolve(undefined);
        },
      );
    });
  }

  /** Queues an entry (SET … PX until `expiresAt`); drops and counts when Redis is unavailable or the buffer is full. */
  set(key: Uint8Array, entry: Uint8Array, expiresAt: number): void {
    const ttl = Math.ceil(expiresAt - this.clock.now());
    if (!(ttl > 0)) return;
    if (!this.conn.ready || !this.breaker.closed || this.keys.length >= this.maxPending || key.length === 0 || key.length > MAX_KEY) {
      this.stats.droppedWrites++;
      return;
    }
    const k = Buffer.allocUnsafe(this.prefix.length + key.length);
    this.prefix.copy(k, 0);
    k.set(key, this.prefix.length);
    this.keys.push(k);
    this.values.push(entry);
    this.ttls.push(ttl);
    if (this.keys.length >= this.batchSize) this.schedule(0);
    else if (this.timer === null) this.schedule(this.intervalMs);
  }

  /** Writes waiting in the buffer. */
  get pendingWrites(): number {
    return this.keys.length;
  }

  private schedule(ms: number): void {
    if (this.inFlight !== null) return; // the batch in flight reschedules when it ends
    if (this.timer !== null) {
      if (ms > 0) return;
      this.clock.clearTimeout(this.timer);
    }
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.send();
    }, ms);
  }

  /** Sends one batch as a pipeline (a Cluster: auto-pipelined per node); one batch in flight at a time. */
  private send(): void {
    if (this.inFlight !== null || this.keys.length === 0) return;
    const client = this.conn.client;
    const n = Math.min(this.batchSize, this.keys.length);
    const keys = this.keys.splice(0, n);
    const values = this.values.splice(0, n);
    const ttls = this.ttls.splice(0, n);
    if (client === null || !this.conn.ready || !this.breaker.closed) {
      this.stats.droppedWrites += n;
      this.after();
      return;
    }
    let work: Promise<number>;
    if (client instanceof Cluster) {
      const all: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++) all.push(client.set(keys[i]!, values[i] as Buffer, 'PX', ttls[i]!));
      work = Promise.allSettled(all).then((r) => r.filter((x) => x.status === 'fulfilled').length);
    } else {
      const p = client.pipeline();
      for (let i = 0; i < n; i++) p.set(keys[i]!, values[i] as Buffer, 'PX', ttls[i]!);
      work = p.exec().then((r) => (r ?? []).filter(([err]) => err === null).length);
    }
    let timer: ClockTimer | null = null;
    const stuck = new Promise<number>((resolve) => {
      timer = this.clock.setTimeout(() => resolve(-1), this.writeTimeoutMs);
    });
    this.inFlight = Promise.race([work.catch(() => 0), stuck]).then((ok) => {
      if (timer !== null) this.clock.clearTimeout(timer);
      if (ok < 0) {
        // Redis accepted the connection but does not answer: stop writing until a probe read succeeds.
        this.stats.errors++;
        this.stats.droppedWrites += n;
        this.breaker.open();
        this.breaker.timeout();
      } else {
        this.stats.writes += ok;
        if (ok < n) {
          this.stats.errors++;
          this.stats.droppedWrites += n - ok;
        }
      }
      this.inFlight = null;
      this.after();
    });
  }

  private after(): void {
    if (this.keys.length > 0) this.schedule(this.keys.length >= this.batchSize ? 0 : this.intervalMs);
  }

  /** Sends everything buffered and waits for it (tests, stop). */
  async drain(): Promise<void> {
    for (let i = 0; i < 10_000 && (this.keys.length > 0 || this.inFlight !== null || this.timer !== null); i++) {
      if (this.timer !== null) {
        this.clock.clearTimeout(this.timer);
        this.timer = null;
      }
      if (this.inFlight !== null) await this.inFlight;
      else this.send();
    }
  }

  /** Drops everything buffered (stop). */
  discard(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.stats.droppedWrites += this.keys.length;
    this.keys = [];
    this.values = [];
    this.ttls = [];
  }

  /**
   * A flush passed on by the cache. Buffered writes it covers are dropped.
   * A local flush is shared with the other instances and its keys deleted
   * in Redis (resolves when done); a flush this instance is applying on
   * another's behalf stops here.
   */
  flush(scope: FlushScope): void | Promise<void> {
    const m = flushMatcher(scope, this.prefix);
    const at = this.prefix.length;
    if (this.keys.length > 0) {
      const keep: number[] = [];
      for (let i = 0; i < this.keys.length; i++) if (!m.matches(this.keys[i]!, at)) keep.push(i);
      if (keep.length !== this.keys.length) {
        this.keys = keep.map((i) => this.keys[i]!);
        this.values = keep.map((i) => this.values[i]!);
        this.ttls = keep.map((i) => this.ttls[i]!);
      }
    }
    if (this.channel.applyingRemote) return;
    return this.flusher.flush(scope);
  }
}
