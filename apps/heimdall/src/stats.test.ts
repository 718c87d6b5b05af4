import { ADMIN_ACTIONS, type AdminActions, BLOCKED, createResolver, type HeimdallPlugin, RecordType, UPSTREAM_USED } from '@heimdall/core';
import { FakeClock, query } from '@heimdall/testing';
import { describe, expect, it } from 'vitest';
import { answerer } from './answerer.test-helpers.js';
import { anonymizeAddress, stats } from './plugins/stats.js';
import {
  bucketOf,
  bucketUpperMs,
  LATENCY_OVERFLOW,
  matchesQuery,
  mergeOverview,
  mergeQueries,
  mergeTop,
  percentile,
  type QueryEntry,
  type SparseHist,
  type StatsOverview,
  type StatsQueries,
  type StatsTop,
} from './stats/model.js';
import { clientLabel, mandatoryArgs, reloadStatus, why } from './stats/explain.js';
import { SpaceSaving } from './stats/topk.js';

function actionsOf(r: ReturnType<typeof createResolver>): (name: string, args?: Record<string, unknown>) => Promise<unknown> {
  const group = r.container.getAll<AdminActions>(ADMIN_ACTIONS).find((g) => g.plugin === 'stats')!;
  return async (name, args = {}) => {
    const a = group.actions.find((x) => x.name === name)!;
    const { parseOptions } = await import('@heimdall/core');
    return a.run(a.args ? parseOptions(a.args, args, name) : args);
  };
}

describe('space-saving top-k', () => {
  it('counts exactly while the keys fit', () => {
    const s = new SpaceSaving(10);
    for (const k of ['a', 'b', 'a', 'c', 'a', 'b']) s.add(k);
    expect(s.top(2)).toEqual([
      { key: 'a', count: 3, error: 0 },
      { key: 'b', count: 2, error: 0 },
    ]);
  });

  it('counts the same with hints as without, also when a hinted counter was taken over by another key', () => {
    const plain = new SpaceSaving(8);
    const hinted = new SpaceSaving(8);
    const hints = new Map<string, number>();
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 20_000; i++) {
      // 30 keys over 8 counters: counters change hands all the time, so stale hints are common.
      const k = `k${Math.floor(rnd() * rnd() * 30)}`;
      plain.add(k);
      hints.set(k, hinted.add(k, hints.get(k) ?? -1));
      // A wrong hint (another key's counter) must be ignored too.
      if (i % 97 === 0) {
        hinted.add('k0', hints.get('k1') ?? 3);
        plain.add('k0');
      }
    }
    expect(hinted.top(8)).toEqual(plain.top(8));
  });

  it('keeps every key above N/capacity among 100k distinct names, with bounded over-counts', () => {
    const s = new SpaceSaving(100);
    const truth = new Map<string, number>();
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    let n = 0;
    // 100k distinct one-off names interleaved with a few heavy ones.
    for (let i = 0; i < 100_000; i++) {
      const keys = [`rare${i}.example`];
      if (rnd() < 0.3) keys.push(`heavy${Math.floor(rnd() * 5)}.example`);
      for (const k of keys) {
        s.add(k);
        truth.set(k, (truth.get(k) ?? 0) + 1);
        n++;
      }
    }
    expect(s.held).toBe(100);
    const top = s.top(5);
    expect(top.map((t) => t.key).sort()).toEqual(['heavy0.example', 'heavy1.example', 'heavy2.example', 'heavy3.example', 'heavy4.example']);
    for (const t of top) {
      const real = truth.get(t.key)!;
      expect(t.count).toBeGreaterThanOrEqual(real);
      expect(t.count - t.error).toBeLessThanOrEqual(real);
      expect(t.error).toBeLessThanOrEqual(n / 100);
    }
  });
});

