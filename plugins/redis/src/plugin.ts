/**
 * The `redis` plugin: a cache tier shared by every instance (`CACHE_TIERS`,
 * name `redis`), cache flushes shared across instances, and a state store
 * in Redis (`STATE_STORE`), through ioredis (standalone, Sentinel, Cluster).
 */
import { CACHE_TIERS, definePlugin, type Logger, PLUGIN_LOGGER, PLUGIN_METRICS, PLUGIN_OPTIONS, type Provision, STATE_STORE } from '@heimdall/core';
import { ContainerModule, inject, injectable, type PluginMetrics } from '@heimdall/core/di';
import { Breaker } from './breaker.js';
import { RedisConnection } from './connection.js';
import { type RedisOptions, redisOptionsSchema } from './options.js';
import { RedisStateStore } from './state.js';
import { RedisStats } from './stats.js';
import { RedisFlusher, RemoteFlushes, SyncChannel } from './sync.js';
import { RedisTier } from './tier.js';
import { parseRedisUrl } from './url.js';

/** The plugin's Prometheus metrics, read from {@link RedisStats} at scrape time. */
@injectable()
export class RedisMetrics {
  constructor(
    @inject(PLUGIN_METRICS) metrics: PluginMetrics,
    @inject(RedisStats) stats: RedisStats,
    @inject(Breaker) breaker: Breaker,
    @inject(RedisConnection) conn: RedisConnection,
    @inject(RedisTier) tier: RedisTier,
  ) {
    metrics.counterFields(stats, [
      ['hits_total', 'hits', 'Tier reads that found an entry.'],
      ['misses_total', 'misses', 'Tier reads that found no entry.'],
      ['timeouts_total', 'timeouts', 'Tier reads not answered within timeoutMs (read as misses).'],
      ['errors_total', 'errors', 'Reads and write batches that failed (connection lost, error reply, stuck).'],
      ['skipped_total', 'skipped', 'Tier reads not sent because Redis is down or the breaker is open (misses at once).'],
      ['writes_total', 'writes', 'Entries written to Redis.'],
      ['dropped_writes_total', 'droppedWrites', 'Entries not written: buffer full, Redis down or breaker open, or their batch failed.'],
      ['breaker_opened_total', 'breakerOpened', 'Times the circuit breaker opened.'],
      ['sync_sent_total', 'syncSent', 'Sync messages published (flushes, state changes).'],
      ['sync_received_total', 'syncReceived', 'Flushes from other instances applied here (pub/sub or replayed from the flush log).'],
      ['flushed_keys_total', 'flushedKeys', 'Keys deleted in Redis by flushes made here.'],
    ]);
    metrics.counter({
      name: 'reconnects_forced_total',
      help: 'Connections to Redis the plugin closed and made again. reason: timeouts = reads kept timing out on an open one (breaker.reconnectAfterTimeouts), handshake = a new one did not answer its handshake within reconnect.connectTimeoutMs.',
      labelNames: ['reason'] as const,
      collect() {
        this.reset();
        this.labels('timeouts').inc(stats.forcedReconnectsTimeouts);
        this.labels('handshake').inc(stats.forcedReconnectsHandshake);
      },
    });
    metrics.gaugeOf(
      'breaker_state',
      'Circuit breaker: 0 closed (Redis in use), 1 open (Redis not asked), 2 half-open (one probe in flight).',
      () => breaker.state,
      'max', // workers: the worst breaker
    );
    metrics.gaugeOf('connected', '1 while the command connection to Redis is ready (in every worker), else 0.', () => (conn.ready ? 1 : 0), 'min');
    metrics.gaugeOf('pending_writes', 'Writes waiting in the buffer.', () => tier.pendingWrites);
  }
}

/** Logs breaker changes. */
@injectable()
export class BreakerLog {
  constructor(@inject(Breaker) breaker: Breaker, @inject(RedisConnection) conn: RedisConnection, @inject(PLUGIN_LOGGER) logger: Logger) {
    const names = ['closed', 'open', 'half-open'];
    breaker.onChange = (state) => {
      if (state === 1) logger.warn('plugin/redis: circuit breaker open; Redis is not asked until a probe succeeds');
      else logger.info(`plugin/redis: circuit breaker ${names[state]}`);
    };
    conn.onReady(() => breaker.reset());
  }
}

/**
 * Replaces a connection that is open but dead: after
 * `breaker.reconnectAfterTimeouts` timed-out reads in a row (the breaker's
 * half-open probes included) the connections are closed and made again
 * ({@link RedisConnection.replace}, at most once per `breaker.cooldownMs`).
 */
@injectable()
export class DeadConnectionGuard {
  constructor(@inject(Breaker) breaker: Breaker, @inject(RedisConnection) conn: RedisConnection, @inject(PLUGIN_OPTIONS) options: RedisOptions) {
    const after = options.breaker.reconnectAfterTimeouts;
    if (after > 0) {
      breaker.onTimeout((inARow) => {
        if (inARow >= after) conn.replace(`${inARow} reads in a row timed out`);
      });
    }
  }
}

/**
 * The redis plugin. Put it after the cache (and after `persistence`, if
 * any: tiers are consulted in chain order); it has no middleware:
 * `plugins: [cache(), redis({ url: 'redis://10.0.0.5:6379' }), upstream({ servers: ['1.1.1.1'] })]`.
 */
export const redis = definePlugin({
  name: 'redis',
  description: 'A cache tier in Redis shared by every instance, shared cache flushes and a shared state store (standalone, Sentinel or Cluster; ioredis).',
  options: redisOptionsSchema,
  setup: (o, { path }) => {
    parseRedisUrl(o.url, `${path}.url`); // a bad URL fails at config time, naming the field
    const provides: Provision[] = [{ token: CACHE_TIERS, use: RedisTier }];
    if (o.stateStore) provides.push({ token: STATE_STORE, use: RedisStateStore, priority: 10 }); // shared state outranks a host-local store (persistence)
    return {
      module: new ContainerModule(({ bind }) => {
        bind(RedisStats).toSelf();
        bind(RedisConnection).toSelf();
        bind(Breaker).toSelf();
        bind(SyncChannel).toSelf();
        bind(RedisFlusher).toSelf();
        bind(RemoteFlushes).toSelf();
        bind(RedisTier).toSelf();
        bind(RedisStateStore).toSelf();
        bind(RedisMetrics).toSelf();
        bind(BreakerLog).toSelf();
        bind(DeadConnectionGuard).toSelf();
      }),
      provides,
      async start(scope) {
        scope.get(RedisMetrics);
        scope.get(BreakerLog);
        scope.get(DeadConnectionGuard);
        const channel = scope.get(SyncChannel);
        channel.attach();
        if (o.sync) scope.get(RemoteFlushes);
        const state = o.stateStore ? scope.get(RedisStateStore) : null;
        const conn = scope.get(RedisConnection);
        await conn.start(o.sync || o.stateStore);
        channel.listen();
        // Connected: the current state is read before the resolver serves (bounded like the connection wait).
        if (state !== null && conn.ready) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([state.load(), new Promise((resolve) => (timer = setTimeout(resolve, Math.max(100, o.startWaitMs))))]);
          clearTimeout(timer);
        }
      },
      async stop(scope) {
        const tier = scope.get(RedisTier);
        if (scope.get(RedisConnection).ready) {
          await Promise.race([tier.drain(), new Promise((resolve) => setTimeout(resolve, 1000))]);
        }
        tier.discard();
        await scope.get(RedisConnection).stop();
      },
    };
  },
});

export default redis;
