/**
 * The cache through core's contracts: CACHE_RESULT, CACHE_CONTROL,
 * ADMIN_ACTIONS, CACHE_TIERS (with in-memory fake tiers), and what a cached
 * answer carries (our own OPT, never AA).
 */
import {
  ADMIN_ACTIONS,
  type AdminActions,
  CACHE_CONTROL,
  CACHE_RESULT,
  CACHE_TIERS,
  type CacheControl,
  type CacheTier,
  type FlushScope,
  type HeimdallPlugin,
  type Middleware,
} from '@heimdall/core';
import { ContainerModule } from '@heimdall/core/di';
import { systemClock } from '@heimdall/core/pipeline';
import { BadRequestError } from '@heimdall/core/errors';
import { FakeClock, type TestResolver, testResolver } from '@heimdall/testing';
import * as packet from 'dns-packet';
import fc from 'fast-check';
import { trySkipName } from '@heimdall/core/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { cache } from './plugin.js';
import { readEntry, serializeEntry } from './snapshot.js';
import { CacheStore } from './store.js';
import { aRecords, decode, flush, makeQuery, makeResponse, ttlsOf } from './test-util.js';

let resolvers: TestResolver[] = [];
afterEach(async () => {
  for (const r of resolvers) await r.stop();
  resolvers = [];
});

/** A last-in-chain middleware answering from `handler`, counting calls. */
function fakeChain(handler: (q: any, raw: Buffer) => Buffer) {
  const calls: Buffer[] = [];
  const plugin: HeimdallPlugin = {
    name: 'fake-chain',
    middleware: () => (ctx) => {
      calls.push(ctx.request);
      ctx.response = handler(decode(ctx.request), ctx.request);
    },
  };
  return { plugin, calls };
}

const answerA = (ttl: number) => (q: any) =>
  makeResponse(q.questions[0].name, {
    id: q.id,
    edns: (q.additionals ?? []).some((a: any) => a.type === 'OPT'),
    do: (q.additionals ?? []).some((a: any) => a.type === 'OPT' && a.flags & 0x8000),
    answers: aRecords(q.questions[0].name, ttl),
  });

/** Records CACHE_RESULT of every query (placed before the cache). */
function observer() {
  const seen: Array<string | undefined> = [];
  const middleware: Middleware = (ctx, next) => {
    const r = next();
    const done = (): void => void seen.push(ctx.get(CACHE_RESULT));
    if (r === undefined) done();
    else return r.then(done);
  };
  return { plugin: { name: 'observer', middleware: () => middleware } as HeimdallPlugin, seen };
}

function build(plugins: HeimdallPlugin[], clock = new FakeClock(), options: Parameters<typeof testResolver>[1] = {}) {
  const r = testResolver(plugins, { clock, ...options });
  resolvers.push(r);
  return r;
}

describe('CACHE_RESULT, CACHE_CONTROL and admin actions', () => {
  it('sets CACHE_RESULT to miss, hit and stale', async () => {
    const clock = new FakeClock();
    const obs = observer();
    let fail = false;
    const up = fakeChain((q, _raw) => {
      if (fail) throw new Error('down');
      return answerA(60)(q);
    });
    const r = build([obs.plugin, cache({ serveStale: true }), up.plugin], clock);
    await r.handle(makeQuery('r.example'));
    await r.handle(makeQuery('r.example'));
    clock.advance(61_000);
    fail = true;
    await r.handle(makeQuery('r.example'));
    expect(obs.seen).toEqual(['miss', 'hit', 'stale']);
  });

  it('CACHE_CONTROL: size and flushes by name, suffix and all; bad names are BadRequestError', async () => {
    const up = fakeChain(answerA(300));
    const r = build([cache(), up.plugin]);
    for (const n of ['a.example.com', 'b.example.com', 'example.com', 'badexample.com', 'other.net']) await r.handle(makeQuery(n));
    const control = r.get<CacheControl>(CACHE_CONTROL);
    expect(control.size).toBe(5);
    expect(control.flush({ name: 'A.Example.COM' })).toBe(1);
    expect(control.flush({ suffix: 'example.com' })).toBe(2);
    expect(control.size).toBe(2);
    expect(() => control.flush({ name: 'a..b' })).toThrow(BadRequestError);
    expect(control.flush({ all: true })).toBe(2);
    expect(control.size).toBe(0);
  });

  it('admin actions: stats (GET, sum) and flush (POST, sum, name or suffix)', async () => {
    const up = fakeChain(answerA(300));
    const r = build([cache(), up.plugin]);
    await r.handle(makeQuery('x.example'));
    await r.handle(makeQuery('x.example'));
    await r.handle(makeQuery('y.example'));
    const group = r.container.getAll<AdminActions>(ADMIN_ACTIONS).find((g) => g.plugin === 'cache')!;
    const stats = group.actions.find((a) => a.name === 'stats')!;
    const flushAction = group.actions.find((a) => a.name === 'flush')!;
    expect([stats.method, stats.combine, flushAction.method, flushAction.combine]).toEqual(['GET', 'sum', 'POST', 'sum']);
    expect(await stats.run({})).toMatchObject({ entries: 2, hits: 1, misses: 2, positiveStored: 2, tierHits: 0 });
    expect(((await stats.run({})) as { bytes: number }).bytes).toBeGreaterThan(0);
    expect(await flushAction.run({ name: 'x.example' })).toEqual({ removed: 1 });
    expect(() => flushAction.run({ name: 'x.example', suffix: 'example' })).toThrow(BadRequestError);
    expect(() => flushAction.run({ suffix: `${'x'.repeat(64)}.example` })).toThrow(BadRequestError);
    expect(await flushAction.run({})).toEqual({ removed: 1 });
  });

  it('two instances keep their own entries and metric names', async () => {
    const up = fakeChain(answerA(300));
    const r = build([cache(), cache({}, { name: 'cache-2' }), up.plugin]);
    await r.handle(makeQuery('two.example'));
    expect(r.scope('cache').get(CacheStore)).not.toBe(r.scope('cache-2').get(CacheStore));
    expect(r.scope('cache-2').get(CacheStore).size).toBe(1);
    const text = await (r.container.get(Symbol.for('heimdall.metrics')) as { metrics(): Promise<string> }).metrics();
    expect(text).toMatch(/^heimdall_cache_misses_total 1$/m);
    expect(text).toMatch(/^heimdall_cache_2_misses_total 1$/m);
  });
});

