import { ConfigError, createResolver, decode, type HeimdallPlugin, type Resolver } from '@heimdall/core';
import { CACHE_STORE, type CacheStore, cache } from '@heimdall/plugin-cache';
import { FakeClock, query, record, response } from '@heimdall/testing';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DEDUP, type Deduplicator, dedup } from './index.js';

/** A downstream that answers only when released (or fails when told to). */
function gate() {
  const calls: Buffer[] = [];
  let waiting: Array<{ q: Buffer; ok: (b: Buffer | null) => void; fail: (e: Error) => void }> = [];
  const plugin: HeimdallPlugin = {
    name: 'gate',
    middleware: () => (ctx) => {
      calls.push(ctx.request);
      return new Promise<void>((resolve, reject) => {
        waiting.push({
          q: ctx.request,
          ok: (b) => {
            ctx.response = b;
            resolve();
          },
          fail: reject,
        });
      });
    },
  };
  return {
    plugin,
    calls,
    release(make: (q: Buffer) => Buffer | null = (q) => response(q, { answers: [record('example.com', 'A', '192.0.2.1', 60)] })) {
      const w = waiting;
      waiting = [];
      for (const x of w) x.ok(make(x.q));
    },
    fail() {
      const w = waiting;
      waiting = [];
      for (const x of w) x.fail(new Error('upstream exploded'));
    },
  };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

let resolvers: Resolver[] = [];
afterEach(async () => {
  for (const r of resolvers) await r.stop();
  resolvers = [];
});

function setup(options: Parameters<typeof dedup>[0] = {}, extra: HeimdallPlugin[] = []) {
  const clock = new FakeClock();
  const g = gate();
  const metrics = new Registry();
  const resolver = createResolver({ plugins: [...extra, dedup(options), g.plugin], clock, metrics });
  resolvers.push(resolver);
  return { clock, g, resolver, metrics, d: resolver.container.get<Deduplicator>(DEDUP) };
}

/** `name` with the letter case of bit pattern `i`. */
function mixCase(name: string, i: number): string {
  let out = '';
  for (let k = 0; k < name.length; k++) out += (i >> k % 11) & 1 ? name[k].toUpperCase() : name[k];
  return out;
}

describe('dedup', () => {
  it('1,000 concurrent identical queries make one downstream request; each gets its own ID and case', async () => {
    const { g, resolver, d, metrics } = setup();
    const pending: Array<Promise<Buffer | null>> = [];
    for (let i = 0; i < 1000; i++) pending.push(resolver.handle(query(mixCase('example.com', i), 'A', { id: i })));
    await settle();
    expect(g.calls.length).toBe(1);
    expect(d.inFlight).toBe(1);
    g.release();
    const out = await Promise.all(pending);
    for (let i = 0; i < 1000; i++) {
      const m = decode(out[i]!);
      expect(m.id).toBe(i);
      expect(m.questions[0].name).toBe(mixCase('example.com', i));
      expect(m.answers.length).toBe(1);
    }
    expect(d.stats.leaders).toBe(1);
    expect(d.stats.coalesced).toBe(999);
    expect(d.inFlight).toBe(0);
    expect(await metrics.metrics()).toMatch(/heimdall_dedup_coalesced_total 999/);
  });

  it('does not coalesce different questions or DO/CD variants', async () => {
    const { g, resolver } = setup();
    const qs = [query('example.com'), query('example.com', 'AAAA'), query('example.org'), query('example.com', 'A', { do: true }), query('example.com', 'A', { cd: true })];
    const pending = qs.map((q) => resolver.handle(q));
    await settle();
    expect(g.calls.length).toBe(5);
    g.release((q) => response(q));
    await Promise.all(pending);
  });

  it('a failure reaches every waiter as SERVFAIL', async () => {
    const { g, resolver, d } = setup();
    const pending = Array.from({ length: 50 }, (_, i) => resolver.handle(query('example.com', 'A', { id: i })));
    await settle();
    g.fail();
    const out = await Promise.all(pending);
    for (let i = 0; i < 50; i++) {
      const m = decode(out[i]!);
      expect(m.rcode).toBe(2);
      expect(m.id).toBe(i);
    }
    expect(d.stats.failures).toBe(49);
    expect(d.inFlight).toBe(0);
  });

  it('a timeout reaches every waiter and clears the flight', async () => {
    const { g, resolver, d, clock } = setup();
    const pending = Array.from({ length: 20 }, (_, i) => resolver.handle(query('slow.example', 'A', { id: i })));
    await settle();
    expect(g.calls.length).toBe(1);
    clock.advance(5000);
    const out = await Promise.all(pending);
    for (const r of out) expect(decode(r!).rcode).toBe(2);
    expect(d.inFlight).toBe(0);
    // A late answer from the abandoned call changes nothing.
    g.release();
    await settle();
    expect(d.inFlight).toBe(0);
  });

  it('waiters are bounded by the leader\'s deadline, not their own', async () => {
    const { g, resolver, d, clock } = setup();
    const leader = resolver.handle(query('lead.example', 'A', { id: 1 }));
    await settle();
    clock.advance(3000); // the waiter arrives 3 s later: its own deadline is 3 s after the leader's
    const waiter = resolver.handle(query('lead.example', 'A', { id: 2 }));
    await settle();
    expect(g.calls.length).toBe(1);
    clock.advance(2000); // the leader's deadline
    await settle();
    expect(decode((await waiter)!).rcode).toBe(2);
    expect(decode((await leader)!).rcode).toBe(2);
    expect(d.stats.failures).toBe(1);
    expect(d.inFlight).toBe(0);
  });

  it('bounds the waiters per question; the rest go their own way', async () => {
    const { g, resolver, d } = setup({ maxWaiters: 10 });
    const pending = Array.from({ length: 25 }, (_, i) => resolver.handle(query('example.com', 'A', { id: i })));
    await settle();
    expect(g.calls.length).toBe(15); // 1 leader + 14 overflow
    expect(d.stats.overflows).toBe(14);
    g.release();
    const out = await Promise.all(pending);
    for (let i = 0; i < 25; i++) expect(decode(out[i]!).id).toBe(i);
  });

  it('a full table drops flights whose leader never settled', async () => {
    const { g, resolver, d, clock } = setup({ maxInFlight: 2 });
    void resolver.handle(query('a.example'));
    void resolver.handle(query('b.example'));
    await settle();
    expect(d.inFlight).toBe(2);
    void resolver.handle(query('c.example')); // table full, flights still live: not coalesced
    await settle();
    expect(d.stats.overflows).toBe(1);
    clock.advance(5000); // the leaders' deadlines pass; their chains never settle
    await settle();
    void resolver.handle(query('d.example'));
    await settle();
    expect(d.inFlight).toBe(1); // a and b pruned, d leads
    g.release((q) => response(q));
    await settle();
    expect(d.inFlight).toBe(0);
  });

  it('works behind the cache: the coalesced answer is cached once', async () => {
    const { g, resolver } = setup({}, [cache()]);
    const pending = Array.from({ length: 10 }, (_, i) => resolver.handle(query('example.com', 'A', { id: i })));
    await settle();
    expect(g.calls.length).toBe(1);
    g.release();
    await Promise.all(pending);
    const again = resolver.process(query('EXAMPLE.com', 'A', { id: 99 }), { address: '::1', port: 1, family: 6, transport: 'udp' });
    expect(again).toBeInstanceOf(Buffer);
    expect(decode(again as Buffer).questions[0].name).toBe('EXAMPLE.com');
    expect(g.calls.length).toBe(1);
    expect(resolver.container.get<CacheStore>(CACHE_STORE).stats.positiveStored).toBe(1);
  });

  it('validates options', () => {
    expect(() => dedup({ maxWaiters: -1 })).toThrow(ConfigError);
    expect(() => dedup({ maxWaiters: 1.5 })).toThrow(/^dedup\.maxWaiters: must be an integer/);
    expect(() => dedup({ maxInFlight: 0 })).toThrow(/dedup\.maxInFlight/);
    expect(() => dedup({ nope: 1 } as any)).toThrow(/dedup\.nope: unknown option/);
  });
});
