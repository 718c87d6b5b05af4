import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { BLOCKING_CONTROL, type BlockingControl, EdeCode, METRICS, Rcode, RecordType, type Registry } from '@heimdall/core';
import { decodeResponse, expectAnswers, expectEde, expectRcode, query, response, type TestResolver, testResolver } from '@heimdall/testing';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BlockingOptionsInput } from './options.js';
import { blocking } from './plugin.js';
import type { BlockingPluginStatus, BlockingReloadResult } from './service.js';
import { blockedProbe, upstreamStub } from './test-util.js';

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;

const resolvers: TestResolver[] = [];
let cacheDir = '';
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'heimdall-blocking-plugin-test-'));
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});
async function make(options: BlockingOptionsInput, chains?: Record<string, string[]>): Promise<TestResolver> {
  const r = testResolver([
    blocking({ build: 'inline', cacheDir, groups: { ads: { block: [{ inline: 'ads.example\n' }] } }, ...options }),
    upstreamStub(chains),
  ]);
  resolvers.push(r);
  await r.start();
  return r;
}
afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.stop();
});

const A = (name: string, opts = {}) => query(name, 'A', { edns: true, ...opts });

describe('blocking plugin: decisions through a resolver', () => {
  it('blocks listed names and subdomains with NXDOMAIN + SOA (TTL = block TTL) + EDE 15; others pass', async () => {
    const r = await make({ response: { ttl: 42 } });
    for (const name of ['ads.example', 'x.y.ads.example', 'ADS.Example']) {
      const res = await r.handle(A(name));
      const m = expectRcode(res, 'NXDOMAIN');
      expect(m.authorities[0]!.type).toBe(RecordType.SOA);
      expect(m.authorities[0]!.ttl).toBe(42);
      expect((m.authorities[0]!.data as { minimum: number }).minimum).toBe(42);
      expectEde(res, EdeCode.BLOCKED, 'Blocked (ads)');
    }
    expectAnswers(await r.handle(A('example.com')), ['192.0.2.80']);
    expectAnswers(await r.handle(A('notads.example')), ['192.0.2.80']);
  });

  it('no EDE without EDNS in the query, and none when disabled', async () => {
    const r = await make({ response: { ede: false } });
    expect(decodeResponse(await r.handle(A('ads.example'))).edns?.options ?? []).toEqual([]);
    const r2 = await make({});
    const m = expectRcode(await r2.handle(query('ads.example', 'A')), 'NXDOMAIN');
    expect(m.edns).toBeUndefined();
  });

  it('response mode nodata', async () => {
    const r = await make({ response: { mode: 'nodata' } });
    const m = expectRcode(await r.handle(A('ads.example')), 'NOERROR');
    expect(m.answers).toEqual([]);
    expect(m.authorities[0]!.type).toBe(RecordType.SOA);
  });

  it('response mode zero: 0.0.0.0 / :: / NODATA for other types', async () => {
    const r = await make({ response: { mode: 'zero', ttl: 5 } });
    const a = expectAnswers(await r.handle(A('ads.example')), ['0.0.0.0']);
    expect(a.answers[0]!.ttl).toBe(5);
    expectAnswers(await r.handle(query('ads.example', 'AAAA', { edns: true })), ['::']);
    const mx = expectRcode(await r.handle(query('ads.example', 'MX', { edns: true })), 'NOERROR');
    expect(mx.answers).toEqual([]);
    expect(mx.authorities[0]!.type).toBe(RecordType.SOA);
    expectEde(await r.handle(A('ads.example')), EdeCode.BLOCKED);
  });

  it('response mode custom', async () => {
    const r = await make({ response: { mode: 'custom', ipv4: ['192.0.2.1', '192.0.2.2'], ipv6: [] } });
    expectAnswers(await r.handle(A('ads.example')), ['192.0.2.1', '192.0.2.2']);
    const aaaa = expectRcode(await r.handle(query('ads.example', 'AAAA')), 'NOERROR');
    expect(aaaa.answers).toEqual([]);
  });

  it('response mode refused (with EDE 15)', async () => {
    const r = await make({ response: { mode: 'refused' } });
    const res = await r.handle(A('ads.example'));
    expectRcode(res, Rcode.REFUSED);
    expectEde(res, EdeCode.BLOCKED);
  });

  it('CNAME inspection: a chain through a blocked name is blocked; off when disabled', async () => {
    const chains = { 'www.innocent.example': ['cdn.innocent.example', 'track.ads.example', 'edge.cdn.example'] };
    const r = await make({}, chains);
    const res = await r.handle(A('www.innocent.example'));
    expectRcode(res, 'NXDOMAIN');
    expectEde(res, EdeCode.BLOCKED);
    const r2 = await make({ cnameInspection: false }, chains);
    expectAnswers(await r2.handle(A('www.innocent.example')), ['cdn.innocent.example', 'track.ads.example', 'edge.cdn.example', '192.0.2.80']);
    const r3 = await make({}, { 'www.fine.example': ['cdn.fine.example'] });
    expectRcode(await r3.handle(A('www.fine.example')), 'NOERROR');
  });

  it('allow lists win; groups by CIDR (v4, v6, mapped v6), most specific first, default group', async () => {
    const r = await make({
      groups: {
        ads: { block: [{ inline: 'ads.example\ntracker.example\n' }], allow: [{ inline: 'ok.ads.example' }] },
        kids: { block: [{ inline: '*.games.example\n' }] },
        office: { block: [{ inline: 'social.example\n' }] },
      },
      clients: {
        default: ['ads'],
        '10.0.0.0/8': ['ads', 'office'],
        '10.1.2.0/24': ['kids'],
        'fd00::/8': ['kids', 'ads'],
        '192.0.2.99': [],
      },
    });
    expectAnswers(await r.handle(A('ok.ads.example')), ['192.0.2.80']);
    expectRcode(await r.handle(A('a.ok2.ads.example')), 'NXDOMAIN');
    // default group
    expectRcode(await r.handle(A('tracker.example'), { address: '198.51.100.1' }), 'NXDOMAIN');
    expectAnswers(await r.handle(A('x.games.example'), { address: '198.51.100.1' }), ['192.0.2.80']);
    // 10/8 → ads + office
    expectRcode(await r.handle(A('social.example'), { address: '10.9.9.9' }), 'NXDOMAIN');
    // 10.1.2/24 is more specific → kids only
    expectAnswers(await r.handle(A('social.example'), { address: '10.1.2.3' }), ['192.0.2.80']);
    expectRcode(await r.handle(A('x.games.example'), { address: '10.1.2.3' }), 'NXDOMAIN');
    expectAnswers(await r.handle(A('games.example'), { address: '10.1.2.3' }), ['192.0.2.80']);
    // IPv6 and IPv4-mapped IPv6
    expectRcode(await r.handle(A('x.games.example'), { address: 'fd12::1', family: 6 }), 'NXDOMAIN');
    expectRcode(await r.handle(A('x.games.example'), { address: '::ffff:10.1.2.3', family: 6 }), 'NXDOMAIN');
    expectAnswers(await r.handle(A('x.games.example'), { address: '2001:db8::1', family: 6 }), ['192.0.2.80']);
    // a single address mapped to no group: not filtered
    expectAnswers(await r.handle(A('ads.example'), { address: '192.0.2.99' }), ['192.0.2.80']);
  });

  it('groups by DoH client id (`id:<name>` from /dns-query/<name>) beat address rules; no id: the address decides', async () => {
    const r = await make({
      groups: { ads: { block: [{ inline: 'ads.example\n' }] }, kids: { block: [{ inline: '*.games.example\n' }] } },
      clients: { default: ['ads'], 'id:kids-tablet': ['kids'], '10.0.0.0/8': ['ads'] },
    });
    const tablet = { address: '10.1.2.3', transport: 'https' as const, clientId: 'kids-tablet' };
    expectRcode(await r.handle(A('x.games.example'), tablet), 'NXDOMAIN');
    expectAnswers(await r.handle(A('ads.example'), tablet), ['192.0.2.80']);
    expectAnswers(await r.handle(A('x.games.example'), { address: '10.1.2.3' }), ['192.0.2.80']);
    expectRcode(await r.handle(A('ads.example'), { address: '10.1.2.3', transport: 'https', clientId: 'laptop' }), 'NXDOMAIN');
  });

  it('real-looking files: hosts, adblock ($important beats @@), regex, mixed (public suffixes refused)', async () => {
    const r = await make({
      groups: {
        ads: {
          block: [fixture('hosts.txt'), fixture('adblock.txt'), fixture('regex.txt'), fixture('mixed.txt'), fixture('wildcard.txt')],
          allow: [{ inline: 'track.adblock.example\n' }],
        },
      },
    });
    const ctl = r.get<BlockingControl>(BLOCKING_CONTROL);
    const st = ctl.status() as BlockingPluginStatus;
    const mixed = st.lists.find((l) => l.name.endsWith('mixed.txt'))!;
    expect(mixed.refusedPublicSuffix).toBe(3); // '-', co.uk, github.io
    expect(mixed.invalid).toBe(3);
    const hosts = st.lists.find((l) => l.name.endsWith('hosts.txt'))!;
    expect(hosts.entries).toBe(9);
    expect(hosts.ignored).toBe(14);
    for (const blocked of [
      'c.adnetwork.example',
      'xn--bcher-kva.example',
      'a.track.adblock.example',
      'ad12.regex.example',
      'x.wild.mixed.example',
      'y.tracker.net',
    ]) {
      expectRcode(await r.handle(A(blocked)), 'NXDOMAIN');
    }
    for (const passed of [
      'good.adblock.example',
      'ok12.ads.regex.example',
      'www.exact.adblock.example',
      'www.bbc.co.uk',
      'someone.github.io',
      'wild.mixed.example',
    ]) {
      expectAnswers(await r.handle(A(passed)), ['192.0.2.80']);
    }
    // the query log sees why
    const stateProbe = testResolver([
      blocking({ build: 'inline', groups: { g: { block: [{ inline: '/^ad[0-9]+\\./' }] } } }),
      {
        name: 'probe',
        middleware: () => (ctx) => {
          ctx.response = response(ctx.request);
        },
      },
    ]);
    resolvers.push(stateProbe);
    await stateProbe.start();
    expectRcode(await stateProbe.handle(A('ad1.example')), 'NXDOMAIN');
  });

  it('records why a query was blocked in ctx.state', async () => {
    const probe = blockedProbe();
    const r = testResolver([
      probe.plugin,
      blocking({ build: 'inline', groups: { g: { block: [{ inline: '/^ad[0-9]+\\./', name: 'regexes' }] } } }),
      upstreamStub(),
    ]);
    resolvers.push(r);
    await r.start();
    await r.handle(A('ad1.example'));
    expect(probe.seen()).toEqual({ group: 'g', list: 'regexes', reason: 'regex', name: 'ad1.example', rule: '/^ad[0-9]+\\./' });
  });

  it("a name listed by two groups is reported under the client's group (query log and metrics)", async () => {
    const probe = blockedProbe();
    const r = testResolver([
      probe.plugin,
      blocking({
        build: 'inline',
        cacheDir,
        groups: { a: { block: [{ inline: 'shared.example', name: 'list-a' }] }, b: { block: [{ inline: 'shared.example', name: 'list-b' }] } },
        clients: { default: ['a'], '10.0.0.0/8': ['b'] },
      }),
      upstreamStub(),
    ]);
    resolvers.push(r);
    await r.start();
    await r.handle(A('x.shared.example'), { address: '10.1.1.1' });
    expect(probe.seen()?.group).toBe('b');
    const text = await r.get<Registry>(METRICS).metrics();
    expect(text).toMatch(/heimdall_blocking_blocked_total\{group="b",reason="list"\} 1/);
    expect(text).not.toMatch(/heimdall_blocking_blocked_total\{group="a",reason="list"\} 1/);
  });

  it('runtime control: disable (timed), enable, status, metrics', async () => {
    const r = await make({});
    const ctl = r.get<BlockingControl>(BLOCKING_CONTROL);
    expect(ctl.status().enabled).toBe(true);
    ctl.disable(60_000);
    expect(ctl.status()).toMatchObject({ enabled: false, disabledUntil: r.clock.now() + 60_000 });
    expectAnswers(await r.handle(A('ads.example')), ['192.0.2.80']);
    (r.clock as { advance(ms: number): number }).advance(60_001);
    expect(ctl.status().enabled).toBe(true);
    expectRcode(await r.handle(A('ads.example')), 'NXDOMAIN');
    ctl.disable();
    expect(ctl.status()).toMatchObject({ enabled: false, disabledUntil: null });
    ctl.enable();
    expectRcode(await r.handle(A('ads.example')), 'NXDOMAIN');
    expect(() => ctl.disable(-1)).toThrow(RangeError);
    const reg = r.get<Registry>(METRICS);
    const text = await reg.metrics();
    expect(text).toMatch(/heimdall_blocking_blocked_total\{group="ads",reason="list"\} 2/);
    expect(text).toMatch(/heimdall_blocking_list_entries\{list="ads.block\[0\]",group="ads",kind="block"\} 1/);
    expect(text).toMatch(/heimdall_blocking_enabled 1/);
    expect(text).toMatch(/heimdall_blocking_decision_memo_entries 1\n/); // ads.example, decided once, then remembered
    const res = (await ctl.reload()) as BlockingReloadResult;
    expect(res.rebuilt).toBe(true);
    expect(await reg.metrics()).toMatch(/heimdall_blocking_decision_memo_entries 0\n/); // a new engine, its memo empty
  });
});

