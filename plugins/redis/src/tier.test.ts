import { CACHE_TIERS, type CacheTier, METRICS, type Registry } from '@heimdall/core';
import { systemClock } from '@heimdall/core/pipeline';
import { type TestResolver, testResolver } from '@heimdall/testing';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from './connection.js';
import { redis } from './plugin.js';
import { RedisStats } from './stats.js';
import type { RedisTier } from './tier.js';
import { cleanup, freePort, haveRedis, RedisServer, waitFor } from './test-util.js';

const available = haveRedis();
let server: RedisServer;
const started: TestResolver[] = [];

async function instance(options: Record<string, unknown> = {}, url = server.url): Promise<{ resolver: TestResolver; tier: RedisTier; stats: RedisStats }> {
  // A read budget far above any loopback round trip: these tests check values, not the budget (failure.test.ts does),
  // and a busy CI machine must not turn a slow GET into a miss.
  const resolver = testResolver([redis({ url, timeoutMs: 2000, ...options } as never)], { clock: systemClock });
  started.push(resolver);
  await resolver.start();
  const tier = resolver.container.getAll<CacheTier>(CACHE_TIERS)[0] as RedisTier;
  return { resolver, tier, stats: resolver.scope('redis').get(RedisStats) };
}

function keyOf(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const l of name.split('.')) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  return Buffer.concat([...parts, Buffer.from([0, 0, 1, 0, 1, 0x31])]);
}

beforeAll(async () => {
  if (available) server = await RedisServer.start();
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()));
});
afterAll(cleanup);

describe.runIf(available)('redis tier', () => {
  it('stores an entry with PX from its absolute expiry under the key prefix and reads it back', async () => {
    const { tier, stats } = await instance({ keyPrefix: 't1:' });
    const key = keyOf('www.example.com');
    const entry = Buffer.from('entry-bytes\x00\xff', 'latin1');
    expect(await tier.get(key)).toBeUndefined();
    tier.set(key, entry, Date.now() + 60_000);
    await tier.drain();
    const got = await tier.get(key);
    expect(Buffer.from(got as Uint8Array).equals(entry)).toBe(true);
    expect(stats.hits).toBe(1);
    expect(stats.misses).toBe(1);
    expect(stats.writes).toBe(1);
    const c = server.client();
    const pttl = await c.pttl(Buffer.concat([Buffer.from('t1:c:'), key]));
    await c.quit();
    expect(pttl).toBeGreaterThan(58_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('lets Redis expire an entry at its expiry; already expired entries are not written', async () => {
    const { tier, stats } = await instance({ keyPrefix: 't2:' });
    const key = keyOf('short.example');
    tier.set(key, Buffer.from('x'), Date.now() + 150);
    tier.set(keyOf('gone.example'), Buffer.from('y'), Date.now() - 1);
    await tier.drain();
    expect(stats.writes).toBe(1);
    expect(await tier.get(key)).toBeDefined();
    await waitFor(async () => (await tier.get(key)) === undefined, 'the entry to expire in Redis', 2000);
  });

  it('pipelines writes in batches and drops (counting) beyond maxPending', async () => {
    const { tier, stats } = await instance({ keyPrefix: 't3:', writes: { batchSize: 50, maxPending: 300, intervalMs: 1000 } });
    for (let i = 0; i < 400; i++) tier.set(keyOf(`n${i}.example`), Buffer.from(`v${i}`), Date.now() + 60_000);
    expect(stats.droppedWrites).toBeGreaterThan(0);
    await tier.drain();
    expect(stats.writes + stats.droppedWrites).toBe(400);
    expect(stats.writes).toBeGreaterThanOrEqual(300);
    const v = await tier.get(keyOf('n7.example'));
    expect(Buffer.from(v as Uint8Array).toString()).toBe('v7');
  });

  it('starts while Redis is down (reads miss at once, writes are dropped) and uses it once it is up', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const { tier, stats, resolver } = await instance({ startWaitMs: 200, reconnect: { minDelayMs: 50, maxDelayMs: 200 } }, `redis://127.0.0.1:${port}`);
    expect(Date.now() - t0).toBeLessThan(2000);
    const key = keyOf('later.example');
    const t1 = performance.now();
    expect(tier.get(key)).toBeUndefined(); // synchronous: no waiting on a dead Redis
    expect(performance.now() - t1).toBeLessThan(5);
    tier.set(key, Buffer.from('v'), Date.now() + 60_000);
    expect(stats.droppedWrites).toBe(1);
    expect(stats.skipped).toBe(1);
    const late = await RedisServer.start([], port);
    await waitFor(() => tier.get(key) instanceof Promise, 'the plugin to connect', 10_000);
    tier.set(key, Buffer.from('v'), Date.now() + 60_000);
    await tier.drain();
    expect(Buffer.from((await tier.get(key)) as Uint8Array).toString()).toBe('v');
    const text = await resolver.get<Registry>(METRICS).metrics();
    expect(text).toMatch(/heimdall_redis_connected 1/);
    expect(text).toMatch(/heimdall_redis_hits_total 1/);
    expect(text).toMatch(/heimdall_redis_dropped_writes_total 1/);
    expect(text).toMatch(/heimdall_redis_breaker_state 0/);
    await late.stop();
  });

  it('reads the password from passwordFile (requirepass)', async () => {
    const { tempFile } = await import('./test-util.js');
    const secured = await RedisServer.start(['--requirepass', 's3cret pass']);
    const file = tempFile('pw', 's3cret pass\n');
    const { tier } = await instance({ passwordFile: file }, secured.url);
    const key = keyOf('auth.example');
    tier.set(key, Buffer.from('ok'), Date.now() + 60_000);
    await tier.drain();
    expect(Buffer.from((await tier.get(key)) as Uint8Array).toString()).toBe('ok');
    await secured.stop();
  });

  it('reads passwordFile again before reconnecting: a rotated password is picked up without a restart', async () => {
    const { tempFile } = await import('./test-util.js');
    const { writeFileSync } = await import('node:fs');
    const secured = await RedisServer.start(['--requirepass', 'old-secret']);
    const file = tempFile('pw', 'old-secret\n');
    const { tier, resolver } = await instance({ passwordFile: file, reconnect: { minDelayMs: 50, maxDelayMs: 200 } }, secured.url);
    const key = keyOf('rotate.example');
    tier.set(key, Buffer.from('before'), Date.now() + 60_000);
    await tier.drain();
    // Rotate: the new secret in the file and on the server, then drop every client connection.
    writeFileSync(file, 'new-secret\n');
    const admin = new Redis({ host: '127.0.0.1', port: secured.port, password: 'old-secret', lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
    await admin.config('SET', 'requirepass', 'new-secret');
    await admin.client('KILL', 'TYPE', 'normal');
    admin.disconnect();
    const conn = resolver.scope('redis').get(RedisConnection);
    await waitFor(() => !conn.ready, 'the connection to drop', 5_000);
    await waitFor(() => conn.ready, 'the plugin to reconnect with the new password', 10_000);
    expect(Buffer.from((await tier.get(key)) as Uint8Array).toString()).toBe('before');
    // An unreadable file keeps the password in use; a readable one with a new password replaces it.
    const client = conn.client as Redis;
    const { rmSync } = await import('node:fs');
    rmSync(file);
    conn.refreshPassword();
    expect(client.options.password).toBe('new-secret');
    writeFileSync(file, 'third-secret\n');
    conn.refreshPassword();
    expect(client.options.password).toBe('third-secret');
    await secured.stop();
  });
});
