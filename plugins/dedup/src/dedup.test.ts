import { ConfigError, createResolver, type HeimdallPlugin, type Resolver } from '@heimdall/core';
import { decode } from '@heimdall/core/packet';
import { FakeClock, query, record, response } from '@heimdall/testing';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Deduplicator } from './dedup.js';
import { dedup } from './index.js';

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
  return { clock, g, resolver, metrics, d: resolver.scope('dedup').get(Deduplicator) };
}

/** `name` with the letter case of bit pattern `i`. */
function mixCase(name: string, i: number): string {
  let out = '';
  for (let k = 0; k < name.length; k++) out += (i >> (k % 11)) & 1 ? name[k].toUpperCase() : name[k];
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
    const qs = [
      query('example.com'),
      query('example.com', 'AAAA'),
      query('example.org'),
      query('example.com', 'A', { do: true }),
      query('example.com', 'A', { cd: true }),
    ];
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

  it("waiters are bounded by the leader's deadline, not their own", async () => {
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

  it('the plugins in front get each query its own buffer (a cache in front may store and patch it)', async () => {
    const seen: Buffer[] = [];
    const front: HeimdallPlugin = {
      name: 'front',
      middleware: () => async (ctx, next) => {
        await next();
        seen.push(ctx.response!);
      },
    };
    const { g, resolver } = setup({}, [front]);
    const pending = Array.from({ length: 10 }, (_, i) => resolver.handle(query('example.com', 'A', { id: i })));
    await settle();
    expect(g.calls.length).toBe(1);
    g.release();
    await Promise.all(pending);
    expect(seen).toHaveLength(10);
    expect(seen.map((b) => decode(b).id).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // No two share memory: patching each in place leaves the others alone.
    for (const [i, b] of seen.entries()) b.writeUInt16BE(0xf000 + i, 0);
    expect(seen.map((b) => decode(b).id)).toEqual(seen.map((_, i) => 0xf000 + i));
  });

  it('two instances keep their own tables and metrics', async () => {
    const clock = new FakeClock();
    const g = gate();
    const metrics = new Registry();
    const resolver = createResolver({ plugins: [dedup({ maxWaiters: 0 }, { name: 'dedup-lan' }), dedup(), g.plugin], clock, metrics });
    resolvers.push(resolver);
    const pending = Array.from({ length: 3 }, () => resolver.handle(query('example.com')));
    await settle();
    expect(g.calls.length).toBe(1); // dedup-lan lets every query through (maxWaiters 0), dedup coalesces them
    expect(resolver.scope('dedup-lan').get(Deduplicator).stats.overflows).toBe(2);
    expect(resolver.scope('dedup').get(Deduplicator).stats.coalesced).toBe(0);
    g.release();
    await Promise.all(pending);
    expect(resolver.scope('dedup').get(Deduplicator).stats.coalesced).toBe(2);
    const text = await metrics.metrics();
    expect(text).toMatch(/heimdall_dedup_lan_overflows_total 2/);
    expect(text).toMatch(/heimdall_dedup_coalesced_total 2/);
    expect(text).toMatch(/heimdall_dedup_in_flight 0/);
  });

  it('validates options', () => {
    expect(() => dedup({ maxWaiters: -1 })).toThrow(ConfigError);
    expect(() => dedup({ maxWaiters: 1.5 })).toThrow('dedup.maxWaiters: must be an integer in 0..1000000');
    expect(() => dedup({ maxWaiters: 1_000_001 })).toThrow(/^dedup\.maxWaiters: /);
    expect(() => dedup({ maxInFlight: 0 })).toThrow('dedup.maxInFlight: must be an integer in 1..10000000');
    expect(() => dedup({ nope: 1 } as never)).toThrow('dedup.nope: unknown option (known: maxWaiters, maxInFlight)');
    expect(() => dedup({ maxWaiters: 'x' as never }, { path: 'plugins[4].options' })).toThrow(/^plugins\[4\]\.options\.maxWaiters: /);
    expect(dedup().options).toEqual({ maxWaiters: 1024, maxInFlight: 65_536 });
    expect(dedup({ maxWaiters: 0, maxInFlight: 10_000_000 }).options).toEqual({ maxWaiters: 0, maxInFlight: 10_000_000 });
  });
});
