/**
 * The state store (core's `STATE_STORE`): small JSON values under string
 * keys, in the `state` database of the shared environment, so they survive
 * restarts and every worker of the host sees them.
 *
 * Each value carries a CRC-32 of its key and bytes (see layout.ts): one that
 * fails it reads as absent, is counted in `corrupt_total{db="state"}`,
 * logged, and removed by a transaction that re-checks it first.
 *
 * Each write also stores a new `state-version` stamp in `meta`, in the same
 * transaction. While someone is subscribed, every `statePollMs` one small
 * read of that stamp tells whether anything changed; only then are the
 * subscribed keys read, and their listeners called for changes made by
 * other processes (or other instances on the same directory).
 */
import type { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { CLOCK, type Clock, type ClockTimer, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS, type StateStore } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { CorruptValues } from './corrupt.js';
import { type OpenEnv, PersistenceEnv } from './env.js';
import { readStateValue, stateValue } from './layout.js';
import type { PersistenceOptions } from './options.js';

/** Longest key (characters). */
export const STATE_MAX_KEY = 256;
/** Largest value, as JSON (bytes). */
export const STATE_MAX_VALUE = 65_536;
/** How long a deletion marker is kept (so other processes can notice the deletion). */
const TOMBSTONE_MS = 86_400_000;

/** A stored record: value, writer, sequence, expiry (epoch ms), deleted. */
interface StateRecord {
  readonly v?: unknown;
  readonly w: string;
  readonly s: number;
  readonly e?: number;
  readonly d?: 1;
}

type Listener = (value: unknown) => void;

const stampOf = (r: StateRecord | undefined): string => (r === undefined ? '' : `${r.w}:${r.s}`);

/** The state store contributed under `STATE_STORE`. One per plugin instance. */
@injectable()
export class DiskStateStore implements StateStore {
  /** This store's writer id (records it wrote are not reported back to it). */
  readonly writer = randomBytes(6).toString('hex');
  private seq = 0;
  private readonly env: PersistenceEnv;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly corrupt: CorruptValues;
  private readonly pollMs: number;
  /** Own writes not committed yet. */
  private readonly overlay = new Map<string, StateRecord>();
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Stamp of the record last seen (or written) per subscribed key. */
  private readonly seen = new Map<string, string>();
  private lastVersion: unknown;
  private timer: ClockTimer | null = null;
  private running = false;

  constructor(
    @inject(PersistenceEnv) env: PersistenceEnv,
    @inject(PLUGIN_OPTIONS) options: PersistenceOptions,
    @inject(CLOCK) clock: Clock,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(CorruptValues) corrupt: CorruptValues,
  ) {
    this.env = env;
    this.clock = clock;
    this.logger = logger;
    this.corrupt = corrupt;
    this.pollMs = options.statePollMs;
  }

  /** The environment, opened on first use (another plugin may read state before this one's start). */
  private open(): OpenEnv | null {
    if (this.env.env !== null) return this.env.env;
    if (this.env.isClosed) return null;
    try {
      return this.env.open();
    } catch (err) {
      this.logger.warn({ err }, 'plugin/persistence: state store unavailable');
      return null;
    }
  }

  private read(key: string): StateRecord | undefined {
    const own = this.overlay.get(key);
    if (own !== undefined) return own;
    const env = this.open();
    if (env === null) return undefined;
    return this.stored(env, key);
  }

  /** The record on disk, checksum verified: a corrupt one reads as absent (and is counted, logged and removed). Throws when the read fails. */
  private stored(env: OpenEnv, key: string): StateRecord | undefined {
    let bytes: Buffer | undefined;
    try {
      bytes = env.state.get(key);
    } catch (err) {
      this.logger.debug({ err, key }, 'plugin/persistence: state read failed');
      return undefined;
    }
    if (bytes === undefined) return undefined;
    const record = readStateValue(key, bytes);
    if (record !== undefined) return record as StateRecord;
    this.corrupt.remove('state', key, () =>
      env.state.transaction(() => {
        const cur = env.state.get(key);
        // Only when it still fails its checksum: a fresh write since the read is kept.
        if (cur !== undefined && readStateValue(key, cur) === undefined) env.state.removeSync(key);
      }),
    );
    return undefined;
  }

  private live(r: StateRecord | undefined): boolean {
    return r !== undefined && r.d !== 1 && (r.e === undefined || r.e > this.clock.now());
  }

  get(key: string): unknown {
    checkKey(key);
    const r = this.read(key);
    return this.live(r) ? r!.v : undefined;
  }

  /**
   * Stores `value` (a JSON value of at most 64 KiB; `undefined` deletes).
   * Visible to this process at once, to the others once committed (a few
   * ms). Throws TypeError for a bad key or a value that is not JSON.
   */
  set(key: string, value: unknown, options?: { readonly ttlMs?: number }): void {
    checkKey(key);
    const now = this.clock.now();
    let record: StateRecord;
    const s = ++this.seq;
    if (value === undefined) record = { w: this.writer, s, d: 1, e: now + TOMBSTONE_MS };
    else {
      const json = JSON.stringify(value);
      if (json === undefined) throw new TypeError(`plugin/persistence: state ${JSON.stringify(key)}: value is not JSON`);
      if (json.length > STATE_MAX_VALUE) throw new TypeError(`plugin/persistence: state ${JSON.stringify(key)}: value over ${STATE_MAX_VALUE} bytes as JSON`);
      const ttl = options?.ttlMs;
      record = { v: JSON.parse(json) as unknown, w: this.writer, s, ...(ttl !== undefined && ttl > 0 ? { e: now + ttl } : {}) };
    }
    this.overlay.set(key, record);
    if (this.listeners.has(key)) this.seen.set(key, stampOf(record));
    const env = this.open();
    if (env === null) return;
    const stamp = stampOf(record);
    env.state
      .transaction(() => {
        env.state.putSync(key, stateValue(key, record));
        env.meta.putSync('state-version', stamp);
      })
      .then(
        () => {
          if (this.overlay.get(key) === record) this.overlay.delete(key);
        },
        (err: unknown) => this.logger.warn({ err, key }, 'plugin/persistence: state write failed'),
      );
  }

  /**
   * Calls `listener` with the key's value when another process changes it
   * (checked every `statePollMs`), and once, on a microtask, with the
   * stored value when there is one. Returns the unsubscribe function.
   */
  subscribe(key: string, listener: Listener): () => void {
    checkKey(key);
    let set = this.listeners.get(key);
    if (set === undefined) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    const r = this.read(key);
    this.seen.set(key, stampOf(r));
    if (this.live(r)) {
      const value = r!.v;
      queueMicrotask(() => {
        if (this.listeners.get(key)?.has(listener)) call(listener, value, this.logger);
      });
    }
    this.ensurePolling();
    return () => {
      const s = this.listeners.get(key);
      if (s === undefined) return;
      s.delete(listener);
      if (s.size === 0) {
        this.listeners.delete(key);
        this.seen.delete(key);
      }
    };
  }

  /** Starts polling (when subscribed) — the plugin's start. */
  start(): void {
    this.running = true;
    this.ensurePolling();
  }

  /** Stops polling and waits for own writes (and removals of corrupt values) to commit. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.corrupt.settled();
    const env = this.env.env;
    if (env !== null) await env.state.committed;
  }

  private ensurePolling(): void {
    if (!this.running || this.timer !== null || this.listeners.size === 0) return;
    if (this.lastVersion === undefined) this.lastVersion = this.version(this.env.env);
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.poll();
      this.ensurePolling();
    }, this.pollMs);
  }

  /**
   * The `state-version` stamp (null when none). An unreadable one (a
   * corrupt meta value: it has no checksum, it is only compared) reads as
   * a new stamp each time, so the subscribed keys — whose values are
   * checked — are read at every poll until the next write replaces it.
   */
  private version(env: OpenEnv | null): unknown {
    if (env === null) return null;
    try {
      return env.meta.get('state-version') ?? null;
    } catch (err) {
      this.logger.debug({ err }, 'plugin/persistence: state-version unreadable');
      return Symbol('unreadable');
    }
  }

  /** One poll: a read of the version stamp; when it moved, the subscribed keys. */
  poll(): void {
    const env = this.env.env;
    if (env === null || this.listeners.size === 0) return;
    const version = this.version(env);
    if (version === this.lastVersion) return;
    this.lastVersion = version;
    for (const [key, set] of this.listeners) {
      const r = this.stored(env, key);
      const stamp = stampOf(r);
      if (stamp === this.seen.get(key)) continue;
      this.seen.set(key, stamp);
      if (r !== undefined && r.w === this.writer) continue; // our own write
      if (this.overlay.has(key)) continue; // ours is about to land over it
      const value = this.live(r) ? r!.v : undefined;
      for (const l of [...set]) call(l, value, this.logger);
    }
  }
}

function call(listener: Listener, value: unknown, logger: Logger): void {
  try {
    listener(value);
  } catch (err) {
    logger.warn({ err }, 'plugin/persistence: a state listener threw');
  }
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > STATE_MAX_KEY) {
    throw new TypeError(`plugin/persistence: state key must be a string of 1..${STATE_MAX_KEY} characters`);
  }
}
