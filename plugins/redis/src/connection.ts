/**
 * The connections to Redis: one for commands, one for pub/sub, created at
 * start through ioredis (standalone, Sentinel or Cluster), reconnecting
 * with backoff forever. Nothing waits on them on the query path: commands
 * are only sent while the command connection is `ready` (no offline queue),
 * so a Redis that is down costs a status check.
 *
 * A connection that is open but dead (the TCP path silently lost: no FIN,
 * no RST) is not left to the OS, which takes up to ~15 min to give up on
 * it: {@link RedisConnection.replace} closes it and connects again when
 * reads keep timing out on it, a new connection on which nothing comes back
 * within `connectTimeoutMs` is closed and tried again, and TCP keepalive
 * probes idle connections.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { CLOCK, type Clock, type Logger, PLUGIN_LOGGER, PLUGIN_OPTIONS } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { Cluster, Redis, type RedisOptions as IoRedisOptions } from 'ioredis';
import type { RedisOptions } from './options.js';
import { RedisStats } from './stats.js';
import { parseRedisUrl, type RedisTarget, redactUrl } from './url.js';

/**
 * TCP keepalive on every data connection: the first probe after this long
 * (ms) idle. An idle connection whose path died is then found by the OS
 * (after the system's probe interval × count: on Linux 75 s × 9 unless the
 * runtime sets them, as libuv ≥ 1.49 does: 1 s × 10; Node 20 has libuv 1.46).
 */
