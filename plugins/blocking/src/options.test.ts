import { join } from 'node:path';
import { ConfigError, parseOptions } from '@heimdall/core';
import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { blockingOptionsSchema, compileOptions, IPV4_PATTERN, IPV6_PATTERN } from './options.js';
import { blocking } from './plugin.js';

const compile = (o: unknown, env: NodeJS.ProcessEnv = { HOME: '/home/heimdall' }) =>
  compileOptions(parseOptions(blockingOptionsSchema, o, 'blocking'), 'blocking', env);

function errorOf(o: unknown): ConfigError {
  try {
    blocking(o as never);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`accepted: ${JSON.stringify(o)}`);
}

describe('options: one schema, errors name the field', () => {
  it.each([
    [{}, 'blocking.groups: is required'],
    [{ groups: {} }, 'blocking.groups: must be an object of 1 to 32 groups'],
    [{ groups: { ads: { block: ['ok.txt', 42] } } }, 'blocking.groups.ads.block[1]: must be a string or an object'],
    [{ groups: { ads: { block: ['ftp://x/y'] } } }, 'blocking.groups.ads.block[0]: must be a path or an http(s) URL'],
    [{ groups: { ads: { block: ['   '] } } }, 'blocking.groups.ads.block[0]: must be a path or an http(s) URL'],
    [{ groups: { ads: { block: [{ source: 'ftp://x/y' }] } } }, 'blocking.groups.ads.block[0].source: must be a path or an http(s) URL'],
    [{ groups: { ads: { block: [{ source: 'a', inline: 'b' }] } } }, 'blocking.groups.ads.block[0]: give either source or inline, not both'],
    [{ groups: { ads: { block: [{ name: 'x' }] } } }, 'blocking.groups.ads.block[0]: needs source (a path or an http(s) URL) or inline (the list text)'],
    [{ groups: { ads: { block: [{ source: 'a', exact: 'yes' }] } } }, 'blocking.groups.ads.block[0].exact: must be true or false'],
    [{ groups: { ads: { block: [{ source: 'a', required: 1 }] } } }, 'blocking.groups.ads.block[0].required: must be true or false'],
    [{ groups: { ads: { deny: [] } } }, 'blocking.groups.ads.deny: unknown option (known: block, allow)'],
    [{ groups: { 'bad name': {} } }, 'blocking.groups["bad name"]: group names use letters, digits, _ . - (1–64 characters)'],
    [
      { groups: { ads: {} }, clients: { 'not-an-ip': ['ads'] } },
      "blocking.clients.not-an-ip: the key must be an IP address, a CIDR, 'id:<client-id>' or 'default'",
    ],
    [
      { groups: { ads: {} }, clients: { '10.0.0.0/33': ['ads'] } },
      "blocking.clients[\"10.0.0.0/33\"]: the key must be an IP address, a CIDR, 'id:<client-id>' or 'default'",
    ],
    [
      { groups: { ads: {} }, clients: { 'id:a b': ['ads'] } },
      'blocking.clients["id:a b"]: a client id uses letters, digits, . _ - (1–64 characters), as in /dns-query/<client-id>',
    ],
    [
      { groups: { ads: {} }, clients: { 'id:': ['ads'] } },
      'blocking.clients["id:"]: a client id uses letters, digits, . _ - (1–64 characters), as in /dns-query/<client-id>',
    ],
    [{ groups: { ads: {} }, clients: { 'id:kids': ['nope'] } }, 'blocking.clients["id:kids"][0]: unknown group (groups: ads)'],
    [{ groups: { ads: {} }, clients: { default: ['nope'] } }, 'blocking.clients.default[0]: unknown group (groups: ads)'],
    [{ groups: { ads: {} }, response: { mode: 'sinkhole' } }, 'blocking.response.mode: must be "nxdomain" or "nodata" or "zero" or "custom" or "refused"'],
    [{ groups: { ads: {} }, response: { mode: 'custom' } }, "blocking.response.ipv4: mode 'custom' needs at least one address in ipv4 or ipv6"],
    [{ groups: { ads: {} }, response: { ipv4: ['::1'] } }, 'blocking.response.ipv4[0]: must be an IPv4 address'],
    [{ groups: { ads: {} }, response: { ipv6: ['1.2.3.4'] } }, 'blocking.response.ipv6[0]: must be an IPv6 address'],
    [{ groups: { ads: {} }, response: { ttl: -1 } }, 'blocking.response.ttl: must be an integer in 0..604800'],
    [{ groups: { ads: {} }, refresh: { interval: 1000 } }, 'blocking.refresh.interval: must be 0 (never) or an integer in 60000..2592000000 (ms)'],
    [{ groups: { ads: {} }, refresh: { minRetainedRatio: 1.5 } }, 'blocking.refresh.minRetainedRatio: must be a number in 0..1'],
    [{ groups: { ads: {} }, refresh: { retry: 10 } }, 'blocking.refresh.retry: must be an integer in 1000..86400000'],
    [{ groups: { ads: {} }, build: 'gpu' }, 'blocking.build: must be "worker" or "inline"'],
    [{ groups: { ads: {} }, regex: { maxUnbounded: 9 } }, 'blocking.regex.maxUnbounded: must be an integer in 0..8'],
    [{ groups: { ads: {} }, cacheDir: '' }, 'blocking.cacheDir: must not be empty'],
    [
      { groups: { ads: {} }, typo: 1 },
      'blocking.typo: unknown option (known: groups, clients, response, cnameInspection, enabled, refresh, cacheDir, build, regex)',
    ],
    [
      {
        groups: {
          ads: {
            block: [
              { source: 'a.txt', name: 'x' },
              { source: 'b.txt', name: 'x' },
            ],
          },
        },
      },
      "blocking.groups.ads.block[1].name: list name 'x' is used twice: give one a distinct name",
    ],
  ])('%j → %s', (input, message) => {
    expect(errorOf(input).message).toBe(message);
  });

  it('an instance name prefixes the paths', () => {
    expect(() => blocking({ groups: { ads: { block: ['ftp://x'] } } }, { name: 'blocking-kids' })).toThrow(/^blocking-kids\.groups\.ads\.block\[0\]:/);
  });

  it('a config path given to the factory prefixes the paths instead (schema and cross-field errors), the name stays the instance', () => {
    const at = { name: 'blocking-kids', path: 'plugins[1].options' };
    expect(() => blocking({ groups: { ads: { block: ['ftp://x'] } } }, at)).toThrow(/^plugins\[1\]\.options\.groups\.ads\.block\[0\]: must be a path/);
    expect(() => blocking({ groups: { ads: { block: ['a.txt', { source: 'b.txt', name: 'x' }, { source: 'c.txt', name: 'x' }] } } }, at)).toThrow(
      "plugins[1].options.groups.ads.block[2].name: list name 'x' is used twice",
    );
    expect(() => blocking({ groups: { ads: {} }, clients: { default: ['kids'] } }, { path: 'plugins[1].options' })).toThrow(
      /^plugins\[1\]\.options\.clients\.default\[0\]: unknown group/,
    );
    const c = compileOptions(parseOptions(blockingOptionsSchema, { groups: { ads: { block: ['a.txt'] } } }, at.path), at, { HOME: '/h' });
    expect(c).toMatchObject({ instance: 'blocking-kids', path: 'plugins[1].options', lists: [{ path: 'plugins[1].options.groups.ads.block[0]' }] });
    expect(compile({ groups: { ads: { block: ['a.txt'] } } })).toMatchObject({
      instance: 'blocking',
      path: 'blocking',
      lists: [{ path: 'blocking.groups.ads.block[0]' }],
    });
  });

  it('applies defaults', () => {
    const o = compile({ groups: { ads: { block: ['https://lists.example/hosts.txt', './local.txt', { inline: 'x.example' }] } } });
    expect(o.response).toEqual({ mode: 'nxdomain', ttl: 10, ipv4: [], ipv6: [], ede: true });
    expect(o.refresh).toEqual({
      interval: 14_400_000,
      retry: 300_000,
      timeoutMs: 30_000,
      maxBytes: 67_108_864,
      maxEntries: 5_000_000,
      concurrency: 4,
      minRetainedRatio: 0.5,
    });
    expect(o.regex).toEqual({ maxLength: 256, maxUnbounded: 2 });
    expect(o.lists.map((l) => [l.kind, l.name, l.required, l.path])).toEqual([
      ['url', 'https://lists.example/hosts.txt', false, 'blocking.groups.ads.block[0]'],
      ['file', './local.txt', false, 'blocking.groups.ads.block[1]'],
      ['inline', 'ads.block[2]', false, 'blocking.groups.ads.block[2]'],
    ]);
    expect(o.lists[1]!.location).toBe(join(process.cwd(), 'local.txt'));
    expect(o.clients.defaultMask).toBe(1);
    expect([o.cnameInspection, o.enabled, o.build]).toEqual([true, true, 'worker']);
    expect(o.cacheDir).toBe('/home/heimdall/.cache/heimdall/lists');
  });

  it('cacheDir default: XDG_CACHE_HOME, then ~/.cache, never a per-process directory', () => {
    const g = { groups: { a: {} } };
    expect(compile(g, { XDG_CACHE_HOME: '/var/cache/me', HOME: '/home/x' }).cacheDir).toBe('/var/cache/me/heimdall/lists');
    expect(compile(g, { XDG_CACHE_HOME: 'relative', HOME: '/home/x' }).cacheDir).toBe('/home/x/.cache/heimdall/lists');
    expect(compile(g, { HOME: '/home/x' }).cacheDir).toBe(compile(g, { HOME: '/home/x' }).cacheDir);
    expect(compile(g, { HOME: '/' }).cacheDir).not.toContain(String(process.pid));
    expect(compile({ ...g, cacheDir: '/srv/lists' }).cacheDir).toBe('/srv/lists');
  });

  it('the same source in two groups gets group-prefixed names; clients compile to masks', () => {
    const o = compile({
      groups: { a: { block: ['https://l.example/x'] }, b: { block: ['https://l.example/x'], allow: [{ inline: 'ok.example', required: true }] } },
      clients: { default: ['a'], '10.0.0.0/8': ['a', 'b'], '192.0.2.7': ['b'], 'fd00::/8': [], 'id:kids-tablet': ['b'] },
    });
    expect(o.lists.map((l) => l.name)).toEqual(['a.block:https://l.example/x', 'b.block:https://l.example/x', 'b.allow[0]']);
    expect(o.lists[2]!.required).toBe(true);
    expect(o.clients.defaultMask).toBe(1);
    expect(o.clients.rules.map((r) => ('id' in r ? [r.id, r.mask] : [r.cidr.prefix, r.mask]))).toEqual([
      [8, 3],
      [32, 2],
      [8, 0],
      ['kids-tablet', 2],
    ]);
  });
});

describe('address patterns agree with net.isIP', () => {
  const v4 = new RegExp(IPV4_PATTERN);
  const v6 = new RegExp(IPV6_PATTERN);
  it('on generated addresses and near-misses', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 45 }), fc.stringMatching(/^[0-9a-f:.]{0,45}$/)), (s) => {
        expect(v4.test(s), s).toBe(isIP(s) === 4);
        expect(v6.test(s), s).toBe(isIP(s) === 6);
      }),
      { numRuns: 3000 },
    );
  });

  it('on compressed forms with an IPv4 tail (one colon is not a compression; at most 6 groups in all)', () => {
    for (const s of [
      ':0.0.0.0',
      ':1:0.0.0.0',
      '::0.0.0.0',
      '1::0.0.0.0',
      '1:2:3:4:5::1.2.3.4',
      '1::2:3:4:5:1.2.3.4',
      '1:2:3:4:5:6::1.2.3.4',
      '1::2:3:4:5:6:1.2.3.4',
      '1:2:3::4:5:6:1.2.3.4',
    ]) {
      expect(v6.test(s), s).toBe(isIP(s) === 6);
      expect(v4.test(s), s).toBe(false);
    }
  });
});
