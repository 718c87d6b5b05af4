import { CACHE_CONTROL, type CacheControl, STATE_STORE, type StateStore } from '@heimdall/core';
import { expectAnswers, query, type TestResolver } from '@heimdall/testing';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RedisConnection } from './connection.js';
import { RedisStats } from './stats.js';
import { cleanup, haveRedis, RedisServer, startResolver, waitFor } from './test-util.js';

const available = haveRedis();
let server: RedisServer;
const started: TestResolver[] = [];

async function start(options: Omit<NonNullable<Parameters<typeof startResolver>[0]>, 'url'> = {}) {
  const r = await startResolver({ url: server.url, ...options });
  started.push(r.resolver);
  return {
    ...r,
    stats: r.resolver.scope('redis').get(RedisStats),
    control: r.resolver.get<CacheControl>(CACHE_CONTROL),
    state: r.resolver.get<StateStore>(STATE_STORE),
  };
}

beforeEach(async () => {
  if (available) server = await RedisServer.start();
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()));
  await server?.stop();
});
afterAll(cleanup);

describe.runIf(available)('two resolvers sharing one Redis', () => {
  it('a name answered by A is a tier hit in B (B never asks its upstream)', async () => {
    const a = await start();
    const b = await start();
    expectAnswers(await a.resolver.handle(query('shared.example')), ['192.0.2.1']);
    expect(a.upstream.n).toBe(1);
    await waitFor(() => redisHas(server, 'shared.example'), 'the write to reach Redis');
    expectAnswers(await b.resolver.handle(query('shared.example')), ['192.0.2.1']);
    expect(b.upstream.n).toBe(0);
    expect(b.cache.stats.tierHits).toBe(1);
    expect(b.stats.hits).toBe(1);
  });

  it('flushes in A reach B (name, suffix, all), delete the keys in Redis, and do not echo back to A', async () => {
    const a = await start();
    const b = await start();
    const names = ['www.flush.example', 'a.www.flush.example', 'other.example', 'x.other.example'];
    for (const n of names) await a.resolver.handle(query(n));
    for (const n of names) await waitFor(() => redisHas(server, n), `${n} in Redis`);
    for (const n of names) await b.resolver.handle(query(n));
    expect(b.cache.l1.size).toBe(4);
    expect(b.upstream.n).toBe(0);

    a.control.flush({ name: 'WWW.flush.example' });
    await waitFor(() => b.cache.l1.size === 3, 'B to apply the name flush');
    await waitFor(async () => !(await redisHas(server, 'www.flush.example')), 'the key to leave Redis');
    expect(await redisHas(server, 'a.www.flush.example')).toBe(true);

    a.control.flush({ suffix: '*.other.example' });
    await waitFor(() => b.cache.l1.size === 1, 'B to apply the suffix flush');
    await waitFor(async () => !(await redisHas(server, 'x.other.example')) && !(await redisHas(server, 'other.example')), 'the suffix keys to leave Redis');

    a.control.flush({ all: true });
    await waitFor(() => b.cache.l1.size === 0, 'B to apply the flush of everything');
    await waitFor(async () => (await countKeys(server, 'heimdall:c:*')) === 0, 'every cache key to leave Redis');
    expect(b.stats.syncReceived).toBe(3);
    expect(a.stats.syncReceived).toBe(0);
    expect(a.stats.syncSent).toBeGreaterThanOrEqual(3);
  });

  it('blocking.disabledUntil set through STATE_STORE in A reaches B and a later instance C', async () => {
    const a = await start();
    const b = await start();
    const seen: unknown[] = [];
    b.state.subscribe('blocking.disabledUntil', (v) => seen.push(v));
    const until = Date.now() + 60_000;
    a.state.set('blocking.disabledUntil', until, { ttlMs: 60_000 });
    expect(a.state.get('blocking.disabledUntil')).toBe(until);
    await waitFor(() => b.state.get('blocking.disabledUntil') === until, 'B to see the value');
    expect(seen).toEqual([until]);
    const c = await start();
    expect(c.state.get('blocking.disabledUntil')).toBe(until);
    a.state.set('blocking.disabledUntil', null);
    await waitFor(() => b.state.get('blocking.disabledUntil') === null && c.state.get('blocking.disabledUntil') === null, 'B and C to see null');
    expect(seen).toEqual([until, null]);
    a.state.set('blocking.disabledUntil', undefined);
    await waitFor(() => b.state.get('blocking.disabledUntil') === undefined, 'B to see the deletion');
  });

  it('after Redis restarts: a flush made while it was down reaches B, and state written while it was down is shared', async () => {
    const a = await start({ reconnect: { minDelayMs: 50, maxDelayMs: 300 } });
    const b = await start({ reconnect: { minDelayMs: 50, maxDelayMs: 300 } });
    await a.resolver.handle(query('kept.example'));
    await waitFor(() => redisHas(server, 'kept.example'), 'the write');
    await b.resolver.handle(query('kept.example'));
    expect(b.cache.l1.has(keyString('kept.example'))).toBe(true);
    await server.kill();
    await waitFor(() => !isReady(a.resolver) && !isReady(b.resolver), 'A and B to notice');
    a.control.flush({ name: 'kept.example' });
    a.state.set('note', { from: 'a' });
    expect(b.cache.l1.has(keyString('kept.example'))).toBe(true);
    await server.start();
    const ms = await waitFor(
      () => !b.cache.l1.has(keyString('kept.example')) && (b.state.get('note') as { from?: string } | undefined)?.from === 'a',
      'B to catch up',
      10_000,
    );
    expect(ms).toBeLessThan(10_000);
  });
});

function isReady(r: TestResolver): boolean {
  return r.scope('redis').get(RedisConnection).ready;
}

function keyString(name: string): string {
  const parts: string[] = [];
  for (const l of name.split('.')) parts.push(String.fromCharCode(l.length), l);
  return `${parts.join('')}\x00\x00\x01\x00\x01\x30`;
}

async function redisHas(s: RedisServer, name: string): Promise<boolean> {
  const c = s.client();
  try {
    return (await c.exists(Buffer.from(`heimdall:c:${keyString(name)}`, 'latin1'))) === 1;
  } finally {
    c.disconnect();
  }
}

async function countKeys(s: RedisServer, pattern: string): Promise<number> {
  const c = s.client();
  try {
    return (await c.keys(pattern)).length;
  } finally {
    c.disconnect();
  }
}