describe('latency buckets', () => {
  it('puts a duration in the bucket whose bound is the first at or above it', () => {
    for (const ms of [0.001, 0.01, 0.05, 0.3, 1, 7.5, 120, 4000]) {
      const k = bucketOf(ms);
      expect(bucketUpperMs(k)).toBeGreaterThanOrEqual(ms * (1 - 1e-9));
      if (k > 0) expect(bucketUpperMs(k - 1)).toBeLessThan(ms);
    }
    expect(bucketOf(1e6)).toBe(LATENCY_OVERFLOW);
  });

  it('estimates percentiles within a bucket width (19 %)', () => {
    const dense = new Map<number, number>();
    const values = Array.from({ length: 1000 }, (_, i) => 0.1 + i * 0.01); // 0.1 .. 10.09 ms
    for (const v of values) dense.set(bucketOf(v), (dense.get(bucketOf(v)) ?? 0) + 1);
    const h: SparseHist = [...dense].sort((a, b) => a[0] - b[0]);
    const p50 = percentile(h, 0.5)!;
    const p99 = percentile(h, 0.99)!;
    expect(Math.abs(p50 - values[499]!) / values[499]!).toBeLessThan(0.19);
    expect(Math.abs(p99 - values[989]!) / values[989]!).toBeLessThan(0.19);
    expect(percentile([], 0.5)).toBeNull();
  });
});

describe('client anonymisation (as AdGuard Home)', () => {
  it('masks IPv4 to /16 and IPv6 to /48', () => {
    expect(anonymizeAddress('192.0.2.77')).toBe('192.0.0.0');
    expect(anonymizeAddress('2001:db8:1234:5678::2')).toBe('2001:db8:1234::');
    expect(anonymizeAddress('::1')).toBe('::');
    expect(anonymizeAddress('::ffff:198.51.100.9')).toBe('::ffff:198.51.0.0');
    expect(anonymizeAddress('fe80:0:0:0:1:2:3:4')).toBe('fe80::');
  });
});

