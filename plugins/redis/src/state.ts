/**
 * The state store (core's `STATE_STORE`) in Redis: small JSON values under
 * `<prefix>s:<key>`, shared by every instance. Reads are synchronous from a
 * local copy, loaded when Redis becomes ready (every state key: SCAN, then
 * GET) and kept current by `state` messages on the sync channel. Writes
 * update the local copy at once and go to Redis in the background; a write
 * made while Redis is down is sent when it is back, unless another instance
 * wrote the key later (last writer wins, by the writers' clocks).
 */
import { Buffer } from 'node:buffer';
import { CLOCK, type Clock, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS, type StateStore } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { RedisConnection } from './connection.js';
import { globEscape, redisKeys } from './keys.js';
import type { RedisOptions } from './options.js';
import { SyncChannel } from './sync.js';

/** Longest key (characters). */
export const STATE_MAX_KEY = 256;
/** Largest value, as JSON (bytes). */
export const STATE_MAX_VALUE = 65_536;

/** A record as stored: value (absent = deleted), writer, write time (epoch ms), expiry (epoch ms). */
interface StateRecord {
  readonly v?: unknown;
  readonly w: string;
  readonly t: number;
  readonly e?: number;
}

type Listener = (value: unknown) => void;

@injectable()
export class RedisStateStore implements StateStore {
  private readonly conn: RedisConnection;
  private readonly channel: SyncChannel;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly local = new Map<string, StateRecord>();
  /** Keys written here and not yet confirmed in Redis. */
  private readonly dirty = new Set<string>();
  /** Per key: bumped by every local write (a read started before it must not overwrite it). */
  private readonly versions = new Map<string, number>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private loading: Promise<void> | null = null;