export const KEEPALIVE_MS = 10_000;

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
  /** When (the CLOCK's ms) {@link logError} last logged a warning. */
  private lastErrorLog = Number.NEGATIVE_INFINITY;
  private stopped = false;
  private readonly stats: RedisStats;
  /** When (the CLOCK's ms, like the breaker's cooldown) {@link replace} last replaced the connections. */
  private lastReplaced = Number.NEGATIVE_INFINITY;
  /** When (the CLOCK's ms) a replacement was last logged as a warning. */
  private lastReplacedLog = Number.NEGATIVE_INFINITY;

  private readonly clock: Clock;

  constructor(
    @inject(PLUGIN_OPTIONS) options: RedisOptions,
    @inject(PLUGIN_LOGGER) logger: Logger,
    @inject(RedisStats) stats: RedisStats,
    @inject(CLOCK) clock: Clock,
  ) {
    this.options = options;
    this.logger = logger;
    this.stats = stats;
    this.clock = clock;
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
      // An idle connection whose path died is found by the OS too (a busy one is replaced by replace()).
      keepAlive: KEEPALIVE_MS,
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
        // The connections ioredis opens to the Sentinels itself (one per asking for the master, one per Sentinel
        // for the failover detector) get only a few of our options: `connectTimeout` (above) and
        // sentinelCommandTimeout bound their connect and every command; the detector's are reconnected with
        // sentinelReconnectStrategy. Not keepAlive: they have SO_KEEPALIVE with the system's idle time (2 h on
        // Linux), and ioredis has no option or hook for it (see the README).
        // A detector connection a Sentinel closed (restart, CLIENT KILL, RST) is made again with our backoff and
        // subscribes again; ioredis' default waits 60 s, and a +switch-master meanwhile came only from the others.
        sentinelReconnectStrategy: (times: number) => backoffDelay(times, minDelayMs, maxDelayMs),
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
    if (client instanceof Redis) this.watchHandshake(client, 'connection');
    this.keepConnecting(client, 'connection');
    if (pubsub) {
      const sub = client.duplicate();
      this.subscriber = sub;
      if (sub instanceof Redis) this.watchHandshake(sub, 'pub/sub connection');
      this.keepConnecting(sub, 'pub/sub connection');
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

  /**
   * ioredis gives up on a connection in some cases (status `end`, no
   * reconnect scheduled) although its retry strategies never do — notably
   * with Sentinel: when the Sentinels' `+switch-master` of a failover
   * reaches the failover detector of an earlier connection while ioredis is
   * asking the Sentinels for the master, its connector is told to disconnect
   * mid-connect and the connect fails for good ("Connection is closed").
   * Seen in the kill -9 failover test on a loaded machine: one resolver
   * stayed off Redis for good. The plugin never gives up: an ended
   * connection is connected again with the same backoff.
   */
  private keepConnecting(c: RedisClient, what: string): void {
    let attempts = 0;
    let lastError = '';
    c.on('error', (err: Error) => (lastError = err?.message ?? String(err)));
    c.on('ready', () => (attempts = 0));
    c.on('end', () => {
      if (this.stopped || (c !== this.client && c !== this.subscriber)) return;
      const delay = backoffDelay(++attempts, this.options.reconnect.minDelayMs, this.options.reconnect.maxDelayMs);
      this.logError(new Error(lastError || 'ended'), `${what}: ioredis stopped reconnecting; connecting again in ${delay} ms`);
      setTimeout(() => {
        if (this.stopped || c.status !== 'end' || (c !== this.client && c !== this.subscriber)) return;
        c.connect().catch(() => {}); // a failure ends it again: retried from here
      }, delay).unref();
    });
  }

  /**
   * A new connection whose handshake (AUTH, SELECT, the ready check) gets
   * nothing back within `connectTimeoutMs` of the TCP connect is closed and
   * tried again (ioredis' `connectTimeout` ends with the TCP connect, and it
   * would wait for the ready check forever). A server that answers anything
   * (even "loading") is left alone. Standalone and Sentinel (the data
   * connection); a Cluster's node connections are covered by {@link replace}.
   */
  private watchHandshake(c: Redis, what: string): void {
    let timer: NodeJS.Timeout | null = null;
    const clear = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };
    c.on('connect', () => {
      clear();
      const stream = c.stream;
      const before = stream.bytesRead;
      timer = setTimeout(() => {
        timer = null;
        if (this.stopped || c.status !== 'connect' || c.stream !== stream || stream.bytesRead !== before) return;
        this.stats.forcedReconnectsHandshake++;
        this.logError(
          new Error(`nothing came back within ${this.options.reconnect.connectTimeoutMs} ms of connecting`),
          `${what}: no answer to the handshake (dead path or hung server); closing it and connecting again`,
        );
        stream.destroy(); // ioredis sees the close and reconnects with backoff
      }, this.options.reconnect.connectTimeoutMs);
      timer.unref();
    });
    c.on('ready', clear);
    c.on('close', clear);
    c.on('end', clear);
  }

  /**
   * Closes the command connection and the pub/sub connection and connects
   * again (ioredis' reconnect, with backoff; Sentinel asks the Sentinels
   * anew; a Cluster reconnects to every node) — for a connection ioredis
   * still reports ready but on which reads keep timing out: a silently dead
   * TCP path, which the OS would keep for up to ~15 min (tcp_retries2), or
   * a hung server. The pub/sub connection goes too: it shares the path and,
   * mostly idle, would be the last to notice. At most once per
   * `breaker.cooldownMs`; false when nothing was done (not ready, too soon,
   * stopped). Counted in `forcedReconnectsTimeouts`; logged as a warning at most
   * once a minute.
   */
  replace(reason: string): boolean {
    const client = this.client;
    if (client === null || this.stopped || !this.ready || client.status !== 'ready') return false;
    const now = this.clock.now();
    if (now - this.lastReplaced < this.options.breaker.cooldownMs) return false;
    this.lastReplaced = now;
    this.stats.forcedReconnectsTimeouts++;
    const message = `plugin/redis: ${reason} on a connection that is still open (a silently dead network path, or Redis hung); closing it and connecting again`;
    const fields = { url: redactUrl(this.options.url), forcedReconnects: this.stats.forcedReconnects };
    if (now - this.lastReplacedLog >= 60_000) {
      this.lastReplacedLog = now;
      this.logger.warn(fields, message);
    } else this.logger.debug(fields, message);
    for (const c of [client, this.subscriber]) if (c !== null) this.drop(c);
    return true;
  }

  /**
   * Drops a client's connections for ioredis to make new ones: `disconnect(true)`
   * (reconnect), then the sockets destroyed at once — the disconnect only
   * ends them (FIN), and a dead path never answers, so they would linger
   * until `disconnectTimeout`.
   */
  private drop(c: RedisClient): void {
    const streams = c instanceof Cluster ? c.nodes().map((n) => n.stream) : [c.stream];
    try {
      c.disconnect(true);
    } catch (err) {
      this.logError(err, 'disconnect failed');
    }
    for (const stream of streams) stream?.destroy();
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

  /**
   * Logs a connection problem as a warning at most every 10 s of the
   * resolver's CLOCK (the same outage otherwise logs on every retry); the
   * others at debug.
   */
  logError(err: unknown, what: string): void {
    if (this.stopped) return;
    const now = this.clock.now();
    if (now - this.lastErrorLog < 10_000) {
      this.logger.debug({ err }, `plugin/redis: ${what}`);
      return;
    }
    this.lastErrorLog = now;
    this.logger.warn({ err: (err as Error)?.message ?? String(err) }, `plugin/redis: ${what}`);
  }
}
