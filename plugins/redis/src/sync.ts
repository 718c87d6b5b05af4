/**
 * Sync across instances. One pub/sub channel (`<prefix>sync`) carries
 * JSON messages stamped with the sender's instance id (its own messages
 * come back to it and are ignored):
 * - `flush`: a cache flush made on one instance, applied on the others
 *   through `CACHE_CONTROL` (which passes it on to their local tiers);
 * - `state`: a state-store key changed (the receiver reads it).
 *
 * Flushes are also appended to a short Redis stream (`<prefix>flushes`, the
 * last ~1000), so an instance that reconnects (or starts while others
 * flush) replays what it missed. A flush made while Redis is down is kept
 * (bounded; an overflow becomes one flush of everything) and published, and
 * its keys deleted in Redis, when Redis is back.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { CACHE_CONTROL, type CacheControl, CLOCK, type Clock, type FlushScope, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable, optional } from '@heimdall/core/di';
import { RedisConnection } from './connection.js';
import { flushMatcher, redisKeys, scopeFromJson } from './keys.js';
import type { RedisOptions } from './options.js';
import { RedisStats } from './stats.js';

/** A sync message. */
export interface SyncMessage {
  /** Sender's instance id. */
  readonly i: string;
  readonly t: 'flush' | 'state';
  /** flush: the scope. */
  readonly s?: FlushScope;
  /** flush: its id in the flush log. */
  readonly x?: string;
  /** state: the key. */
  readonly k?: string;
}

/** Most flushes kept while Redis is down; beyond it they collapse into one flush of everything. */
const MAX_QUEUED_FLUSHES = 64;
/** Length of the flush log (approximate: MAXLEN ~). */
const FLUSH_LOG_LENGTH = 1000;

/** Compares two stream ids (`ms-seq`). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : (as ?? 0) - (bs ?? 0);
}

/** The channel: publishing, receiving, echo suppression. */
@injectable()
export class SyncChannel {
  /** This instance's id, carried by every message it sends. */
  readonly instanceId = randomBytes(8).toString('hex');
  readonly channel: string;
  /** True while a remote flush is being applied locally (the tier must not publish it again). */
  applyingRemote = false;
  private readonly conn: RedisConnection;
  private readonly stats: RedisStats;
  private readonly logger: Logger;
  private readonly handlers = new Map<string, (m: SyncMessage) => void>();
  private readonly resyncs: Array<() => void> = [];

  constructor(
    @inject(RedisConnection) conn: RedisConnection,
    @inject(RedisStats) stats: RedisStats,
    @inject(PLUGIN_OPTIONS) options: RedisOptions,
    @inject(PLUGIN_LOGGER) logger: Logger,
  ) {
    this.conn = conn;
    this.stats = stats;
    this.logger = logger;
    this.channel = redisKeys(options.keyPrefix).channel;
  }

  /** Handles messages of type `t` from other instances. */
  on(t: SyncMessage['t'], fn: (m: SyncMessage) => void): void {
    this.handlers.set(t, fn);
  }

  /** Calls `fn` whenever what was missed must be caught up: the command or the pub/sub connection (re)connected. */
  onResync(fn: () => void): void {
    this.resyncs.push(fn);
  }

  /** Wires the channel to the connections (before they start). */
  attach(): void {
    this.conn.onSubscriberReady(() => {
      const sub = this.conn.subscriber;
      if (sub === null) return;
      sub.subscribe(this.channel).catch((err: unknown) => this.conn.logError(err, 'subscribe failed'));
      if (this.conn.ready) this.resync();
    });
    this.conn.onReady(() => this.resync());
  }