describe('what a cached answer carries', () => {
  /** An upstream-like middleware whose answers carry a foreign OPT (payload 4096, NSID, an EDE) and AA=1. */
  const foreign = (q: any): Buffer => {
    const opt = (q.additionals ?? []).find((a: any) => a.type === 'OPT');
    return packet.encode({
      id: q.id,
      type: 'response',
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | packet.AUTHORITATIVE_ANSWER,
      questions: q.questions,
      answers: aRecords(q.questions[0].name, 300),
      additionals: [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize: 4096,
          flags: opt && opt.flags & 0x8000 ? packet.DNSSEC_OK : 0,
          options: [
            { code: 3, data: Buffer.from('upstream-7.example') },
            { code: 15, data: Buffer.from([0, 22, 0x68, 0x69]) },
            { code: 10, data: Buffer.alloc(16, 1) },
          ],
        } as any,
      ],
    });
  };

  it("the client gets the resolver's own OPT (payload setting, DO from the query, EDE kept), no NSID/COOKIE, and AA=0", async () => {
    const up = fakeChain(foreign);
    const r = build([cache(), up.plugin], new FakeClock(), { ednsPayloadSize: 1400 });
    await r.handle(makeQuery('opt.example', { do: true }));
    const cached = decode((await r.handle(makeQuery('opt.example', { do: true, id: 99 })))!);
    expect(up.calls.length).toBe(1);
    expect(cached.id).toBe(99);
    expect(cached.flags & packet.AUTHORITATIVE_ANSWER).toBe(0);
    const opts = cached.additionals.filter((a: any) => a.type === 'OPT');
    expect(opts.length).toBe(1);
    expect(opts[0].udpPayloadSize).toBe(1400);
    expect(opts[0].flags & packet.DNSSEC_OK).toBe(packet.DNSSEC_OK);
    expect(opts[0].options.map((o: any) => o.code)).toEqual([15]);
    expect(opts[0].options[0].data).toEqual(Buffer.from([0, 22, 0x68, 0x69]));
    expect(ttlsOf(packet.encode(cached))).toEqual([300, 300]);
  });

  it('a query without EDNS gets a cached answer without OPT, even when the upstream sent one', async () => {
    const up = fakeChain(foreign);
    const r = build([cache(), up.plugin]);
    await r.handle(makeQuery('noedns.example'));
    const cached = decode((await r.handle(makeQuery('noedns.example')))!);
    expect(up.calls.length).toBe(1);
    expect(cached.additionals).toEqual([]);
    expect(cached.answers.length).toBe(2);
  });

  it('an EDNS query whose upstream answered without OPT gets our OPT from the cache', async () => {
    const up = fakeChain((q) => makeResponse(q.questions[0].name, { id: q.id, answers: aRecords(q.questions[0].name, 300) }));
    const r = build([cache(), up.plugin]);
    await r.handle(makeQuery('bare.example', { edns: true }));
    const cached = decode((await r.handle(makeQuery('bare.example', { edns: true })))!);
    const opts = cached.additionals.filter((a: any) => a.type === 'OPT');
    expect(opts.map((o: any) => [o.udpPayloadSize, o.flags, o.options.length])).toEqual([[1232, 0, 0]]);
  });
});