it('public-suffix entries are refused with a warning that shows examples', async () => {
  const lines: { level: number; msg: string; list?: string; refusedPublicSuffix?: number; examples?: string[] }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    }),
  );
  const r = testResolver(
    [blocking({ build: 'inline', groups: { g: { block: [{ inline: 'co.uk\ngithub.io\nads.example\n', name: 'mine' }] } } }), upstreamStub()],
    {
      logger,
    },
  );
  resolvers.push(r);
  await r.start();
  const warn = lines.find((l) => l.level === 40 && l.list === 'mine');
  expect(warn?.refusedPublicSuffix).toBe(2);
  expect(warn?.examples?.join()).toMatch(/co\.uk \(public suffix, refused\)/);
  expectAnswers(await r.handle(A('www.bbc.co.uk')), ['192.0.2.80']);
  expectRcode(await r.handle(A('ads.example')), 'NXDOMAIN');
});

it('fixtures exist', () => {
  expect(readFileSync(fixture('hosts.txt'), 'utf8')).toMatch(/ads\.example\.com/);
});

it('a repeated question (decided from the memo of its key) is decided for the asking client’s groups and by the lists now loaded', async () => {
  const list = join(cacheDir, 'memo-list.txt');
  await writeFile(list, 'ads.example\n');
  const r = await make({
    groups: { ads: { block: [list] }, kids: { block: [{ inline: '*.games.example\n' }] } },
    clients: { default: ['ads'], '10.1.2.0/24': ['kids'] },
  });
  const adult = { address: '198.51.100.1' };
  const kid = { address: '10.1.2.3' };
  for (let i = 0; i < 3; i++) expectAnswers(await r.handle(A('x.games.example'), adult), ['192.0.2.80']);
  expectRcode(await r.handle(A('x.games.example'), kid), 'NXDOMAIN');
  expectAnswers(await r.handle(A('x.games.example'), adult), ['192.0.2.80']);
  expectRcode(await r.handle(A('X.Games.Example'), kid), 'NXDOMAIN');
  for (let i = 0; i < 3; i++) expectAnswers(await r.handle(A('new.example'), adult), ['192.0.2.80']);
  await writeFile(list, 'ads.example\nnew.example\n');
  const res = (await r.get<BlockingControl>(BLOCKING_CONTROL).reload()) as BlockingReloadResult;
  expect(res.rebuilt).toBe(true);
  expectRcode(await r.handle(A('new.example'), adult), 'NXDOMAIN');
  expectAnswers(await r.handle(A('new.example'), kid), ['192.0.2.80']);
});