  /** Starts receiving (after the connections are created). */
  listen(): void {
    const sub = this.conn.subscriber;
    if (sub === null) return;
    sub.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      let m: SyncMessage;
      try {
        m = JSON.parse(text) as SyncMessage;
      } catch {
        return;
      }
      if (typeof m !== 'object' || m === null || typeof m.i !== 'string' || m.i === this.instanceId) return;
      const fn = this.handlers.get(m.t);
      if (fn === undefined) return;
      try {
        fn(m);
      } catch (err) {
        this.logger.warn({ err }, 'plugin/redis: applying a sync message failed');
      }
    });
  }

  private resync(): void {
    for (const fn of this.resyncs) fn();
  }

  /** Publishes a message (best effort; false when Redis is not ready or the publish failed). */
  async publish(m: Omit<SyncMessage, 'i'>): Promise<boolean> {
    const client = this.conn.client;
    if (client === null || !this.conn.ready) return false;
    try {
      await client.publish(this.channel, JSON.stringify({ ...m, i: this.instanceId }));
      this.stats.syncSent++;
      return true;
    } catch (err) {
      this.conn.logError(err, 'publish failed');
      return false;
    }
  }
}

/**
 * Local flushes on their way to Redis: published (and logged in the
 * stream) and their keys deleted in Redis (SCAN MATCH + UNLINK, bounded),
 * or kept until Redis is back.
 */
@injectable()
export class RedisFlusher {
  readonly cachePrefix: Buffer;
  readonly logKey: string;
  private queued: FlushScope[] = [];
  private running: Promise<void> = Promise.resolve();

  constructor(
    @inject(RedisConnection) private readonly conn: RedisConnection,
    @inject(SyncChannel) private readonly channel: SyncChannel,
    @inject(RedisStats) private readonly stats: RedisStats,
    @inject(PLUGIN_OPTIONS) private readonly options: RedisOptions,
    @inject(CLOCK) private readonly clock: Clock,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
  ) {
    this.cachePrefix = Buffer.from(redisKeys(options.keyPrefix).cache, 'utf8');
    this.logKey = redisKeys(options.keyPrefix).flushLog;
    channel.onResync(() => {
      if (this.queued.length > 0) void this.drainQueue();
    });
  }

  /** A local flush: share it and delete its keys in Redis (now, or when Redis is back). Resolves when done. */
  flush(scope: FlushScope): Promise<void> {
    if (!this.conn.ready) {
      this.enqueue(scope);
      return Promise.resolve();
    }
    const run = this.running.then(() => this.apply(scope));
    this.running = run.catch(() => {});
    return run;
  }

  /** Flushes waiting for Redis. */
  get queuedFlushes(): number {
    return this.queued.length;
  }

  private enqueue(scope: FlushScope): void {
    if ('all' in scope || this.queued.length >= MAX_QUEUED_FLUSHES) this.queued = [{ all: true }];
    else if (!this.queued.some((q) => 'all' in q)) this.queued.push(scope);
  }

  private async drainQueue(): Promise<void> {
    const todo = this.queued;
    this.queued = [];
    for (const scope of todo) await this.flush(scope);
  }

  private async apply(scope: FlushScope): Promise<void> {
    if (this.options.sync) await this.share(scope);
    await this.deleteKeys(scope);
  }

  /** Appends the flush to the log and publishes it. */
  private async share(scope: FlushScope): Promise<void> {
    const client = this.conn.client;
    if (client === null || !this.conn.ready) return this.enqueue(scope);
    let id: string | null = null;
    try {
      id = (await client.xadd(this.logKey, 'MAXLEN', '~', String(FLUSH_LOG_LENGTH), '*', 'i', this.channel.instanceId, 's', JSON.stringify(scope))) as
        | string
        | null;
    } catch (err) {
      this.conn.logError(err, 'flush log append failed');
    }
    await this.channel.publish({ t: 'flush', s: scope, ...(id !== null ? { x: id } : {}) });
  }