/** An in-memory tier: `mode` says how `get` answers (at once, a resolved Promise, or a Promise that never settles). */
class MemoryTier implements CacheTier {
  readonly data = new Map<string, { entry: Buffer; expiresAt: number }>();
  readonly flushes: FlushScope[] = [];
  gets = 0;
  sets = 0;
  constructor(
    readonly name: string,
    public mode: 'sync' | 'async' | 'never' = 'sync',
  ) {}
  get(key: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    this.gets++;
    const v = this.data.get(Buffer.from(key).toString('latin1'))?.entry;
    if (this.mode === 'sync') return v;
    if (this.mode === 'async') return Promise.resolve(v);
    return new Promise<undefined>(() => {});
  }
  set(key: Uint8Array, entry: Uint8Array, expiresAt: number): void {
    this.sets++;
    this.data.set(Buffer.from(key).toString('latin1'), { entry: Buffer.from(entry), expiresAt });
  }
  flush(scope: FlushScope): void {
    this.flushes.push(scope);
    if ('all' in scope) this.data.clear();
  }
}

function tierPlugin(...tiers: CacheTier[]): HeimdallPlugin {
  const ids = tiers.map((t) => Symbol(t.name));
  return {
    name: 'tiers',
    module: new ContainerModule(({ bind }) => {
      tiers.forEach((t, i) => void bind(ids[i]!).toConstantValue(t));
    }),
    provides: ids.map((use) => ({ token: CACHE_TIERS, use })),
  };
}

