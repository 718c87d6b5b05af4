import {
  CACHE_CONTROL,
  type CacheControl,
  type ClientInfo,
  ConfigError,
  createResolver,
  type HeimdallPlugin,
  type Registry as RegistryType,
  type Resolver,
  UPSTREAM,
  type Upstream,
} from '@heimdall/core';
import { ContainerModule } from '@heimdall/core/di';
import { FakeClock } from '@heimdall/testing';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { cache } from './plugin.js';
import { CacheStore } from './store.js';
import { aRecords, decode, flush, makeQuery, makeResponse, soa, ttlsOf } from './test-util.js';

const CLIENT: ClientInfo = { address: '192.0.2.10', port: 5300, family: 4, transport: 'udp' };

type Handler = (q: any, raw: Buffer) => Buffer | Promise<Buffer>;

/** A fake forwarder: the UPSTREAM service and a last-in-chain middleware calling it. */
function fakeUpstream(handler: Handler) {
  const calls: Buffer[] = [];
  let current = handler;
  const upstream: Upstream = {
    async resolve(query: Buffer): Promise<Buffer> {
      calls.push(query);
      return current(decode(query), query);
    },
  };
  const FAKE = Symbol('fake upstream');
  const plugin: HeimdallPlugin = {
    name: 'fake-upstream',
    module: new ContainerModule(({ bind }) => {
      bind(FAKE).toConstantValue(upstream);
    }),
    provides: [{ token: UPSTREAM, use: FAKE }],
    middleware: () => async (ctx) => {
      ctx.response = await upstream.resolve(ctx.request);
    },
  };
  return {
    plugin,
    calls,
    set(h: Handler) {
      current = h;
    },
  };
}

/** Answers A queries with two records of `ttl`, echoing ID, name, DO. */
const answerA =
  (ttl: number): Handler =>
  (q) =>
    makeResponse(q.questions[0].name, {
      id: q.id,
      type: q.questions[0].type,
      edns: (q.additionals ?? []).some((a: any) => a.type === 'OPT'),
      do: (q.additionals ?? []).some((a: any) => a.type === 'OPT' && a.flags & 0x8000),
      cd: (q.flags & 0x10) !== 0,
      answers: aRecords(q.questions[0].name, ttl),
    });

let resolvers: Resolver[] = [];
afterEach(async () => {
  for (const r of resolvers) await r.stop();
  resolvers = [];
});

function setup(options: Parameters<typeof cache>[0], handler: Handler) {
  const clock = new FakeClock();
  const up = fakeUpstream(handler);
  const metrics: RegistryType = new Registry();
  const resolver = createResolver({ plugins: [cache(options), up.plugin], clock, metrics });
  resolvers.push(resolver);
  const store = resolver.scope('cache').get(CacheStore);
  return { clock, up, resolver, store, metrics };
}

async function ask(r: Resolver, q: Buffer): Promise<Buffer> {
  const out = await r.handle(q, CLIENT);
  if (out === null) throw new Error('dropped');
  return out;
}

