/**
 * Options of the redis plugin: one TypeBox schema (types, defaults, bounds
 * and error messages all come from it).
 */
import { options, type Static, Type } from '@heimdall/core';

/** TLS settings (for `rediss://` URLs). */
export const redisTlsSchema = Type.Object(
  {
    caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA(s) that signed the server certificate (default: the system CAs).' })),
    certFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM client certificate, when the server asks for one (`tls-auth-clients`).' })),
    keyFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of `certFile`.' })),
    servername: Type.Optional(
      Type.String({ minLength: 1, maxLength: 253, description: 'Name checked against the server certificate (default: the host of the URL).' }),
    ),
    rejectUnauthorized: Type.Boolean({ default: true, description: 'Refuse servers whose certificate does not verify. Turn off only for tests.' }),
  },
  { additionalProperties: false, default: {}, description: 'TLS settings, used with the rediss:// schemes.' },
);

/** The circuit breaker in front of reads and writes. */
export const redisBreakerSchema = Type.Object(
  {
    failures: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 5,
      description:
        'Consecutive failed or timed-out reads after which the breaker opens: Redis is then not asked at all (reads are misses, writes are dropped).',
    }),
    cooldownMs: Type.Integer({
      minimum: 50,
      maximum: 600_000,
      default: 2000,
      description: 'How long (ms) the breaker stays open before one probe read (half-open); a good probe closes it, a bad one opens it again.',
    }),
    reconnectAfterTimeouts: Type.Integer({
      minimum: 0,
      maximum: 10_000,
      default: 6,
      description:
        'Consecutive timed-out reads (half-open probes and stuck write batches included) on a connection ioredis still reports ready, after which the plugin closes it and connects again: a silently dead TCP path (NAT or firewall state lost, peer gone without a RST) is otherwise kept until the OS gives up on it, up to ~15 min. The default is the `failures` that open the breaker plus one. At most one such reconnect per `cooldownMs`; 0 turns it off.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Circuit breaker: how Redis trouble is kept off the query path.' },
);

/** The write buffer. */
export const redisWritesSchema = Type.Object(
  {
    batchSize: Type.Integer({ minimum: 1, maximum: 10_000, default: 256, description: 'Most SET commands sent in one pipeline.' }),
    intervalMs: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 5,
      description: 'Longest time (ms) a write waits in the buffer before its pipeline is sent (a full batch goes at once).',
    }),
    maxPending: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      default: 10_000,
      description: 'Most writes waiting in memory (Redis slow or one pipeline still in flight). Beyond it new writes are dropped and counted.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Write-through of new cache entries: a bounded buffer sent in pipelined batches.' },
);

/** Reconnection backoff. */
export const redisReconnectSchema = Type.Object(
  {
    minDelayMs: Type.Integer({
      minimum: 10,
      maximum: 60_000,
      default: 100,
      description: 'First delay (ms) before reconnecting; doubles on each failed attempt.',
    }),
    maxDelayMs: Type.Integer({
      minimum: 10,
      maximum: 300_000,
      default: 2000,
      description: 'Longest delay (ms) between reconnection attempts. The plugin never gives up.',
    }),
    connectTimeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 2000, description: 'Time (ms) allowed for one connection attempt.' }),
  },
  { additionalProperties: false, default: {}, description: 'Reconnecting with backoff (ioredis retryStrategy) while Redis is down.' },
);

/** Flushes in Redis. */
export const redisFlushSchema = Type.Object(
  {
    scanCount: Type.Integer({ minimum: 10, maximum: 100_000, default: 1000, description: 'COUNT hint of each SCAN step when a flush deletes keys in Redis.' }),
    maxKeys: Type.Integer({
      minimum: 1,
      maximum: 1_000_000_000,
      default: 10_000_000,
      description: 'Most keys one flush examines in Redis (per node); beyond it the flush stops and logs a warning.',
    }),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 120_000, description: 'Longest time (ms) one flush spends deleting keys in Redis.' }),
  },
  { additionalProperties: false, default: {}, description: 'How a cache flush deletes the matching keys in Redis (SCAN with MATCH, bounded).' },
);

/** The redis plugin's options schema. */
export const redisOptionsSchema = options({
  url: Type.String({
    minLength: 1,
    maxLength: 4096,
    pattern: '^rediss?(\\+sentinel|\\+cluster)?://',
    errorMessage: 'must be a redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster:// URL',
    description:
      'Where Redis is. `redis://[user:password@]host[:6379][/db]` (standalone; `rediss://` for TLS); `redis+sentinel://[user:password@]sentinel1[:26379],sentinel2…/masterName[/db]` (Sentinel); `redis+cluster://[user:password@]node1[:6379],node2…` (Cluster seed nodes). IPv6 hosts in brackets.',
  }),
  passwordFile: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'File holding the Redis password (trailing newline ignored); it replaces a password in the URL. Read at start and again before every reconnect, so a rotated password is picked up without a restart.',
    }),
  ),
  sentinelPasswordFile: Type.Optional(
    Type.String({ minLength: 1, description: "File holding the Sentinels' own password (redis+sentinel:// only), when they require one." }),
  ),
  tls: redisTlsSchema,
  keyPrefix: Type.String({
    minLength: 1,
    maxLength: 64,
    default: 'heimdall:',
    description:
      'Prefix of every key and channel the plugin uses. Instances that share a prefix share a cache; give unrelated deployments on one Redis different prefixes.',
  }),
  timeoutMs: Type.Integer({
    minimum: 1,
    maximum: 2000,
    default: 20,
    description:
      'Budget (ms) of one read on a local miss: a read not answered by then is a miss (and counts towards the breaker). The cache also bounds all its tiers with `tiers.timeoutMs`.',
  }),
  breaker: redisBreakerSchema,
  writes: redisWritesSchema,
  reconnect: redisReconnectSchema,
  startWaitMs: Type.Integer({
    minimum: 0,
    maximum: 60_000,
    default: 1000,
    description:
      'How long (ms) start waits for the first connection. After that the resolver serves on its local tiers and the plugin keeps connecting in the background.',
  }),
  sync: Type.Boolean({
    default: true,
    description: 'Share cache flushes with the other instances (pub/sub, plus a short log in Redis that a reconnecting instance replays).',
  }),
  stateStore: Type.Boolean({
    default: true,
    description:
      "Provide STATE_STORE (runtime state such as blocking's disable-until) in Redis, shared by every instance. It outranks a host-local provider (persistence).",
  }),
  flush: redisFlushSchema,
});

/** Options of the redis plugin, defaults filled in. */
export type RedisOptions = Static<typeof redisOptionsSchema>;