describe('cache tiers (CACHE_TIERS)', () => {
  const T0 = 1_700_000_000_000;

  it('writes new answers through (validated binary entry, absolute expiry) and answers another process from a sync tier at once', async () => {
    const tier = new MemoryTier('disk');
    const clockA = new FakeClock(T0);
    const upA = fakeChain(answerA(300));
    const a = build([cache(), tierPlugin(tier), upA.plugin], clockA);
    await a.handle(makeQuery('shared.example', { edns: true }));
    expect(tier.sets).toBe(1);
    const [[key, stored]] = [...tier.data];
    const read = readEntry(stored.entry);
    expect(read.key).toBe(key);
    expect(read.entry.expiresAt).toBe(T0 + 300_000);
    expect(stored.expiresAt).toBe(T0 + 300_000);

    // "Another process": a new resolver, empty L1, same tier, 100 s later.
    const clockB = new FakeClock(T0 + 100_000);
    const obs = observer();
    const upB = fakeChain(answerA(300));
    const b = build([obs.plugin, cache(), tierPlugin(tier), upB.plugin], clockB);
    const out = b.process(makeQuery('SHARED.example', { edns: true, id: 5 }), { address: '192.0.2.1', port: 1, family: 4, transport: 'udp' });
    expect(out).toBeInstanceOf(Buffer); // a sync tier keeps the answer synchronous
    const d = decode(out as Buffer);
    expect([d.id, d.questions[0].name]).toEqual([5, 'SHARED.example']);
    expect(ttlsOf(out as Buffer)).toEqual([200, 200]); // TTLs kept counting down across processes
    expect(upB.calls.length).toBe(0);
    expect(obs.seen).toEqual(['hit']);
    const store = b.scope('cache').get(CacheStore);
    expect([store.size, store.stats.tierHits, store.stats.hits, store.stats.misses]).toEqual([1, 1, 1, 0]);
    // Promoted into L1: the next query does not ask the tier.
    const gets = tier.gets;
    await b.handle(makeQuery('shared.example', { edns: true }));
    expect(tier.gets).toBe(gets);
    expect(tier.sets).toBe(1); // a promotion is not written back
  });

  it('awaits an async tier, consults tiers in order, and falls through to the chain on a miss', async () => {
    const first = new MemoryTier('first', 'async');
    const second = new MemoryTier('second', 'sync');
    // Another process wrote the entry to the second tier only.
    const writer = build([cache(), tierPlugin(second), fakeChain(answerA(120)).plugin], new FakeClock(T0));
    await writer.handle(makeQuery('async.example'));
    expect(second.sets).toBe(1);
    second.gets = 0;
    const up = fakeChain(answerA(120));
    const r = build([cache(), tierPlugin(first, second), up.plugin], new FakeClock(T0 + 20_000));
    const out = await r.handle(makeQuery('async.example'));
    expect(ttlsOf(out!)).toEqual([100, 100]);
    expect([first.gets, second.gets, up.calls.length]).toEqual([1, 1, 0]);
    // A name no tier has: the chain answers, and the answer is written to both tiers.
    await r.handle(makeQuery('fresh.example'));
    expect(up.calls.length).toBe(1);
    expect([first.sets, second.sets]).toEqual([1, 2]);
  });

  it('lookups in flight on an async tier each keep their own key (the next lookup reuses the scratch key bytes)', async () => {
    const tier = new MemoryTier('shared', 'sync');
    // Same-length names: the second lookup writes its key over the first one's scratch bytes.
    const writer = build([cache(), tierPlugin(tier), fakeChain(answerA(120)).plugin], new FakeClock(T0));
    await writer.handle(makeQuery('aa.example'));
    await writer.handle(makeQuery('bb.example'));
    tier.mode = 'async';
    const up = fakeChain(answerA(120));
    const r = build([cache(), tierPlugin(tier), up.plugin], new FakeClock(T0 + 1000));
    const [a, b] = await Promise.all([r.handle(makeQuery('aa.example')), r.handle(makeQuery('bb.example'))]);
    expect([decode(a!).questions[0].name, decode(b!).questions[0].name]).toEqual(['aa.example', 'bb.example']);
    const store = r.scope('cache').get(CacheStore);
    expect([store.stats.tierHits, store.stats.tierErrors, up.calls.length]).toEqual([2, 0, 0]);
  });

  it('a slow async tier delays the answer by at most tiers.timeoutMs, then counts as a miss', async () => {
    const slow = new MemoryTier('redis', 'never');
    const clock = new FakeClock(T0);
    const up = fakeChain(answerA(60));
    const r = build([cache({ tiers: { timeoutMs: 20 } }), tierPlugin(slow), up.plugin], clock);
    let answered: Buffer | null = null;
    r.handle(makeQuery('slow.example')).then((b) => (answered = b));
    await flush();
    clock.advance(19);
    await flush();
    expect(answered).toBeNull();
    expect(up.calls.length).toBe(0);
    clock.advance(1);
    await flush();
    expect(answered).not.toBeNull();
    expect(up.calls.length).toBe(1);
    expect(r.scope('cache').get(CacheStore).stats.tierTimeouts).toBe(1);
  });

  it('gives each tier the lookup deadline; a tier that settles by it itself is awaited without a timer of the cache', async () => {
    const deadlines: number[] = [];
    let settle: (v: Uint8Array | undefined) => void = () => {};
    const self: CacheTier = {
      name: 'self-bounded',
      settlesByDeadline: true,
      get: (_key, deadline) => {
        deadlines.push(deadline);
        return new Promise((resolve) => (settle = resolve));
      },
      set: () => {},
      flush: () => {},
    };
    const clock = new FakeClock(T0);
    const up = fakeChain(answerA(60));
    const r = build([cache({ tiers: { timeoutMs: 20 } }), tierPlugin(self), up.plugin], clock);
    let answered: Buffer | null = null;
    r.handle(makeQuery('self.example')).then((b) => (answered = b));
    await flush();
    expect(deadlines).toEqual([T0 + 20]);
    // Past the budget: the cache trusts the tier to settle (it would have given up at T0 + 20 otherwise).
    clock.advance(50);
    await flush();
    expect(answered).toBeNull();
    settle(undefined);
    await flush();
    expect(answered).not.toBeNull();
    expect(up.calls.length).toBe(1);
    expect(r.scope('cache').get(CacheStore).stats.tierTimeouts).toBe(0);
  });

  it('a slow tier on the real clock: the answer does not wait for it', async () => {
    const slow: CacheTier = {
      name: 'slow',
      get: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 3000).unref()),
      set: () => {},
      flush: () => {},
    };
    const up = fakeChain(answerA(60));
    const r = testResolver([cache({ tiers: { timeoutMs: 20 } }), tierPlugin(slow), up.plugin], { clock: systemClock });
    resolvers.push(r);
    const t0 = performance.now();
    const out = await r.handle(makeQuery('slow-real.example'));
    expect(out).not.toBeNull();
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it('ignores tier entries that do not hold up: garbage, another key, tampered offsets, expired; a throwing tier', async () => {
    const tier = new MemoryTier('bad');
    const clock = new FakeClock(T0);
    const up = fakeChain(answerA(300));
    const r = build([cache(), tierPlugin(tier), up.plugin], clock);
    await r.handle(makeQuery('good.example'));
    const [[goodKey, good]] = [...tier.data];
    const control = r.get<CacheControl>(CACHE_CONTROL);
    const store = r.scope('cache').get(CacheStore);
    const keyOf = (name: string) => goodKey.replace('\x04good', `\x04${name}`);
    const e = readEntry(good.entry).entry;
    // The right question, a TTL offset pointing into RDATA (an entry made by another resolver, then tampered with).
    const q3 = makeQuery('bad3.example');
    const other = build([cache(), fakeChain(answerA(300)).plugin], new FakeClock(T0));
    await other.handle(q3);
    const e3 = other
      .scope('cache')
      .get(CacheStore)
      .getRaw([...other.scope('cache').get(CacheStore).entries()][0][0])!;
    const tampered = serializeEntry(keyOf('bad3'), { ...e3, ttlOffsets: [e3.ttlOffsets[0], e3.ttlOffsets[1] + 6] });
    tier.data.set(keyOf('bad3'), { entry: tampered, expiresAt: T0 + 1e6 });
    control.flush({ all: true });
    // Expired; garbage; a valid entry for another question; the tampered one.
    tier.data.set(keyOf('good'), { entry: serializeEntry(goodKey, { ...e, storedAt: T0 - 400_000, expiresAt: T0 - 100_000 }), expiresAt: T0 + 1e6 });
    tier.data.set(keyOf('bad1'), { entry: Buffer.from('not an entry at all'), expiresAt: T0 + 1e6 });
    tier.data.set(keyOf('bad2'), good);
    tier.data.set(keyOf('bad3'), { entry: tampered, expiresAt: T0 + 1e6 });
    const before = up.calls.length;
    for (const n of ['good', 'bad1', 'bad2', 'bad3']) {
      const out = decode((await r.handle(makeQuery(`${n}.example`)))!);
      expect(out.questions[0].name).toBe(`${n}.example`);
      expect(out.answers.every((a: any) => a.name === `${n}.example`)).toBe(true);
    }
    expect(up.calls.length - before).toBe(4);
    expect(store.stats.tierHits).toBe(0);
    expect(store.stats.tierErrors).toBe(3); // expired is a plain miss
    // A tier that throws everywhere does not break answering.
    const broken: CacheTier = {
      name: 'broken',
      get: () => {
        throw new Error('get');
      },
      set: () => {
        throw new Error('set');
      },
      flush: () => Promise.reject(new Error('flush')),
    };
    const up2 = fakeChain(answerA(300));
    const r2 = build([cache(), tierPlugin(broken), up2.plugin], new FakeClock(T0));
    expect(decode((await r2.handle(makeQuery('x.example')))!).answers.length).toBe(2);
    r2.get<CacheControl>(CACHE_CONTROL).flush({ all: true });
    await flush();
    expect(r2.scope('cache').get(CacheStore).stats.tierErrors).toBe(3);
  });

  it('writes only cacheable answers: not truncated, TTL 0, ECS-scoped or ctx.noCache; SERVFAIL with its short expiry', async () => {
    const tier = new MemoryTier('disk');
    const clock = new FakeClock(T0);
    let mode = 'tc';
    const chain: HeimdallPlugin = {
      name: 'chain',
      middleware: () => (ctx) => {
        const q = decode(ctx.request);
        const name = q.questions[0].name;
        if (mode === 'tc') ctx.response = makeResponse(name, { id: q.id, tc: true, answers: aRecords(name, 60) });
        else if (mode === 'ttl0') ctx.response = makeResponse(name, { id: q.id, answers: aRecords(name, 0) });
        else if (mode === 'ecs')
          ctx.response = makeResponse(name, {
            id: q.id,
            edns: true,
            answers: aRecords(name, 60),
            optOptions: [{ code: 8, data: Buffer.from([0, 1, 24, 24, 192, 0, 2]) }],
          });
        else if (mode === 'nocache') {
          ctx.noCache = true;
          ctx.response = makeResponse(name, { id: q.id, answers: aRecords(name, 60) });
        } else ctx.response = makeResponse(name, { id: q.id, rcode: 2 });
      },
    };
    const r = build([cache({ servfailTtl: 5 }), tierPlugin(tier), chain], clock);
    for (const m of ['tc', 'ttl0', 'ecs', 'nocache']) {
      mode = m;
      await r.handle(makeQuery(`${m}.example`, { edns: m === 'ecs' }));
    }
    expect(tier.sets).toBe(0);
    mode = 'servfail';
    await r.handle(makeQuery('sf.example'));
    expect(tier.sets).toBe(1);
    expect([...tier.data.values()][0].expiresAt).toBe(T0 + 5000);
  });

  it('passes flushes on to every tier', async () => {
    const a = new MemoryTier('a');
    const b = new MemoryTier('b', 'async');
    const r = build([cache(), tierPlugin(a, b), fakeChain(answerA(60)).plugin]);
    const control = r.get<CacheControl>(CACHE_CONTROL);
    control.flush({ name: 'x.example' });
    control.flush({ suffix: 'example' });
    control.flush({ all: true });
    expect(a.flushes).toEqual([{ name: 'x.example' }, { suffix: 'example' }, { all: true }]);
    expect(b.flushes).toEqual(a.flushes);
    expect(() => control.flush({ name: 'bad..name' })).toThrow(BadRequestError);
    expect(a.flushes.length).toBe(3); // a bad name reaches no tier
  });
});

