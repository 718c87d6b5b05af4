import { Writable } from 'node:stream';
import { ConfigError, createResolver, definePlugin, EdeCode, RecordType, type Resolver } from '@heimdall/core';
import { CORE_METRICS } from '@heimdall/core/di';
import { type CoreMetrics, silentLogger } from '@heimdall/core/pipeline';
import { decodeResponse, expectEde, FakeClock, query, testResolver, udpQuery } from '@heimdall/testing';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { acl } from './index.js';

const answer = definePlugin({
  name: 'answer',
  setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.1' }]) }),
});

type Transport = 'udp' | 'tcp' | 'tls' | 'https' | 'internal';

function setup(options: Parameters<typeof acl>[0], logger?: pino.Logger, clock = new FakeClock()) {
  const r = testResolver([acl(options), answer()], { clock, ...(logger ? { logger } : {}) });
  const ask = async (address: string, transport: Transport = 'udp', name = 'www.example.com'): Promise<string> => {
    const res = await r.handle(query(name, 'A', { id: 9, edns: true }), { address, transport });
    if (res === null) return 'drop';
    const m = decodeResponse(res);
    if (m.rcode === 5) {
      expectEde(res, EdeCode.PROHIBITED);
      return 'refuse';
    }
    expect(m.answers).toHaveLength(1);
    return 'allow';
  };
  return { r, ask, clock };
}

function logSink() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});