  constructor(
    @inject(RedisConnection) conn: RedisConnection,
    @inject(SyncChannel) channel: SyncChannel,
    @inject(PLUGIN_OPTIONS) options: RedisOptions,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) logger: Logger,
  ) {
    this.conn = conn;
    this.channel = channel;
    this.clock = clock;
    this.logger = logger;
    this.prefix = redisKeys(options.keyPrefix).state;
    channel.on('state', (m) => {
      if (typeof m.k === 'string' && m.k.length > 0 && m.k.length <= STATE_MAX_KEY) void this.refresh([m.k]);
    });
    channel.onResync(() => void this.load());
  }

  private live(r: StateRecord | undefined): boolean {
    return r !== undefined && 'v' in r && (r.e === undefined || r.e > this.clock.now());
  }

  get(key: string): unknown {
    checkKey(key);
    const r = this.local.get(key);
    return this.live(r) ? r!.v : undefined;
  }

  /**
   * Stores `value` (JSON, at most 64 KiB; `undefined` deletes): here at
   * once, in Redis and on the other instances within a round trip (or when
   * Redis is back). Throws TypeError for a bad key or a value that is not JSON.
   */
  set(key: string, value: unknown, options?: { readonly ttlMs?: number }): void {
    checkKey(key);
    const now = this.clock.now();
    let record: StateRecord;
    if (value === undefined) record = { w: this.channel.instanceId, t: now };
    else {
      const json = JSON.stringify(value);
      if (json === undefined) throw new TypeError(`plugin/redis: state ${JSON.stringify(key)}: value is not JSON`);
      if (json.length > STATE_MAX_VALUE) throw new TypeError(`plugin/redis: state ${JSON.stringify(key)}: value over ${STATE_MAX_VALUE} bytes as JSON`);
      const ttl = options?.ttlMs;
      record = { v: JSON.parse(json) as unknown, w: this.channel.instanceId, t: now, ...(ttl !== undefined && ttl > 0 ? { e: now + ttl } : {}) };
    }
    this.local.set(key, record);
    this.versions.set(key, (this.versions.get(key) ?? 0) + 1);
    this.dirty.add(key);
    void this.push(key);
  }

  /**
   * Calls `listener` with the key's value when another instance changes it,
   * and once with the stored value when there is one (at once from the
   * local copy, or when it has been read from Redis). Returns the
   * unsubscribe function.
   */
  subscribe(key: string, listener: Listener): () => void {
    checkKey(key);
    let set = this.listeners.get(key);
    if (set === undefined) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    const r = this.local.get(key);
    if (this.live(r)) {
      const value = r!.v;
      queueMicrotask(() => {
        if (this.listeners.get(key)?.has(listener)) this.call(listener, value);
      });
    } else void this.refresh([key]);
    return () => {
      const s = this.listeners.get(key);
      s?.delete(listener);
      if (s?.size === 0) this.listeners.delete(key);
    };
  }

  /** Writes a dirty key to Redis and tells the others. */
  private async push(key: string): Promise<void> {
    const client = this.conn.client;
    if (client === null || !this.conn.ready) return; // sent on reconnect
    const record = this.local.get(key);
    if (record === undefined) return;
    const version = this.versions.get(key);
    try {
      const k = this.prefix + key;
      if (!('v' in record)) await client.del(k);
      else if (record.e !== undefined) {
        const px = Math.ceil(record.e - this.clock.now());
        if (px > 0) await client.set(k, JSON.stringify(record), 'PX', px);
        else await client.del(k);
      } else await client.set(k, JSON.stringify(record));
    } catch (err) {
      this.conn.logError(err, 'state write failed (sent again when Redis is back)');
      return;
    }
    if (this.versions.get(key) === version) this.dirty.delete(key);
    await this.channel.publish({ t: 'state', k: key });
  }

  /** Reads keys from Redis; reports changed values to their listeners. */
  private async refresh(keys: readonly string[]): Promise<void> {
    const client = this.conn.client;
    if (client === null || !this.conn.ready || keys.length === 0) return;
    const versions = keys.map((k) => this.versions.get(k));
    let texts: Array<string | null>;
    try {
      texts = await Promise.all(keys.map((k) => client.get(this.prefix + k)));
    } catch (err) {
      this.conn.logError(err, 'state read failed');
      return;
    }
    keys.forEach((key, i) => {
      if (this.versions.get(key) !== versions[i]) return; // written here meanwhile
      const remote = parseRecord(texts[i] ?? null);
      if (this.dirty.has(key)) {
        // Written here while Redis was away: keep ours unless the other write is newer.
        const mine = this.local.get(key);
        if (mine !== undefined && (remote === undefined || remote.t <= mine.t)) {
          void this.push(key);
          return;
        }
        this.dirty.delete(key);
      }
      const before = this.local.get(key);
      const wasLive = this.live(before);
      if (remote === undefined) this.local.delete(key);
      else this.local.set(key, remote);
      const isLive = this.live(remote);
      if (wasLive === isLive && (!isLive || JSON.stringify(before!.v) === JSON.stringify(remote!.v))) return;
      const set = this.listeners.get(key);
      if (set !== undefined) for (const l of [...set]) this.call(l, isLive ? remote!.v : undefined);
    });
  }

  /** (Re)loads every state key in Redis plus the ones known here, and sends writes made while Redis was away. */
  load(): Promise<void> {
    if (this.loading !== null) return this.loading;
    this.loading = (async () => {
      const names = new Set<string>([...this.local.keys(), ...this.listeners.keys(), ...this.dirty]);
      const pattern = Buffer.concat([globEscape(Buffer.from(this.prefix)), Buffer.from('*')]);
      try {
        for (const node of this.conn.scanNodes()) {
          let cursor = '0';
          let seen = 0;
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', pattern.toString('latin1'), 'COUNT', 1000);
            cursor = next;
            for (const k of keys) names.add(k.slice(this.prefix.length));
            seen += keys.length;
          } while (cursor !== '0' && seen < 100_000);
        }
      } catch (err) {
        this.conn.logError(err, 'state scan failed');
      }
      await this.refresh([...names].filter((k) => k.length > 0 && k.length <= STATE_MAX_KEY));
    })().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private call(listener: Listener, value: unknown): void {
    try {
      listener(value);
    } catch (err) {
      this.logger.warn({ err }, 'plugin/redis: a state listener threw');
    }
  }
}

function parseRecord(text: string | null): StateRecord | undefined {
  if (text === null) return undefined;
  try {
    const r = JSON.parse(text) as StateRecord;
    if (typeof r !== 'object' || r === null || typeof r.w !== 'string' || typeof r.t !== 'number') return undefined;
    return r;
  } catch {
    return undefined;
  }
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > STATE_MAX_KEY) {
    throw new TypeError(`plugin/redis: state key must be a string of 1..${STATE_MAX_KEY} characters`);
  }
}
