import { CACHE_TIERS, type CacheTier, ConfigError } from '@heimdall/core';
import { systemClock } from '@heimdall/core/pipeline';
import { testResolver } from '@heimdall/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { redis } from './plugin.js';
import type { RedisTier } from './tier.js';
import { cleanup, freePort, haveRedis, RedisServer, selfSigned } from './test-util.js';
import { parseRedisUrl, redactUrl } from './url.js';

afterAll(cleanup);

describe('url', () => {
  it('standalone, TLS, credentials, database', () => {
    expect(parseRedisUrl('redis://10.0.0.5')).toEqual({ mode: 'standalone', tls: false, node: { host: '10.0.0.5', port: 6379 }, db: 0 });
    expect(parseRedisUrl('rediss://app:p%40ss@redis.internal:6380/2')).toEqual({
      mode: 'standalone',
      tls: true,
      node: { host: 'redis.internal', port: 6380 },
      db: 2,
      username: 'app',
      password: 'p@ss',
    });
    expect(parseRedisUrl('redis://:pw@[::1]:7000')).toEqual({ mode: 'standalone', tls: false, node: { host: '::1', port: 7000 }, db: 0, password: 'pw' });
  });

  it('Sentinel and Cluster', () => {
    expect(parseRedisUrl('redis+sentinel://s1,s2:26380,[fd00::1]/mymaster/3')).toEqual({
      mode: 'sentinel',
      tls: false,
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
        { host: 'fd00::1', port: 26379 },
      ],
      masterName: 'mymaster',
      db: 3,
    });
    expect(parseRedisUrl('rediss+cluster://:pw@n1:7000,n2:7001')).toEqual({
      mode: 'cluster',
      tls: true,
      nodes: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 7001 },
      ],
      password: 'pw',
    });
  });

  it('rejects what it cannot use, naming the field, without echoing the password', () => {
    const bad = ['http://x', 'redis://', 'redis://a,b', 'redis://h:99999', 'redis://h/x', 'redis+sentinel://s1', 'redis+cluster://n1/0', 'redis://h/1/2'];
    for (const url of bad) expect(() => parseRedisUrl(url, 'plugins[3].options.url'), url).toThrow(ConfigError);
    expect(() => redis({ url: 'http://x' })).toThrow(/redis\.url: must be a redis:\/\//);
    expect(() => redis({ url: 'redis://a,b' })).toThrow(/redis\.url: a redis:\/\/ URL names one server/);
    expect(() => redis({ url: 'redis://h', timeoutMs: 0 })).toThrow(/redis\.timeoutMs/);
    expect(() => redis({ url: 'redis://h', bogus: 1 } as never)).toThrow(/bogus/);
    expect(() => parseRedisUrl('redis://h:0')).toThrow('redis.url: port must be an integer in 1..65535, got 0');
    expect(redactUrl('rediss://app:secret@h:1/0')).toBe('rediss://app:***@h:1/0');
  });

  it('defaults', () => {
    expect(redis({ url: 'redis://h' }).options).toMatchObject({
      keyPrefix: 'heimdall:',
      timeoutMs: 20,
      breaker: { failures: 5, cooldownMs: 2000 },
      writes: { batchSize: 256, intervalMs: 5, maxPending: 10_000 },
      reconnect: { minDelayMs: 100, maxDelayMs: 2000, connectTimeoutMs: 2000 },
      startWaitMs: 1000,
      sync: true,
      stateStore: true,
      tls: { rejectUnauthorized: true },
    });
  });
});

describe.runIf(haveRedis())('TLS (rediss://) against redis-server --tls-port', () => {
  it('stores and reads through a TLS connection verified with caFile', async () => {
    const { cert, key } = await selfSigned();
    const port = await freePort();
    const server = await RedisServer.start(
      ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no'],
      port,
    );
    const resolver = testResolver([redis({ url: `rediss://localhost:${port}`, tls: { caFile: cert } })], { clock: systemClock });
    await resolver.start();
    try {
      const tier = resolver.container.getAll<CacheTier>(CACHE_TIERS)[0] as RedisTier;
      const k = Buffer.from('\x03tls\x07example\x00\x00\x01\x00\x010', 'latin1');
      tier.set(k, Buffer.from('over-tls'), Date.now() + 60_000);
      await tier.drain();
      expect(Buffer.from((await tier.get(k)) as Uint8Array).toString()).toBe('over-tls');
    } finally {
      await resolver.stop();
      await server.stop();
    }
  });
});