describe('acl', () => {
  it('first matching rule wins; no match allows (CoreDNS semantics)', async () => {
    const { ask } = setup({
      rules: [
        { action: 'allow', from: ['192.0.2.7'] },
        { action: 'drop', from: ['192.0.2.0/24'] },
        { action: 'refuse', from: ['198.51.100.0/24', '2001:db8::/32'] },
        { action: 'allow', from: ['198.51.100.0/24'] }, // shadowed by the rule above
      ],
    });
    expect(await ask('192.0.2.7')).toBe('allow');
    expect(await ask('192.0.2.8')).toBe('drop');
    expect(await ask('198.51.100.1')).toBe('refuse');
    expect(await ask('2001:db8:1::5')).toBe('refuse');
    expect(await ask('::ffff:198.51.100.1')).toBe('refuse'); // IPv4-mapped matches IPv4 rules
    expect(await ask('203.0.113.1')).toBe('allow');
    expect(await ask('2001:db9::1')).toBe('allow');
  });

  it('refuse answers REFUSED with EDE 18 and the question echoed; drop makes the resolver return null and count dropped{reason=policy}', async () => {
    const { r } = setup({
      rules: [
        { action: 'refuse', from: ['192.0.2.0/24'] },
        { action: 'drop', from: ['198.51.100.0/24'] },
      ],
    });
    const res = await r.handle(query('Www.Example.com', 'AAAA', { id: 321, edns: true }), { address: '192.0.2.1' });
    const m = expectEde(res, EdeCode.PROHIBITED);
    expect({ id: m.id, rcode: m.rcode, q: m.questions, an: m.answers.length }).toEqual({
      id: 321,
      rcode: 5,
      q: [{ name: 'Www.Example.com', type: RecordType.AAAA, class: 1 }],
      an: 0,
    });
    expect(await r.handle(query('a.example'), { address: '198.51.100.1' })).toBeNull();
    expect(await r.handle(query('a.example'), { address: '198.51.100.2' })).toBeNull();
    expect(r.get<CoreMetrics>(CORE_METRICS).dropped.policy).toBe(2);
  });

  it('transports and names narrow a rule; names match the name and below, case-insensitive', async () => {
    const { ask } = setup({
      rules: [
        { action: 'refuse', transports: ['udp'], names: ['internal.example.', 'Corp.Example'] },
        { action: 'drop', from: ['*'], transports: ['tcp'], names: ['.'] },
      ],
    });
    expect(await ask('192.0.2.1', 'udp', 'internal.example')).toBe('refuse');
    expect(await ask('192.0.2.1', 'udp', 'DB.Internal.Example')).toBe('refuse');
    expect(await ask('192.0.2.1', 'udp', 'x.corp.example')).toBe('refuse');
    expect(await ask('192.0.2.1', 'udp', 'notinternal.example')).toBe('allow');
    expect(await ask('192.0.2.1', 'udp', 'www.example.com')).toBe('allow');
    expect(await ask('192.0.2.1', 'internal', 'internal.example')).toBe('allow');
    expect(await ask('192.0.2.1', 'tcp', 'anything.example')).toBe('drop');
  });

  it('localOnly allows loopback and private networks and refuses everyone else', async () => {
    const { ask } = setup({ preset: 'localOnly' });
    for (const a of [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.254',
      '192.168.1.20',
      '100.64.0.1',
      '100.127.255.254',
      '169.254.1.1',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      '::ffff:192.168.1.2',
    ]) {
      expect(await ask(a), a).toBe('allow');
    }
    for (const a of ['203.0.113.5', '8.8.8.8', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2001:db8::1', '::ffff:203.0.113.5', '11.0.0.1']) {
      expect(await ask(a), a).toBe('refuse');
    }
  });

  it('decides for the queries core answers itself too: CHAOS, AXFR and ANY from an outside client are refused by the acl', async () => {
    const { r } = setup({ preset: 'localOnly' });
    const asks = [
      query('version.bind', 'TXT', { class: 'CH', edns: true }),
      query('example.com', 'AXFR', { edns: true }),
      query('example.com', 'ANY', { edns: true }),
    ];
    for (const q of asks) {
      const outside = (await r.handle(q, { address: '203.0.113.5' }))!;
      expect(decodeResponse(outside).rcode).toBe(5);
      expectEde(outside, EdeCode.PROHIBITED); // the acl's refusal, not core's
      // An inside client gets core's own answer (no EDE at all: core's REFUSED for AXFR carries none).
      const inside = (await r.handle(q, { address: '192.168.1.20' }))!;
      expect(() => expectEde(inside, EdeCode.PROHIBITED)).toThrow();
    }
  });

  it('localOnly comes after the rules: a rule can open one public network or close a private one', async () => {
    const { ask } = setup({
      preset: 'localOnly',
      rules: [
        { action: 'allow', from: ['203.0.113.0/24'] },
        { action: 'drop', from: ['10.9.0.0/16'] },
      ],
    });
    expect(await ask('203.0.113.5')).toBe('allow');
    expect(await ask('10.9.1.1')).toBe('drop');
    expect(await ask('10.8.1.1')).toBe('allow');
    expect(await ask('198.51.100.1')).toBe('refuse');
  });

  it('logs once at start that it is not an open resolver; refusals at most one line a minute', async () => {
    const { lines, logger } = logSink();
    const clock = new FakeClock();
    const { r, ask } = setup({ preset: 'localOnly' }, logger, clock);
    started = r;
    await r.start();
    for (let i = 0; i < 20; i++) await ask(`203.0.113.${i}`);
    clock.advance(60_000);
    await ask('198.51.100.9');
    await new Promise((resolve) => setImmediate(resolve));
    const mine = lines.filter((l) => l.plugin === 'acl');
    expect(mine.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^not an open resolver: only clients on loopback and private networks .* set openResolver: true \(--open-resolver\)/),
      'refused a query from outside the local networks (not an open resolver)',
      'refused a query from outside the local networks (not an open resolver)',
    ]);
    expect(mine[1]).toMatchObject({ client: '203.0.113.0', action: 'refuse', rule: 'localOnly', othersNotLogged: 0 });
    expect(mine[2]).toMatchObject({ client: '198.51.100.9', othersNotLogged: 19 });
  });

  it('announce: false refuses the same way without the start line (cluster workers but the first)', async () => {
    const { lines, logger } = logSink();
    const { r, ask } = setup({ preset: 'localOnly', announce: false }, logger, new FakeClock());
    started = r;
    await r.start();
    expect(await ask('203.0.113.1')).toBe('refuse');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => l.plugin === 'acl').map((l) => l.msg)).toEqual(['refused a query from outside the local networks (not an open resolver)']);
  });

  it('counts decisions in heimdall_acl_queries_total{action}', async () => {
    const { r, ask } = setup({
      rules: [
        { action: 'refuse', from: ['192.0.2.0/24'] },
        { action: 'drop', from: ['198.51.100.0/24'] },
      ],
    });
    await ask('192.0.2.1');
    await ask('198.51.100.1');
    await ask('198.51.100.2');
    await ask('203.0.113.1');
    const text = await (r.container.get(Symbol.for('heimdall.metrics')) as import('@heimdall/core').Registry).metrics();
    expect(text).toContain('heimdall_acl_queries_total{action="allow"} 1');
    expect(text).toContain('heimdall_acl_queries_total{action="refuse"} 1');
    expect(text).toContain('heimdall_acl_queries_total{action="drop"} 2');
  });

  it('names the config field of a bad option', () => {
    const error = (o: unknown) => {
      try {
        acl(o as never, { path: 'plugins[0].options' });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(error({ rules: [{ action: 'allow', from: ['10.0.0.0/8', '10.0.0.0/33'] }] })).toBe(
      'plugins[0].options.rules[0].from[1]: must be an IP address, a CIDR prefix (192.0.2.0/24, 2001:db8::/32) or *',
    );
    expect(error({ rules: [{ action: 'block' }] })).toBe('plugins[0].options.rules[0].action: must be "allow" or "refuse" or "drop"');
    expect(error({ rules: [{ action: 'allow', names: ['a..b'] }] })).toBe('plugins[0].options.rules[0].names[0]: must be a domain name (or . for every name)');
    expect(error({ rules: [{ action: 'allow', net: [] }] })).toMatch(/^plugins\[0\]\.options\.rules\[0\]/);
    expect(error({ preset: 'open' })).toBe('plugins[0].options.preset: must be "none" or "localOnly"');
    expect(acl().options).toEqual({ rules: [], preset: 'none', announce: true });
  });
});

describe('acl on a real socket', () => {
  it('localOnly answers a loopback client over UDP', async () => {
    started = createResolver({
      plugins: [acl({ preset: 'localOnly' }), answer()],
      listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }],
      logger: silentLogger(),
    });
    await started.start();
    const res = await udpQuery(started.addresses()[0]!.port, query('a.example', 'A', { id: 5 }), { localAddress: '127.0.0.2' });
    expect(decodeResponse(res).answers).toHaveLength(1);
  });
});