  /** Deletes the cache keys the scope covers, on every master, within `flush.maxKeys` and `flush.timeoutMs`. */
  async deleteKeys(scope: FlushScope): Promise<number> {
    const m = flushMatcher(scope, this.cachePrefix);
    const at = this.cachePrefix.length;
    const { scanCount, maxKeys, timeoutMs } = this.options.flush;
    const deadline = this.clock.now() + timeoutMs;
    let deleted = 0;
    for (const node of this.conn.scanNodes()) {
      let cursor = '0';
      let examined = 0;
      try {
        do {
          const [next, keys] = await node.scanBuffer(cursor, 'MATCH', m.pattern as unknown as string, 'COUNT', scanCount); // ioredis sends a Buffer argument as raw bytes;
          cursor = next.toString();
          examined += keys.length;
          const doomed = keys.filter((k) => m.matches(k, at));
          if (doomed.length > 0) {
            const p = node.pipeline();
            for (const k of doomed) p.unlink(k);
            const results = (await p.exec()) ?? [];
            for (const [err, n] of results) if (err === null) deleted += Number(n);
          }
          if (examined >= maxKeys || this.clock.now() > deadline) {
            this.logger.warn(
              { scope, examined },
              'plugin/redis: flush stopped at its bound (flush.maxKeys / flush.timeoutMs); some keys may remain until they expire',
            );
            break;
          }
        } while (cursor !== '0');
      } catch (err) {
        this.conn.logError(err, 'deleting flushed keys failed');
      }
    }
    this.stats.flushedKeys += deleted;
    return deleted;
  }
}

/** Flushes from other instances, applied here through `CACHE_CONTROL` (pub/sub, or replayed from the log). */
@injectable()
export class RemoteFlushes {
  private readonly logKey: string;
  /** Id of the last log entry seen: a replay starts after it. Starts just before this instance started. */
  lastId: string;
  private replaying = false;

  constructor(
    @inject(RedisConnection) private readonly conn: RedisConnection,
    @inject(SyncChannel) private readonly channel: SyncChannel,
    @inject(CACHE_CONTROL) @optional() private readonly control: CacheControl | undefined,
    @inject(RedisStats) private readonly stats: RedisStats,
    @inject(PLUGIN_OPTIONS) options: RedisOptions,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) private readonly logger: Logger,
  ) {
    this.logKey = redisKeys(options.keyPrefix).flushLog;
    // Flushes logged a little before this start are replayed too: flushing more than needed is safe, less is not (clock skew).
    this.lastId = `${Math.max(0, clock.now() - 5000)}-0`;
    channel.on('flush', (m) => {
      const scope = scopeFromJson(m.s);
      if (scope === null) return;
      if (typeof m.x === 'string') {
        if (compareStreamIds(m.x, this.lastId) <= 0) return; // already applied by a replay
        this.lastId = m.x;
      }
      this.apply(scope);
    });
    channel.onResync(() => void this.replay());
  }

  /** Applies a flush from elsewhere: memory and local tiers, not Redis (the sender deleted its keys). */
  apply(scope: FlushScope): void {
    this.stats.syncReceived++;
    if (this.control === undefined) return;
    this.channel.applyingRemote = true;
    try {
      this.control.flush(scope);
    } catch (err) {
      this.logger.warn({ err, scope }, 'plugin/redis: a remote flush could not be applied');
    } finally {
      this.channel.applyingRemote = false;
    }
  }

  /** Applies the logged flushes of other instances made after `lastId`. */
  async replay(): Promise<void> {
    if (this.replaying) return;
    this.replaying = true;
    try {
      for (;;) {
        const client = this.conn.client;
        if (client === null || !this.conn.ready) return;
        const rows = (await client.xrange(this.logKey, `(${this.lastId}`, '+', 'COUNT', '500')) as Array<[string, string[]]>;
        for (const [id, fields] of rows) {
          this.lastId = id;
          const f: Record<string, string> = {};
          for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
          if (f.i === this.channel.instanceId) continue;
          let scope: FlushScope | null = null;
          try {
            scope = scopeFromJson(JSON.parse(f.s ?? 'null'));
          } catch {
            // not ours to understand
          }
          if (scope !== null) this.apply(scope);
        }
        if (rows.length < 500) return;
      }
    } catch (err) {
      this.conn.logError(err, 'flush log replay failed');
    } finally {
      this.replaying = false;
    }
  }
}
