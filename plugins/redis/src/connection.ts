/**
 * The connections to Redis: one for commands, one for pub/sub, created at
 * start through ioredis (standalone, Sentinel or Cluster), reconnecting
 * with backoff forever. Nothing waits on them on the query path: commands
 * are only sent while the command connection is `ready` (no offline queue),
 * so a Redis that is down costs a status check.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { Cluster, Redis, type RedisOptions as IoRedisOptions } from 'ioredis';
import type { RedisOptions } from './options.js';
import { parseRedisUrl, type RedisTarget, redactUrl } from './url.js';

/** A client: a standalone/Sentinel connection or a Cluster. */
export type RedisClient = Redis | Cluster;

/** Reads a secret file: its content without the trailing newline. */
function readSecret(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`plugin/redis: cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  return text.replace(/\r?\n$/, '');
}

/** The backoff of the n-th attempt (1-based): min·2^(n-1), capped, ±20 % jitter. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
}

@injectable()
export class RedisConnection {
  readonly target: RedisTarget;
  private readonly options: RedisOptions;
  private readonly logger: Logger;
  /** The command connection (null before start and after stop). */
  client: RedisClient | null = null;
  /** The pub/sub connection (null when nothing subscribes). */
  subscriber: RedisClient | null = null;
  /** True while the command connection is ready. Read on the query path. */
  ready = false;
  private readonly readyListeners: Array<(first: boolean) => void> = [];
  private readonly downListeners: Array<() => void> = [];
  private readonly subscriberReadyListeners: Array<() => void> = [];
  private everReady = false;
  private lastErrorLog = 0;
  private stopped = false;

  constructor(@inject(PLUGIN_OPTIONS) options: RedisOptions, @inject(PLUGIN_LOGGER) logger: Logger) {
    this.options = options;
    this.logger = logger;
    this.target = parseRedisUrl(options.url);
  }

  /** Calls `fn` each time the command connection becomes ready (`first` on the first time). */
  onReady(fn: (first: boolean) => void): void {
    this.readyListeners.push(fn);
  }

  /** Calls `fn` each time the command connection is lost. */
  onDown(fn: () => void): void {
    this.downListeners.push(fn);
  }

  /** Calls `fn` each time the pub/sub connection becomes ready (subscribe there). */
  onSubscriberReady(fn: () => void): void {
    this.subscriberReadyListeners.push(fn);
  }

  /** Whether this is a Cluster. */
  get cluster(): boolean {
    return this.target.mode === 'cluster';
  }

  /** The password last read from `passwordFile` (undefined without one). */
  private password: string | undefined;

  /**
   * Reads `passwordFile` again and, when it changed, gives the new password
   * to the connections (ioredis sends AUTH with it on their next connect).
   * An unreadable file keeps the password in use (logged).
   */
  refreshPassword(): void {
    const file = this.options.passwordFile;
    if (file === undefined) return;
    let next: string;
    try {
      next = readSecret(file, 'passwordFile');
    } catch (err) {
      this.logError(err, 'passwordFile unreadable; keeping the password in use');
      return;
    }
    if (next === this.password) return;
    this.password = next;
    for (const c of [this.client, this.subscriber]) {
      if (c === null) continue;
      if (c instanceof Cluster) {
        if (c.options.redisOptions) c.options.redisOptions.password = next;
        for (const node of c.nodes()) node.options.password = next;
      } else c.options.password = next;
    }
    this.logger.info('plugin/redis: password changed in passwordFile; used from the next connect');
  }

  /** ioredis options shared by both connections. */
  private clientOptions(): IoRedisOptions {
    const o = this.options;
    const t = this.target;
    const password = o.passwordFile !== undefined ? readSecret(o.passwordFile, 'passwordFile') : t.password;
    if (o.passwordFile !== undefined) this.password = password;
    let tls: ConnectionOptions | undefined;
    if (t.tls) {
      tls = {
        rejectUnauthorized: o.tls.rejectUnauthorized,
        ...(o.tls.caFile !== undefined ? { ca: readFileSync(o.tls.caFile) } : {}),
        ...(o.tls.certFile !== undefined ? { cert: readFileSync(o.tls.certFile) } : {}),
        ...(o.tls.keyFile !== undefined ? { key: readFileSync(o.tls.keyFile) } : {}),
        ...(o.tls.servername !== undefined ? { servername: o.tls.servername } : {}),
      };
    }
    const { minDelayMs, maxDelayMs, connectTimeoutMs } = o.reconnect;
    return {
      ...(t.username !== undefined ? { username: t.username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(tls !== undefined ? { tls } : {}),
      connectTimeout: connectTimeoutMs,
      // Never queue commands while disconnected and never resend: a command either goes now or not at all.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => {
        // A rotated password: the file is read again before every reconnect.
        this.refreshPassword();
        return backoffDelay(times, minDelayMs, maxDelayMs);
      },
      lazyConnect: true,
      // No auto-pipelining for standalone/Sentinel: measured, it halves a GET's syscalls but doubles the garbage per read
      // (a pipeline object per tick), and the longer scavenges cost more p99 than the writes save.
    };
  }

  private create(): RedisClient {
    const t = this.target;
    const base = this.clientOptions();
    const { minDelayMs, maxDelayMs } = this.options.reconnect;
    if (t.mode === 'standalone') return new Redis({ ...base, host: t.node.host, port: t.node.port, db: t.db });
    if (t.mode === 'sentinel') {
      const sentinelPassword =
        this.options.sentinelPasswordFile !== undefined ? readSecret(this.options.sentinelPasswordFile, 'sentinelPasswordFile') : undefined;
      return new Redis({
        ...base,
        sentinels: t.sentinels.map((n) => ({ host: n.host, port: n.port })),
        name: t.masterName,
        db: t.db,
        ...(sentinelPassword !== undefined ? { sentinelPassword } : {}),
        ...(t.tls ? { enableTLSForSentinelMode: true, sentinelTLS: base.tls } : {}),
        sentinelRetryStrategy: (times: number) => backoffDelay(times, minDelayMs, maxDelayMs),
        // Leave the old master when the Sentinels switch (`+switch-master`), not only when its connection
        // drops: a master that hangs or is cut off keeps our connections open, and without this they
        // stayed on it after the failover, every read a timeout, until it came back.
        failoverDetector: true,
        // A Sentinel that accepts the connection but does not answer (hung, overloaded) is given up
        // after connectTimeoutMs and the next one asked; without it, asking it for the master waited forever.
        sentinelCommandTimeout: this.options.reconnect.connectTimeoutMs,
        // Leaving a hung master: its socket will not close by itself; destroy it soon (ioredis' default: 2 s).
        disconnectTimeout: Math.min(500, this.options.reconnect.connectTimeoutMs),
      });
    }
    const { retryStrategy: _r, enableOfflineQueue: _q, lazyConnect: _l, ...redisOptions } = base;
    return new Cluster(
      t.nodes.map((n) => ({ host: n.host, port: n.port })),
      {
        redisOptions,
        lazyConnect: true,
        enableOfflineQueue: false,
        // Writes from many slots: ioredis groups the commands of one tick into one pipeline per node.
        enableAutoPipelining: true,
        clusterRetryStrategy: (times: number) => {
          this.refreshPassword();
          return backoffDelay(times, minDelayMs, maxDelayMs);
        },
        slotsRefreshTimeout: Math.max(1000, this.options.reconnect.connectTimeoutMs),
      },
    );
  }

  /**
   * Creates the connections and starts connecting; resolves when the
   * command connection is ready or after `startWaitMs`, whichever comes
   * first (connecting goes on in the background). `pubsub`: also open the
   * pub/sub connection.
   */
  async start(pubsub: boolean): Promise<void> {
    if (this.client !== null) return;
    this.stopped = false;
    const client = this.create();
    this.client = client;
    client.on('error', (err: Error) => this.logError(err, 'connection error'));
    client.on('ready', () => {
      if (this.client !== client) return;
      this.ready = true;
      const first = !this.everReady;
      this.everReady = true;
      this.logger.info({ url: redactUrl(this.options.url), mode: this.target.mode }, first ? 'plugin/redis: connected' : 'plugin/redis: reconnected');
      for (const fn of this.readyListeners) {
        try {
          fn(first);
        } catch (err) {
          this.logger.warn({ err }, 'plugin/redis: a ready listener threw');
        }
      }
    });
    const down = (): void => {
      if (!this.ready) return;
      this.ready = false;
      if (!this.stopped) this.logger.warn('plugin/redis: connection lost; serving from the local tiers, reconnecting with backoff');
      for (const fn of this.downListeners) fn();
    };
    client.on('close', down);
    client.on('end', down);
    client.on('node error', (err: Error) => this.logError(err, 'cluster node error'));
    if (pubsub) {
      const sub = client.duplicate();
      this.subscriber = sub;
      sub.on('error', (err: Error) => this.logError(err, 'pub/sub connection error'));
      sub.on('ready', () => {
        if (this.subscriber !== sub) return;
        for (const fn of this.subscriberReadyListeners) {
          try {
            fn();
          } catch (err) {
            this.logger.warn({ err }, 'plugin/redis: a ready listener threw');
          }
        }
      });
      sub.connect().catch(() => {}); // retried by its retryStrategy
    }
    const ready = new Promise<void>((resolve) => {
      if (this.ready) resolve();
      client.once('ready', () => resolve());
    });
    client.connect().catch((err: Error) => {
      this.logError(err, 'first connection failed; serving from the local tiers, reconnecting with backoff');
    });
    const wait = this.options.startWaitMs;
    if (wait > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, wait)))]);
      clearTimeout(timer);
    }
  }

  /** Closes both connections (pending commands are dropped). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    const clients = [this.client, this.subscriber].filter((c): c is RedisClient => c !== null);
    this.client = null;
    this.subscriber = null;
    await Promise.all(
      clients.map(async (c) => {
        try {
          if (c.status === 'ready') await Promise.race([c.quit(), new Promise((r) => setTimeout(r, 500))]);
        } catch {
          // closing anyway
        }
        c.disconnect();
      }),
    );
  }

  /** The master nodes to SCAN (the client itself unless this is a Cluster). */
  scanNodes(): Redis[] {
    const c = this.client;
    if (c === null) return [];
    return c instanceof Cluster ? c.nodes('master') : [c];
  }

  /** Logs a connection problem at most every 10 s (the same outage otherwise logs on every retry). */
  logError(err: unknown, what: string): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now - this.lastErrorLog < 10_000) {
      this.logger.debug({ err }, `plugin/redis: ${what}`);
      return;
    }
    this.lastErrorLog = now;
    this.logger.warn({ err: (err as Error)?.message ?? String(err) }, `plugin/redis: ${what}`);
  }
}
