/**
 * cache + dedup + the real upstream plugin against a fake DNS server on
 * loopback (real sockets, real clock; short TTLs and timeouts).
 */
import { type ClientInfo, createResolver, decode, type Resolver } from '@heimdall/core';
import { CACHE_STORE, type CacheStore, cache } from '@heimdall/plugin-cache';
import { upstream } from '@heimdall/plugin-upstream';
import { FakeUpstream, query, record } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { dedup } from './index.js';

const CLIENT: ClientInfo = { address: '127.0.0.1', port: 40000, family: 4, transport: 'udp' };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let up: FakeUpstream | null = null;
let resolver: Resolver | null = null;
afterEach(async () => {
  await resolver?.stop();
  await up?.close();
  resolver = null;
  up = null;
});

async function build(cacheOptions: Parameters<typeof cache>[0]): Promise<{ up: FakeUpstream; resolver: Resolver; store: CacheStore }> {
  up = await FakeUpstream.start();
  resolver = createResolver({
    plugins: [cache(cacheOptions), dedup(), upstream({ servers: [`${up.address}:${up.port}`], timeout: 400, maxAttempts: 1, budget: 600, health: { maxFailures: 0 } })],
  });
  await resolver.start();
  return { up, resolver, store: resolver.container.get<CacheStore>(CACHE_STORE) };
}

describe('cache + dedup + upstream over loopback', () => {
  it('100 concurrent queries make one upstream query; the answer is then served from the cache', async () => {
    const { up, resolver } = await build({});
    up.on('example.com', 'A', { answers: [record('example.com', 'A', '192.0.2.7', 300)], delayMs: 30 });
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => resolver.handle(query(i % 2 ? 'Example.COM' : 'example.com', 'A', { id: i }), CLIENT)));
    expect(up.count('example.com', 'A')).toBe(1);
    answers.forEach((a, i) => {
      const m = decode(a!);
      expect(m.id).toBe(i);
      expect(m.questions[0].name).toBe(i % 2 ? 'Example.COM' : 'example.com');
      expect(m.answers[0].data).toBe('192.0.2.7');
    });
    const hit = resolver.process(query('EXAMPLE.com', 'A', { id: 4242 }), CLIENT);
    expect(hit).toBeInstanceOf(Buffer);
    expect(decode(hit as Buffer).id).toBe(4242);
    expect(up.count('example.com', 'A')).toBe(1);
  });

  it('prefetches through the UPSTREAM service', async () => {
    const { up, resolver, store } = await build({ prefetch: { amount: 1, percentage: 90 } });
    up.on('pf.example', 'A', [record('pf.example', 'A', '192.0.2.8', 10)]);
    await resolver.handle(query('pf.example'), CLIENT);
    await sleep(1100); // 9 s left of 10: within the last 90 %
    await resolver.handle(query('pf.example'), CLIENT);
    for (let i = 0; i < 50 && up.count('pf.example', 'A') < 2; i++) await sleep(10);
    expect(up.count('pf.example', 'A')).toBe(2);
    expect(store.stats.prefetches).toBe(1);
  });

  it('serves stale when the upstream stops answering', async () => {
    const { up, resolver, store } = await build({ serveStale: { clientTimeout: 150 } });
    up.on('st.example', 'A', [record('st.example', 'A', '192.0.2.9', 1)]);
    await resolver.handle(query('st.example'), CLIENT);
    await sleep(1100);
    up.on('st.example', 'A', { drop: true });
    const t = Date.now();
    const m = decode((await resolver.handle(query('st.example', 'A', { id: 5 }), CLIENT))!);
    expect(Date.now() - t).toBeLessThan(400);
    expect(m.rcode).toBe(0);
    expect(m.id).toBe(5);
    expect(m.answers[0].ttl).toBe(30);
    expect(store.stats.staleAnswers).toBe(1);
  });
});
