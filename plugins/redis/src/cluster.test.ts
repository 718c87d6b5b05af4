import { CACHE_CONTROL, CACHE_TIERS, type CacheControl, type CacheTier, STATE_STORE, type StateStore } from '@heimdall/core';
import { query, type TestResolver } from '@heimdall/testing';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisTier } from './tier.js';
import { cleanup, haveRedis, type RedisServer, startCluster, startResolver, waitFor } from './test-util.js';

const available = haveRedis();
let nodes: RedisServer[];
const started: TestResolver[] = [];

beforeAll(async () => {
  if (available) nodes = await startCluster();
}, 60_000);
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()));
});
afterAll(cleanup);

const clusterUrl = (): string => `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;

async function start() {
  const r = await startResolver({ url: clusterUrl(), timeoutMs: 500 }); // a functional test: a busy machine must not turn reads into misses
  started.push(r.resolver);
  const tier = r.resolver.container.getAll<CacheTier>(CACHE_TIERS)[0] as RedisTier;
  return { ...r, tier, control: r.resolver.get<CacheControl>(CACHE_CONTROL), state: r.resolver.get<StateStore>(STATE_STORE) };
}

/** Cache keys on each master. */
async function keysOnEachNode(): Promise<number[]> {
  const c = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
  try {
    await new Promise<void>((resolve) => c.once('ready', () => resolve()));
    return await Promise.all(c.nodes('master').map(async (n) => (await n.keys('heimdall:c:*')).length));
  } finally {
    c.disconnect();
  }
}

describe.runIf(available)('a 3-node Redis Cluster (redis+cluster://)', () => {
  it('get/set across slots, shared by two resolvers; flush by name, suffix and all deletes on every node and reaches the other', async () => {
    const a = await start();
    const b = await start();
    const names = Array.from({ length: 60 }, (_, i) => `h${i}.zone${i % 3}.example`);
    for (const n of names) await a.resolver.handle(query(n));
    await a.tier.drain();
    const perNode = await keysOnEachNode();
    expect(perNode.reduce((x, y) => x + y, 0)).toBe(60);
    expect(perNode.every((n) => n > 0)).toBe(true); // spread over the three masters
    for (const n of names) await b.resolver.handle(query(n));
    expect(b.upstream.n).toBe(0);
    expect(b.cache.stats.tierHits).toBe(60);

    a.control.flush({ name: 'h0.zone0.example' });
    await waitFor(() => b.cache.l1.size === 59, 'B to apply the name flush');
    await waitFor(async () => (await keysOnEachNode()).reduce((x, y) => x + y, 0) === 59, 'the key to leave the cluster');

    a.control.flush({ suffix: 'zone1.example' });
    await waitFor(() => b.cache.l1.size === 39, 'B to apply the suffix flush');
    await waitFor(async () => (await keysOnEachNode()).reduce((x, y) => x + y, 0) === 39, 'the zone1 keys to leave the cluster');

    a.state.set('blocking.disabledUntil', 123);
    await waitFor(() => b.state.get('blocking.disabledUntil') === 123, 'B to see the state');

    a.control.flush({ all: true });
    await waitFor(() => b.cache.l1.size === 0, 'B to apply the flush of everything');
    await waitFor(async () => (await keysOnEachNode()).reduce((x, y) => x + y, 0) === 0, 'every cache key to leave the cluster');
  }, 60_000);
});