describe('tier hits: promotion into a full L1, serve-stale from a tier (issue 12)', () => {
  const T0 = 1_700_000_000_000;
  const names = Array.from({ length: 40 }, (_, i) => `n${i}.example`);

  /** A tier holding an answer (TTL `ttl`, stored at T0) for each of `names`, written by another resolver. */
  async function filledTier(ttl: number, cacheOptions: Parameters<typeof cache>[0] = {}, edns = false): Promise<MemoryTier> {
    const tier = new MemoryTier('disk');
    const writer = build([cache(cacheOptions), tierPlugin(tier), fakeChain(answerA(ttl)).plugin], new FakeClock(T0));
    for (const n of names) await writer.handle(makeQuery(n, { edns }));
    return tier;
  }

  for (const policy of ['sieve', 'lru', 's3fifo'] as const) {
    it(`a promoted entry answers even when L1 is full and the policy would evict it at once (${policy}, maxEntries 1 and 16)`, async () => {
      const tier = await filledTier(300);
      for (const maxEntries of [1, 16]) {
        const up = fakeChain(answerA(300));
        const r = build([cache({ maxEntries, policy }), tierPlugin(tier), up.plugin], new FakeClock(T0 + 1000));
        for (let round = 0; round < 3; round++) {
          for (const n of names) {
            expect(ttlsOf((await r.handle(makeQuery(n)))!)).toEqual([299, 299]);
            // An L1 hit right after: marks the entry visited (SIEVE) / frequent (S3-FIFO), the case that made SIEVE drop the next promotion.
            expect(ttlsOf((await r.handle(makeQuery(n)))!)).toEqual([299, 299]);
          }
        }
        expect(up.calls.length).toBe(0);
        const store = r.scope('cache').get(CacheStore);
        expect(store.size).toBeLessThanOrEqual(maxEntries);
        expect(store.stats.tierHits).toBeGreaterThanOrEqual(names.length);
      }
    });
  }

  it('tiers keep an entry for the serve-stale window after it expires (no stale window without serve-stale, none for SERVFAIL)', async () => {
    const stale = await filledTier(60, { serveStale: { maxStaleAge: 3_600_000 } });
    expect(stale.data.get([...stale.data.keys()][0]!)!.expiresAt).toBe(T0 + 60_000 + 3_600_000);
    expect(readEntry(stale.data.get([...stale.data.keys()][0]!)!.entry).entry.expiresAt).toBe(T0 + 60_000);
    const plain = await filledTier(60);
    expect(plain.data.get([...plain.data.keys()][0]!)!.expiresAt).toBe(T0 + 60_000);
    const tier = new MemoryTier('disk');
    const sf = build(
      [cache({ serveStale: true, servfailTtl: 5 }), tierPlugin(tier), fakeChain((q) => makeResponse(q.questions[0].name, { id: q.id, rcode: 2 })).plugin],
      new FakeClock(T0),
    );
    await sf.handle(makeQuery('sf.example'));
    expect([...tier.data.values()][0]!.expiresAt).toBe(T0 + 5000);
  });

  it('serve-stale from a tier: an expired entry within the window answers stale (TTL 30, EDE 3) when the chain fails, like a stale L1 entry', async () => {
    const tier = await filledTier(60, { serveStale: true }, true);
    const clock = new FakeClock(T0 + 120_000);
    let fail = true;
    const up = fakeChain((q) => {
      if (fail) throw new Error('upstream down');
      return answerA(60)(q);
    });
    const obs = observer();
    const r = build([obs.plugin, cache({ serveStale: true }), tierPlugin(tier), up.plugin], clock);
    const store = r.scope('cache').get(CacheStore);
    const out = (await r.handle(makeQuery('n1.example', { edns: true, id: 9 })))!;
    const d = decode(out);
    expect([d.id, d.rcode, d.questions[0].name]).toEqual([9, 'NOERROR', 'n1.example']);
    expect(ttlsOf(out)).toEqual([30, 30]);
    expect(d.additionals.find((a: any) => a.type === 'OPT').options.some((o: any) => o.code === 15)).toBe(true);
    expect(up.calls.length).toBe(1); // the chain was tried first
    expect(obs.seen).toEqual(['stale']);
    expect([store.stats.staleAnswers, store.stats.tierHits, store.stats.tierErrors]).toEqual([1, 0, 0]);
    // Failure recheck, as for L1: stale answers without asking the chain for 30 s (the tiers are asked: another process may have a fresh answer).
    clock.advance(10_000);
    expect(ttlsOf((await r.handle(makeQuery('n1.example', { edns: true })))!)).toEqual([30, 30]);
    expect(up.calls.length).toBe(1);
    // The chain is back: a fresh answer, stored and written through.
    clock.advance(21_000);
    fail = false;
    const sets = tier.sets;
    expect(ttlsOf((await r.handle(makeQuery('n1.example', { edns: true })))!)).toEqual([60, 60]);
    expect([up.calls.length, tier.sets]).toEqual([2, sets + 1]);
  });

  it('serve-stale from a tier: a slow chain gets the stale answer out at the client-response timer, and its late answer refreshes L1 and the tier', async () => {
    const tier = await filledTier(60, { serveStale: true });
    const clock = new FakeClock(T0 + 120_000);
    let release!: () => void;
    const up = fakeChain(answerA(60));
    const slow: HeimdallPlugin = {
      name: 'slow',
      middleware: () => (ctx) =>
        new Promise<void>((resolve) => {
          release = () => {
            const q = decode(ctx.request);
            up.calls.push(ctx.request);
            ctx.response = answerA(60)(q);
            resolve();
          };
        }),
    };
    const r = build([cache({ serveStale: { clientTimeout: 1800 } }), tierPlugin(tier), slow], clock);
    const store = r.scope('cache').get(CacheStore);
    const pending = r.handle(makeQuery('n2.example'));
    await flush();
    clock.advance(1800);
    expect(ttlsOf((await pending)!)).toEqual([30, 30]);
    expect(store.stats.staleAnswers).toBe(1);
    const sets = tier.sets;
    release();
    await flush();
    expect(tier.sets).toBe(sets + 1);
    expect(ttlsOf((await r.handle(makeQuery('n2.example')))!)).toEqual([60, 60]);
  });

  it('an expired tier entry is a plain miss without serve-stale and past the stale window', async () => {
    const tier = await filledTier(60, { serveStale: { maxStaleAge: 60_000 } });
    // Without serve-stale.
    const up = fakeChain(answerA(60));
    const r = build([cache(), tierPlugin(tier), up.plugin], new FakeClock(T0 + 90_000));
    expect(ttlsOf((await r.handle(makeQuery('n3.example')))!)).toEqual([60, 60]);
    expect(up.calls.length).toBe(1);
    // Past the window (expiry + 60 s).
    const up2 = fakeChain(() => {
      throw new Error('down');
    });
    const r2 = build([cache({ serveStale: { maxStaleAge: 60_000 } }), tierPlugin(tier), up2.plugin], new FakeClock(T0 + 121_000));
    const out = decode((await r2.handle(makeQuery('n4.example')))!);
    expect(out.rcode).toBe('SERVFAIL');
    expect(r2.scope('cache').get(CacheStore).stats.tierErrors).toBe(0);
  });

  it('a stale tier entry does not replace a later stale L1 entry, but does replace a stale SERVFAIL', async () => {
    const tier = await filledTier(60, { serveStale: true });
    const key = [...tier.data.keys()].find((k) => k.includes('\x02n8'))!;
    const old = tier.data.get(key)!;
    const clock = new FakeClock(T0 + 70_000);
    let mode: 'answer' | 'fail' | 'servfail' = 'answer';
    const up = fakeChain((q) => {
      if (mode === 'fail') throw new Error('down');
      if (mode === 'servfail') return makeResponse(q.questions[0].name, { id: q.id, rcode: 2 });
      return makeResponse(q.questions[0].name, { id: q.id, answers: [{ type: 'A', name: q.questions[0].name, ttl: 60, data: '192.0.2.99' } as packet.Answer] });
    });
    const r = build([cache({ serveStale: true, servfailTtl: 5 }), tierPlugin(tier), up.plugin], clock);
    // The tier's entry is stale: promoted, the chain answers and refreshes L1 (expires T0 + 130 s) and the tier.
    expect(decode((await r.handle(makeQuery('n8.example')))!).answers[0].data).toBe('192.0.2.99');
    tier.data.set(key, old); // another process wrote the old entry back
    clock.advance(70_000);
    mode = 'fail';
    const stale = decode((await r.handle(makeQuery('n8.example')))!);
    expect([stale.answers[0].data, stale.answers[0].ttl]).toEqual(['192.0.2.99', 30]); // L1's later entry, not the tier's
    // A stale SERVFAIL in L1 gives way to a stale answer from a tier.
    const sfKey = [...tier.data.keys()].find((k) => k.includes('\x02n9'))!;
    const sfOld = tier.data.get(sfKey)!;
    const r2 = build([cache({ serveStale: true, servfailTtl: 5 }), tierPlugin(tier), up.plugin], new FakeClock(T0 + 100_000));
    tier.data.delete(sfKey);
    mode = 'servfail';
    expect(decode((await r2.handle(makeQuery('n9.example')))!).rcode).toBe('SERVFAIL');
    tier.data.set(sfKey, sfOld);
    (r2.clock as FakeClock).advance(10_000);
    mode = 'fail';
    const out = decode((await r2.handle(makeQuery('n9.example')))!);
    expect([out.rcode, out.answers[0]?.data, out.answers[0]?.ttl]).toEqual(['NOERROR', '192.0.2.1', 30]);
  });

  it('a plain Uint8Array value (not a Buffer) is read like a Buffer', async () => {
    const tier = await filledTier(300);
    const plain: CacheTier = {
      name: 'plain',
      get: (key) => {
        const v = tier.get(key) as Buffer | undefined;
        return v === undefined ? undefined : new Uint8Array(v);
      },
      set: () => {},
      flush: () => {},
    };
    const up = fakeChain(answerA(300));
    const r = build([cache(), tierPlugin(plain), up.plugin], new FakeClock(T0 + 5000));
    expect(ttlsOf((await r.handle(makeQuery('n5.example')))!)).toEqual([295, 295]);
    expect(up.calls.length).toBe(0);
  });

  it('a tier entry whose OPT carries options other than EDE, or that is cut short or followed by bytes, is ignored and counted', async () => {
    const tier = await filledTier(300, {}, true);
    const key = [...tier.data.keys()].find((k) => k.includes('\x02n6'))!;
    const good = tier.data.get(key)!.entry;
    const e = readEntry(good);
    // An OPT with a COOKIE option (10) instead of nothing: RDLENGTH 6, option 10 length 2.
    const wire = Buffer.concat([e.entry.wire, Buffer.from([0, 10, 0, 2, 1, 2])]);
    wire.writeUInt16BE(6, e.optPayload + 6);
    const bad = serializeEntry(key, { ...e.entry, wire });
    const up = fakeChain(answerA(300));
    const r = build([cache(), tierPlugin(tier), up.plugin], new FakeClock(T0 + 1000));
    const store = r.scope('cache').get(CacheStore);
    for (const value of [bad, good.subarray(0, good.length - 1), Buffer.concat([good, Buffer.from([0])])]) {
      tier.data.set(key, { entry: value, expiresAt: T0 + 1e6 });
      await r.handle(makeQuery('n6.example', { edns: true }));
      store.flush();
    }
    expect([up.calls.length, store.stats.tierErrors, store.stats.tierHits]).toEqual([3, 3, 0]);
  });

  it('never throws on corrupted tier values: each query gets a well-formed answer to its question', async () => {
    const tier = await filledTier(300, {}, true);
    const [key, { entry: good }] = [...tier.data].find(([k]) => k.includes('\x02n7'))!;
    const up = fakeChain(answerA(300));
    const r = build([cache(), tierPlugin(tier), up.plugin], new FakeClock(T0 + 1000));
    const store = r.scope('cache').get(CacheStore);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async (edits) => {
        const v = Buffer.from(good);
        for (const [pos, val] of edits) v[pos % v.length] = val;
        tier.data.set(key, { entry: v, expiresAt: T0 + 1e6 });
        store.flush();
        const query = makeQuery('n7.example', { edns: true, id: 0x4242 });
        const raw = (await r.handle(query))!;
        // For this query: its ID and question, a response; the records frame (names, RDLENGTHs) to the end of the message.
        // Record contents are not checksummed: a flipped letter, address or type byte goes unnoticed.
        const qEnd = 12 + 'n7.example'.length + 2 + 4;
        expect([raw.readUInt16BE(0), raw[2] & 0x80, raw.readUInt16BE(4)]).toEqual([0x4242, 0x80, 1]);
        expect(raw.subarray(12, qEnd).equals(query.subarray(12, qEnd))).toBe(true);
        const records = raw.readUInt16BE(6) + raw.readUInt16BE(8) + raw.readUInt16BE(10);
        let p = qEnd;
        for (let i = 0; i < records; i++) {
          p = trySkipName(raw, p);
          expect(p).toBeGreaterThan(0);
          p += 10 + raw.readUInt16BE(p + 8);
        }
        expect(p).toBe(raw.length);
      }),
      { numRuns: 2000 },
    );
  });
});