describe('stats plugin', () => {
  it('counts answers by why they were answered so, and serves them as admin actions', async () => {
    const clock = new FakeClock(1_700_000_000_000);
    const r = createResolver({ plugins: [stats({ logSize: 3 }), answerer], clock });
    await r.start();
    const run = actionsOf(r);
    await r.handle(query('www.example', 'A'), { transport: 'udp', address: '192.0.2.44' });
    await r.handle(query('Cached.Example', 'AAAA'), { transport: 'udp', address: '192.0.2.44' });
    clock.advance(7000);
    await r.handle(query('ads.example', 'A'), { transport: 'tcp', address: '192.0.2.45' });
    await r.handle(query('nas.lan', 'A'));
    const o = (await run('overview', { step: 5 })) as StatsOverview;
    expect(o.window).toMatchObject({ queries: 4, cached: 1, cacheMisses: 2, blocked: 1, forwarded: 2 });
    expect(o.window.rcodes).toMatchObject({ NOERROR: 3, NXDOMAIN: 1, none: 0 });
    expect(o.lifetime.queries).toBe(4);
    expect(o.series.queries.reduce((a, b) => a + b, 0)).toBe(4);
    expect(o.series.t.at(-1)! * 1000).toBeLessThanOrEqual(clock.now());
    expect(o.latency.upstreams.map((u) => [u.upstream, u.count])).toEqual([['udp://192.0.2.53:53', 2]]);
    expect(o.latency.p50).toBeGreaterThan(0);

    const t = (await run('top', { limit: 2 })) as StatsTop;
    expect(t.clients[0]).toEqual({ key: '192.0.2.44', count: 2, error: 0 });
    expect(t.blocked).toEqual([{ key: 'ads.example', count: 1, error: 0 }]);
    expect(t.names.map((n) => n.key)).toContain('cached.example');

    // A ring of 3: the first query is gone; newest first; the rewrite and the block explained.
    const q = (await run('queries', {})) as StatsQueries;
    expect(q.kept).toBe(3);
    expect(q.entries.map((e) => e.qname)).toEqual(['nas.lan', 'ads.example', 'Cached.Example']);
    expect(q.entries[0]!.rewrite).toEqual({ qname: 'nas.home.arpa', qtype: 'A' });
    expect(q.entries[1]).toMatchObject({ client: '192.0.2.45', rcode: 'NXDOMAIN', blocked: { list: 'ads.txt', group: 'kids', reason: 'list' } });
    expect(((await run('queries', { blocked: true })) as StatsQueries).entries.map((e) => e.qname)).toEqual(['ads.example']);
    expect(((await run('queries', { cached: true, type: 'aaaa' })) as StatsQueries).entries.map((e) => e.qname)).toEqual(['Cached.Example']);
    expect(((await run('queries', { forwarded: true })) as StatsQueries).entries.map((e) => e.qname)).toEqual(['nas.lan']);
    expect(((await run('queries', { client: '192.0.2.' })) as StatsQueries).entries).toHaveLength(2);

    // Older than the window: gone from the window, kept in the lifetime counters.
    clock.advance(901_000);
    const later = (await run('overview', {})) as StatsOverview;
    expect(later.window.queries).toBe(0);
    expect(later.lifetime.queries).toBe(4);
    await run('reset');
    expect(((await run('overview', {})) as StatsOverview).lifetime.queries).toBe(0);
    await r.stop();
  });

  it('keeps the blocking rule and the client id in the log; rcodes per point; upstream latency per 10 s', async () => {
    const clock = new FakeClock(1_700_000_000_000);
    const blocker: HeimdallPlugin = {
      name: 'blocker',
      middleware: () => async (ctx) => {
        await Promise.resolve();
        const name = ctx.query.qname;
        if (name.endsWith('ads.example.com')) {
          ctx.set(BLOCKED, { group: 'default', list: 'ads', reason: 'list', name, rule: 'ads.example.com' });
          ctx.nxdomain();
        } else if (name === 'fail.example') ctx.servfail();
        else if (name === 'no.example') ctx.refused();
        else {
          ctx.set(UPSTREAM_USED, 'udp://192.0.2.53:53');
          ctx.answer([{ name, type: RecordType.A, ttl: 5, data: '192.0.2.1' }]);
        }
      },
    };
    const r = createResolver({ plugins: [stats(), blocker], clock });
    await r.start();
    const run = actionsOf(r);
    await r.handle(query('x.ads.example.com', 'A'), { transport: 'https', address: '10.0.0.5', clientId: 'kids-tablet' });
    await r.handle(query('www.example', 'A'), { transport: 'udp', address: '10.0.0.6' });
    await r.handle(query('www.example', 'A'), { transport: 'udp', address: '10.0.0.6' });
    await r.handle(query('fail.example', 'A'), { transport: 'udp', address: '10.0.0.6' });
    await r.handle(query('no.example', 'A'), { transport: 'udp', address: '10.0.0.6' });
    const q = (await run('queries', {})) as StatsQueries;
    const blocked = q.entries.find((e) => e.blocked)!;
    expect(blocked).toMatchObject({ client: '10.0.0.5', clientId: 'kids-tablet', blocked: { list: 'ads', reason: 'list', rule: 'ads.example.com' } });
    expect(q.entries.filter((e) => e.clientId !== undefined)).toHaveLength(1);
    expect(((await run('queries', { client: 'kids-tablet' })) as StatsQueries).entries.map((e) => e.qname)).toEqual(['x.ads.example.com']);

    const o = (await run('overview', { step: 5 })) as StatsOverview;
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    expect([sum(o.series.noerror), sum(o.series.nxdomain), sum(o.series.servfail), sum(o.series.refused), sum(o.series.otherRcode)]).toEqual([2, 1, 1, 1, 0]);
    expect(o.series.nxdomain).toHaveLength(o.series.t.length);
    const up = o.latency.upstreams[0]!;
    expect(up.points).toHaveLength(o.latency.t.length);
    expect(up.points.reduce((n, h) => n + h.reduce((m, [, c]) => m + c, 0), 0)).toBe(2);
    await r.stop();
  });

  it('stores anonymised client addresses when asked', async () => {
    const r = createResolver({ plugins: [stats({ anonymizeClients: true }), answerer] });
    await r.start();
    await r.handle(query('www.example', 'A'), { transport: 'udp', address: '192.0.2.44' });
    const run = actionsOf(r);
    expect(((await run('top', {})) as StatsTop).clients).toEqual([{ key: '192.0.0.0', count: 1, error: 0 }]);
    expect(((await run('queries', {})) as StatsQueries).entries[0]!.client).toBe('192.0.0.0');
    await r.stop();
  });

  it('validates its options with its schema', () => {
    expect(stats().options).toEqual({ windowSeconds: 900, topSize: 1000, logSize: 1000, anonymizeClients: false });
    expect(() => stats({ topSize: 5 })).toThrow('stats.topSize');
    expect(() => stats({ windowSeconds: 10 })).toThrow('stats.windowSeconds');
  });
});