describe('cache plugin', () => {
  it('answers a repeated question synchronously from the cache, counting TTLs down', async () => {
    const { clock, up, resolver, store } = setup({}, answerA(300));
    const first = await ask(resolver, makeQuery('example.com', { id: 1 }));
    expect(ttlsOf(first)).toEqual([300, 300]);
    expect(up.calls.length).toBe(1);
    clock.advance(42_000);
    const hit = resolver.process(makeQuery('example.com', { id: 2 }), CLIENT);
    expect(hit).toBeInstanceOf(Buffer); // no Promise: the hit path is synchronous
    expect(decode(hit as Buffer).id).toBe(2);
    expect(ttlsOf(hit as Buffer)).toEqual([258, 258]);
    expect(up.calls.length).toBe(1);
    expect(store.stats.hits).toBe(1);
    expect(store.stats.misses).toBe(1);
    clock.advance(258_000);
    await ask(resolver, makeQuery('example.com', { id: 3 }));
    expect(up.calls.length).toBe(2);
  });

  it('restores the letter case of the question', async () => {
    const { resolver } = setup({}, answerA(300));
    await ask(resolver, makeQuery('www.example.com'));
    const out = decode(await ask(resolver, makeQuery('WwW.ExAmPlE.cOm', { id: 9 })));
    expect(out.questions[0].name).toBe('WwW.ExAmPlE.cOm');
    expect(out.id).toBe(9);
  });

  it('answers each asker in its own letter case, whichever filled the entry', async () => {
    const { resolver } = setup({}, answerA(300));
    await ask(resolver, makeQuery('WwW.ExAmPlE.cOm'));
    expect(decode(await ask(resolver, makeQuery('www.example.com', { id: 9 }))).questions[0].name).toBe('www.example.com');
    expect(decode(await ask(resolver, makeQuery('WWW.example.COM', { id: 10 }))).questions[0].name).toBe('WWW.example.COM');
  });

  it('keeps DO, CD and EDNS variants apart', async () => {
    const { up, resolver, store } = setup({}, answerA(300));
    const variants = [
      makeQuery('example.com'),
      makeQuery('example.com', { edns: true }),
      makeQuery('example.com', { do: true }),
      makeQuery('example.com', { cd: true }),
      makeQuery('example.com', { do: true, cd: true }),
    ];
    for (const q of variants) await ask(resolver, q);
    expect(up.calls.length).toBe(5);
    expect(store.size).toBe(5);
    for (const q of variants) {
      const out = await ask(resolver, q);
      const hasOpt = (decode(out).additionals ?? []).some((a: any) => a.type === 'OPT');
      expect(hasOpt).toBe((decode(q).additionals ?? []).length > 0);
    }
    expect(up.calls.length).toBe(5);
  });

  it('caches NXDOMAIN from the SOA and counts negative hits', async () => {
    const { clock, up, resolver, store } = setup({}, (q) =>
      makeResponse(q.questions[0].name, { id: q.id, rcode: 3, authorities: [soa('example.com', 3600, 120)] }),
    );
    await ask(resolver, makeQuery('nope.example.com'));
    clock.advance(60_000);
    const out = await ask(resolver, makeQuery('nope.example.com'));
    expect(decode(out).rcode).toBe('NXDOMAIN');
    expect(ttlsOf(out)).toEqual([60]);
    expect(up.calls.length).toBe(1);
    expect(store.stats.negativeHits).toBe(1);
    expect(store.stats.nxdomainStored).toBe(1);
    clock.advance(60_000);
    await ask(resolver, makeQuery('nope.example.com'));
    expect(up.calls.length).toBe(2);
  });

  it('caches SERVFAIL briefly', async () => {
    const { clock, up, resolver } = setup({ servfailTtl: 3 }, (q) => makeResponse(q.questions[0].name, { id: q.id, rcode: 2 }));
    await ask(resolver, makeQuery('broken.example'));
    clock.advance(2000);
    expect(decode(await ask(resolver, makeQuery('broken.example'))).rcode).toBe('SERVFAIL');
    expect(up.calls.length).toBe(1);
    // With EDNS, a cached SERVFAIL says so (RFC 8914 "Cached Error").
    up.set((q) => makeResponse(q.questions[0].name, { id: q.id, rcode: 2, edns: true }));
    await ask(resolver, makeQuery('broken2.example', { edns: true }));
    const cached = decode(await ask(resolver, makeQuery('broken2.example', { edns: true })));
    const opt = cached.additionals.find((a: any) => a.type === 'OPT');
    expect(opt.options.find((o: any) => o.code === 15).data.readUInt16BE(0)).toBe(13);
    up.set((q) => makeResponse(q.questions[0].name, { id: q.id, rcode: 2 }));
    clock.advance(1000);
    await ask(resolver, makeQuery('broken.example'));
    expect(up.calls.length).toBe(3);
  });

  it('does not cache truncated answers or answers to another question', async () => {
    const { up, resolver } = setup({}, (q) => makeResponse(q.questions[0].name, { id: q.id, tc: true, answers: aRecords(q.questions[0].name, 60) }));
    await ask(resolver, makeQuery('big.example'));
    await ask(resolver, makeQuery('big.example'));
    expect(up.calls.length).toBe(2);
    up.set((q) => makeResponse('other.example', { id: q.id, answers: aRecords('other.example', 60) }));
    await ask(resolver, makeQuery('x.example'));
    await ask(resolver, makeQuery('x.example'));
    expect(up.calls.length).toBe(4);
  });

  it('does not store a response marked ctx.noCache', async () => {
    const clock = new FakeClock();
    let noCache = true;
    const marker: HeimdallPlugin = {
      name: 'marker',
      middleware: () => (ctx) => {
        ctx.noCache = noCache;
        ctx.response = answerA(60)(decode(ctx.request), ctx.request) as Buffer;
      },
    };
    const resolver = createResolver({ plugins: [cache(), marker], clock });
    resolvers.push(resolver);
    await ask(resolver, makeQuery('private.example'));
    expect(resolver.container.get<CacheControl>(CACHE_CONTROL).size).toBe(0);
    noCache = false;
    await ask(resolver, makeQuery('private.example'));
    expect(resolver.container.get<CacheControl>(CACHE_CONTROL).size).toBe(1);
  });

  it('prefetches a popular entry in the background before it expires', async () => {
    const { clock, up, resolver, store } = setup({ prefetch: { amount: 2, duration: 60_000, percentage: 10 } }, answerA(100));
    await ask(resolver, makeQuery('pop.example'));
    expect(up.calls.length).toBe(1);
    clock.advance(50_000);
    await ask(resolver, makeQuery('pop.example')); // hit 1, 50 s left: no prefetch
    clock.advance(40_000);
    await ask(resolver, makeQuery('pop.example')); // hit 2, 10 s left (10 %): prefetch
    await flush();
    expect(store.stats.prefetches).toBe(1);
    expect(up.calls.length).toBe(2);
    expect(decode(up.calls[1]).questions[0].name).toBe('pop.example');
    // The refreshed entry is fresh again: 100 s from now.
    const out = await ask(resolver, makeQuery('pop.example'));
    expect(ttlsOf(out)).toEqual([100, 100]);
    clock.advance(20_000);
    await ask(resolver, makeQuery('pop.example'));
    expect(up.calls.length).toBe(2);
  });

  it('runs at most one prefetch per key and at most maxConcurrent in all', async () => {
    const { clock, up, resolver, store } = setup({ prefetch: { amount: 1, percentage: 50, maxConcurrent: 1 } }, answerA(100));
    await ask(resolver, makeQuery('a.example'));
    await ask(resolver, makeQuery('b.example'));
    const pending: Array<() => void> = [];
    up.set((q) => new Promise<Buffer>((res) => pending.push(() => res(answerA(100)(q, Buffer.alloc(0)) as Buffer))));
    clock.advance(60_000); // 40 s left of 100: inside the last 50 %
    for (let i = 0; i < 5; i++) await ask(resolver, makeQuery('a.example'));
    await ask(resolver, makeQuery('b.example')); // the one slot is taken by a.example
    await flush();
    expect(store.stats.prefetches).toBe(1);
    expect(up.calls.length).toBe(3);
    for (const release of pending.splice(0)) release();
    await flush();
    await ask(resolver, makeQuery('b.example')); // slot free again
    await flush();
    expect(store.stats.prefetches).toBe(2);
    for (const release of pending.splice(0)) release();
    await flush();
  });

  it('frees the prefetch slot when the upstream never answers', async () => {
    const { clock, up, resolver, store } = setup({ prefetch: { amount: 1, percentage: 50, maxConcurrent: 1, timeout: 1000 } }, answerA(100));
    await ask(resolver, makeQuery('hang.example'));
    up.set(() => new Promise<Buffer>(() => {}));
    clock.advance(60_000);
    await ask(resolver, makeQuery('hang.example'));
    await flush();
    expect(store.stats.prefetches).toBe(1);
    clock.advance(1000);
    expect(store.stats.refreshFailures).toBe(1);
    await ask(resolver, makeQuery('hang.example'));
    await flush();
    expect(store.stats.prefetches).toBe(2);
    clock.advance(1000);
  });

  it('does not prefetch entries that are not asked for often enough', async () => {
    const { clock, up, resolver, store } = setup({ prefetch: { amount: 3, duration: 5000, percentage: 50 } }, answerA(100));
    await ask(resolver, makeQuery('rare.example'));
    for (let i = 0; i < 4; i++) {
      clock.advance(12_000); // gaps longer than 5 s reset the count
      await ask(resolver, makeQuery('rare.example'));
    }
    await flush();
    expect(store.stats.prefetches).toBe(0);
    expect(up.calls.length).toBe(1);
  });

  it('serves stale (TTL 30, EDE 3) when the upstream fails, then rechecks after 30 s', async () => {
    const { clock, up, resolver, store } = setup({ serveStale: true }, answerA(60));
    await ask(resolver, makeQuery('stale.example', { edns: true }));
    clock.advance(120_000);
    up.set(() => {
      throw new Error('upstream down');
    });
    const out = await ask(resolver, makeQuery('stale.example', { edns: true, id: 77 }));
    const d = decode(out);
    expect(d.rcode).toBe('NOERROR');
    expect(d.id).toBe(77);
    expect(ttlsOf(out)).toEqual([30, 30]);
    const opt = d.additionals.find((a: any) => a.type === 'OPT');
    expect(opt.options.some((o: any) => o.code === 15)).toBe(true);
    expect(store.stats.staleAnswers).toBe(1);
    expect(up.calls.length).toBe(2);
    // Failure recheck: for 30 s the stale entry answers without asking upstream.
    clock.advance(10_000);
    await ask(resolver, makeQuery('stale.example', { edns: true }));
    expect(up.calls.length).toBe(2);
    clock.advance(21_000);
    up.set(answerA(60));
    const fresh = await ask(resolver, makeQuery('stale.example', { edns: true }));
    expect(ttlsOf(fresh)).toEqual([60, 60]);
    expect(up.calls.length).toBe(3);
  });

  it('serves stale when the upstream answers SERVFAIL, and keeps the stale entry', async () => {
    const { clock, up, resolver, store } = setup({ serveStale: true }, answerA(60));
    await ask(resolver, makeQuery('sf.example'));
    clock.advance(61_000);
    up.set((q) => makeResponse(q.questions[0].name, { id: q.id, rcode: 2 }));
    expect(ttlsOf(await ask(resolver, makeQuery('sf.example')))).toEqual([30, 30]);
    expect(store.getRaw([...store.entries()][0][0])!.kind).toBe('positive');
  });

  it('serves stale when the upstream is slower than the client-response timer, and refreshes', async () => {
    const { clock, up, resolver, store } = setup({ serveStale: { clientTimeout: 1800 } }, answerA(60));
    await ask(resolver, makeQuery('slow.example'));
    clock.advance(61_000);
    let release!: () => void;
    up.set((q) => new Promise<Buffer>((res) => (release = () => res(answerA(60)(q, Buffer.alloc(0)) as Buffer))));
    const pending = ask(resolver, makeQuery('slow.example'));
    await flush();
    clock.advance(1800);
    const out = await pending;
    expect(ttlsOf(out)).toEqual([30, 30]);
    expect(store.stats.staleAnswers).toBe(1);
    release();
    await flush();
    // The late answer refreshed the entry.
    expect(store.get([...store.entries()][0][0])).toBeDefined();
    expect(ttlsOf(await ask(resolver, makeQuery('slow.example')))).toEqual([60, 60]);
  });

  it('a stale answer in flight keeps its entry even when the store reuses the slot meanwhile', async () => {
    const { clock, up, resolver, store } = setup({ serveStale: { clientTimeout: 1800 } }, answerA(60));
    await ask(resolver, makeQuery('slow.example'));
    clock.advance(61_000);
    let release!: () => void;
    up.set((q) => new Promise<Buffer>((res) => (release = () => res(answerA(60)(q, Buffer.alloc(0)) as Buffer))));
    const pending = ask(resolver, makeQuery('slow.example', { id: 7 }));
    await flush();
    // While the chain is slow, the entry goes and another one takes its slot and slab space.
    store.flush();
    store.insert('other', makeResponse('other.example', { answers: aRecords('other.example', 90) }), makeQuery('other.example'), clock.now());
    clock.advance(1800);
    const out = decode(await pending);
    expect(out.id).toBe(7);
    expect(out.questions[0].name).toBe('slow.example');
    expect(out.answers.map((a: any) => [a.name, a.ttl])).toEqual([
      ['slow.example', 30],
      ['slow.example', 30],
    ]);
    release();
    await flush();
  });

  it('answers stale before the query deadline when it is shorter than the client-response timer', async () => {
    const clock = new FakeClock();
    const up = fakeUpstream(answerA(60));
    const resolver = createResolver({ plugins: [cache({ serveStale: { clientTimeout: 1800 } }), up.plugin], clock, queryTimeoutMs: 1000 });
    resolvers.push(resolver);
    await ask(resolver, makeQuery('deadline.example'));
    clock.advance(61_000);
    up.set(() => new Promise<Buffer>(() => {}));
    const pending = ask(resolver, makeQuery('deadline.example'));
    await flush();
    clock.advance(949);
    await flush();
    let done = false;
    pending.then(() => (done = true));
    await flush();
    expect(done).toBe(false);
    clock.advance(1); // deadline (1000) - margin (50)
    const out = await pending;
    expect(decode(out).rcode).toBe('NOERROR');
    expect(ttlsOf(out)).toEqual([30, 30]);
  });

  it('optimistic mode (clientTimeout 0): answers stale at once and refreshes through the chain', async () => {
    const { clock, up, resolver, store } = setup({ serveStale: { clientTimeout: 0 } }, answerA(60));
    await ask(resolver, makeQuery('opt.example'));
    clock.advance(61_000);
    let release!: () => void;
    up.set((q) => new Promise<Buffer>((res) => (release = () => res(answerA(60)(q, Buffer.alloc(0)) as Buffer))));
    const pending = ask(resolver, makeQuery('opt.example'));
    await flush();
    clock.advance(0);
    expect(ttlsOf(await pending)).toEqual([30, 30]);
    release();
    await flush();
    expect(ttlsOf(await ask(resolver, makeQuery('opt.example')))).toEqual([60, 60]);
    expect(store.stats.staleAnswers).toBe(1);
    expect(up.calls.length).toBe(2);
  });

  it('marks a stale NXDOMAIN with EDE 19', async () => {
    const { clock, up, resolver } = setup({ serveStale: true }, (q) =>
      makeResponse(q.questions[0].name, { id: q.id, rcode: 3, edns: true, authorities: [soa('example.com', 60, 60)] }),
    );
    await ask(resolver, makeQuery('gone.example.com', { edns: true }));
    clock.advance(61_000);
    up.set(() => {
      throw new Error('down');
    });
    const d = decode(await ask(resolver, makeQuery('gone.example.com', { edns: true })));
    expect(d.rcode).toBe('NXDOMAIN');
    const opt = d.additionals.find((a: any) => a.type === 'OPT');
    const ede = opt.options.find((o: any) => o.code === 15);
    expect(ede.data.readUInt16BE(0)).toBe(19);
  });

  it('does not serve stale past maxStaleAge', async () => {
    const { clock, up, resolver } = setup({ serveStale: { maxStaleAge: 10_000 } }, answerA(60));
    await ask(resolver, makeQuery('old.example'));
    clock.advance(71_000);
    up.set((q) => makeResponse(q.questions[0].name, { id: q.id, rcode: 2 }));
    expect(decode(await ask(resolver, makeQuery('old.example'))).rcode).toBe('SERVFAIL');
  });

  it('exports statistics in the metrics registry', async () => {
    const { resolver, metrics } = setup({}, answerA(300));
    await ask(resolver, makeQuery('m.example'));
    await ask(resolver, makeQuery('m.example'));
    const text = await metrics.metrics();
    expect(text).toMatch(/heimdall_cache_hits_total 1/);
    expect(text).toMatch(/heimdall_cache_misses_total 1/);
    expect(text).toMatch(/heimdall_cache_entries 1/);
    expect(text).toMatch(/heimdall_cache_positive_stored_total 1/);
  });

  it('runs the expiry sweep between start and stop', async () => {
    const { clock, resolver, store } = setup({ sweepInterval: 1000 }, answerA(5));
    await resolver.start();
    await ask(resolver, makeQuery('sweep.example'));
    expect(store.size).toBe(1);
    clock.advance(6000);
    expect(store.size).toBe(0);
    expect(store.stats.expiredEvictions).toBe(1);
    await resolver.stop();
    const pending = clock.pendingTimers;
    clock.advance(10_000);
    expect(clock.pendingTimers).toBeLessThanOrEqual(pending);
  });

  it('validates options with ConfigError naming the field', () => {
    expect(() => cache({ maxTtl: -1 })).toThrow(ConfigError);
    expect(() => cache({ maxTtl: -1 })).toThrow(/^cache\.maxTtl: must be an integer in 0\.\.2147483647$/);
    expect(() => cache({ prefetch: { percentage: 95 } })).toThrow('cache.prefetch.percentage: must be an integer in 10..90');
    expect(() => cache({ servfailTtl: 600 })).toThrow('cache.servfailTtl: must be an integer in 0..300');
    expect(() => cache({ policy: 'fifo' as any })).toThrow('cache.policy: must be "sieve" or "lru" or "s3fifo"');
    expect(() => cache({ minTtl: 100, maxTtl: 10 })).toThrow('cache.minTtl: must not exceed maxTtl (10)');
    expect(() => cache({ minNegativeTtl: 100, maxNegativeTtl: 10 })).toThrow('cache.minNegativeTtl: must not exceed maxNegativeTtl (10)');
    expect(() => cache({ minTtl: 100, maxTtl: 10 }, { name: 'cache-lan' })).toThrow(/^cache-lan\.minTtl:/);
    expect(() => cache({ serveStale: 'yes' as any })).toThrow('cache.serveStale: must be true or false or an object');
    expect(() => cache({ serveStale: { answerTtl: 0 } })).toThrow('cache.serveStale.answerTtl: must be an integer in 1..86400');
    expect(() => cache({ tiers: { timeoutMs: 0 } })).toThrow('cache.tiers.timeoutMs: must be an integer in 1..2000');
    expect(() => cache({ bogus: 1 } as any)).toThrow(/^cache\.bogus: unknown option \(known: maxEntries, /);
    expect(cache().options).toMatchObject({ maxEntries: 100_000, prefetch: false, serveStale: false, tiers: { timeoutMs: 20 } });
    expect(cache({ prefetch: true, serveStale: {} }).options).toMatchObject({ prefetch: true, serveStale: { maxStaleAge: 86_400_000, clientTimeout: 1800 } });
  });
});

describe('cache plugin: misbehaving neighbours', () => {
  it('a prefetch whose upstream returns garbage is counted and does not crash', async () => {
    const { clock, up, resolver, store } = setup({ prefetch: { amount: 1, percentage: 90 } }, answerA(10));
    await ask(resolver, makeQuery('junk.example'));
    up.set(() => 'not a buffer' as unknown as Buffer);
    clock.advance(2000);
    await ask(resolver, makeQuery('junk.example'));
    await flush();
    expect(store.stats.prefetches).toBe(1);
    expect(store.stats.refreshFailures).toBe(1);
    expect(store.getRaw([...store.entries()][0][0])!.kind).toBe('positive');
  });

  it('a chain answering garbage bytes is not cached and the client still gets them', async () => {
    const { up, resolver, store } = setup({}, () => Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]));
    const out = await resolver.handle(makeQuery('garbage.example'), CLIENT);
    expect(out).not.toBeNull();
    expect(store.size).toBe(0);
    expect(up.calls.length).toBe(1);
  });
});