describe('merging workers (combine: all)', () => {
  const entry = (t: number, qname: string): QueryEntry => ({
    t,
    client: '192.0.2.1',
    transport: 'udp',
    id: 1,
    qname,
    qtype: 'A',
    rcode: 'NOERROR',
    answers: 1,
    ms: 1,
  });

  it('adds counters, series and histograms, and recomputes percentiles', () => {
    const base = (queries: number, hist: SparseHist): StatsOverview => ({
      now: 1000,
      startedAt: 0,
      windowSeconds: 900,
      lifetime: { queries, cached: 1, cacheMisses: 0, blocked: 0, forwarded: 0, rcodes: { NOERROR: queries } },
      window: { queries, cached: 1, cacheMisses: 0, blocked: 0, forwarded: 0, rcodes: { NOERROR: queries } },
      series: {
        step: 5,
        t: [100, 105],
        queries: [queries, 0],
        cached: [1, 0],
        blocked: [0, 0],
        forwarded: [0, 0],
        failed: [0, 0],
        noerror: [queries, 0],
        nxdomain: [0, 1],
        servfail: [0, 0],
        refused: [0, 0],
        otherRcode: [0, 0],
      },
      latency: {
        hist,
        p50: null,
        p99: null,
        step: 10,
        t: [100],
        points: [hist],
        upstreams: [{ upstream: 'u', count: 1, hist, p50: null, p99: null, points: [hist] }],
      },
      anonymized: false,
    });
    const m = mergeOverview([base(3, [[10, 3]]), base(5, [[40, 5]])]);
    expect(m.window.queries).toBe(8);
    expect(m.window.rcodes.NOERROR).toBe(8);
    expect(m.series.queries).toEqual([8, 0]);
    expect(m.latency.hist).toEqual([
      [10, 3],
      [40, 5],
    ]);
    expect(m.latency.p50).toBeGreaterThan(bucketUpperMs(39));
    expect(m.latency.upstreams[0]!.count).toBe(8);
    expect(m.series.noerror).toEqual([8, 0]);
    expect(m.series.nxdomain).toEqual([0, 2]);
    expect(m.latency.upstreams[0]!.points).toEqual([
      [
        [10, 3],
        [40, 5],
      ],
    ]);
  });

  it('adds top lists and interleaves queries by time', () => {
    const top = (names: Array<[string, number]>): StatsTop => ({
      names: names.map(([key, count]) => ({ key, count, error: 0 })),
      blocked: [],
      clients: [],
      capacity: 10,
      anonymized: false,
    });
    expect(
      mergeTop(
        [
          top([
            ['a', 5],
            ['b', 4],
          ]),
          top([
            ['b', 3],
            ['c', 1],
          ]),
        ],
        2,
      ).names.map((n) => [n.key, n.count]),
    ).toEqual([
      ['b', 7],
      ['a', 5],
    ]);
    const q = mergeQueries(
      [
        { worker: 1, result: { entries: [entry(30, 'x'), entry(10, 'y')], kept: 2, capacity: 5 } },
        { worker: 2, result: { entries: [entry(20, 'z')], kept: 1, capacity: 5 } },
      ],
      2,
    );
    expect(q.entries.map((e) => [e.qname, e.worker])).toEqual([
      ['x', 1],
      ['z', 2],
    ]);
    expect(q.kept).toBe(3);
  });

  it('filters entries', () => {
    const e = entry(1, 'WWW.Example.com');
    expect(matchesQuery(e, { name: 'example.COM.' })).toBe(true);
    expect(matchesQuery(e, { client: '192.0.2.' })).toBe(true);
    expect(matchesQuery(e, { client: '192.0.2' })).toBe(false);
    expect(matchesQuery(e, { blocked: true })).toBe(false);
    expect(matchesQuery(e, { forwarded: false, cached: false, rcode: 'noerror' })).toBe(true);
  });
});

describe('dashboard text (stats/explain.ts)', () => {
  const e = (extra: Partial<QueryEntry>): QueryEntry => ({
    t: 0,
    client: '10.0.0.5',
    transport: 'udp',
    id: 1,
    qname: 'x',
    qtype: 'A',
    rcode: 'NXDOMAIN',
    answers: 0,
    ms: 0,
    ...extra,
  });

  it('names the rule that blocked, and the client id beside the address', () => {
    expect(why(e({ blocked: { list: 'ads', group: 'default', reason: 'list', rule: 'ads.example.com' } }))).toBe(
      'blocked by list ads (group default), rule ads.example.com',
    );
    expect(why(e({ blocked: { list: 'r', group: 'kids', reason: 'regex', rule: '/^ad[0-9]+\\./' } }))).toBe(
      'blocked by list r (group kids), regex /^ad[0-9]+\\./',
    );
    expect(why(e({ blocked: { list: 'l', group: 'g', reason: 'cname', name: 't.cdn.example', rule: 'cdn.example' } }))).toBe(
      'blocked by CNAME t.cdn.example in list l (group g), rule cdn.example',
    );
    expect(why(e({ blocked: { list: 'l', group: 'g', reason: 'list' } }))).toBe('blocked by list l (group g)');
    expect(clientLabel(e({ clientId: 'kids-tablet' }))).toBe('10.0.0.5 (kids-tablet)');
    expect(clientLabel(e({}))).toBe('10.0.0.5');
  });

  it('counts as mandatory only the required arguments without a default', () => {
    expect(mandatoryArgs({ properties: { limit: { default: 10 }, name: {} }, required: ['limit'] })).toEqual([]);
    expect(mandatoryArgs({ properties: { limit: { default: 10 }, name: {} }, required: ['limit', 'name'] })).toEqual(['name']);
    expect(mandatoryArgs(undefined)).toEqual([]);
  });

  it('says what a reload did: failed or rejected lists are not "reloaded"', () => {
    expect(reloadStatus([{ rebuilt: true, changed: 2, failed: 0, rejected: 0 }])).toEqual({ ok: true, text: 'Lists reloaded: 2 lists changed.' });
    expect(reloadStatus([{ rebuilt: false, changed: 0, failed: 0, rejected: 0 }])).toEqual({ ok: true, text: 'Lists reloaded: no list changed.' });
    expect(reloadStatus([{ rebuilt: false, changed: 0, failed: 1, rejected: 0 }])).toEqual({
      ok: false,
      text: 'Reload incomplete: 1 list failed to refresh (the last good copy stays in use); 0 lists changed.',
    });
    expect(reloadStatus([{ rebuilt: true, changed: 1, failed: 0, rejected: 2 }]).ok).toBe(false);
  });
});

describe('stats plugin and the question key', () => {
  it('logs every name exactly as asked and counts it lowercased, also when the chain computed the question key (letter case, repeats, a memo full of other names)', async () => {
    // A step that asks for the key, as the blocking list and the cache do, then answers.
    const keyed: HeimdallPlugin = {
      name: 'keyed',
      middleware: () => (ctx) => {
        ctx.questionKey();
        ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.1' }]);
      },
    };
    const r = createResolver({ plugins: [stats({ logSize: 100 }), keyed], clock: new FakeClock(1_700_000_000_000) });
    await r.start();
    const run = actionsOf(r);
    const asked = ['mixed.example', 'Mixed.Example', 'mixed.example', 'MIXED.example', 'mixed.example', 'other.example', 'Mixed.Example', 'mixed.example'];
    for (const name of asked) await r.handle(query(name, 'A'));
    const q = (await run('queries', { limit: 100 })) as StatsQueries;
    expect(q.entries.map((e) => e.qname).reverse()).toEqual(asked);
    const t = (await run('top', { limit: 5 })) as StatsTop;
    expect(t.names).toEqual([
      { key: 'mixed.example', count: 7, error: 0 },
      { key: 'other.example', count: 1, error: 0 },
    ]);
    await r.stop();
  });
});
