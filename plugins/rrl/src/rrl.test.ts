import { Writable } from 'node:stream';
import { ADMIN_ACTIONS, type AdminActions, ConfigError, createResolver, definePlugin, RecordType, type Resolver } from '@heimdall/core';
import { encode } from '@heimdall/core/packet';
import { silentLogger } from '@heimdall/core/pipeline';
import { decodeResponse, FakeClock, query, soa, testResolver, udpQuery } from '@heimdall/testing';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyOther } from './accounts.js';
import { rrl } from './index.js';
import { ERROR, NODATA, NXDOMAIN, REFERRAL } from './options.js';

/**
 * Answers by name: `*.nx.example` NXDOMAIN (SOA nx.example), `*.fail.example`
 * SERVFAIL, `*.empty.example` NODATA (SOA empty.example), else one A record.
 */
const zone = definePlugin({
  name: 'zone',
  setup: () => ({
    middleware: () => (ctx) => {
      const n = ctx.query.qname.toLowerCase();
      if (n.endsWith('nx.example')) ctx.reply({ rcode: 3, aa: true, authorities: [soa('nx.example')] });
      else if (n.endsWith('fail.example')) ctx.servfail();
      else if (n.endsWith('empty.example')) ctx.reply({ aa: true, authorities: [soa('empty.example')] });
      else ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.1' }]);
    },
  }),
});

type Outcome = 'sent' | 'slipped' | 'dropped';

function setup(options: Parameters<typeof rrl>[0], logger?: pino.Logger) {
  const clock = new FakeClock();
  const r = testResolver([rrl(options), zone()], { clock, ...(logger ? { logger } : {}) });
  const ask = async (name: string, address = '198.51.100.7', transport: 'udp' | 'tcp' = 'udp'): Promise<Outcome> => {
    const res = await r.handle(query(name, 'A', { id: 3 }), { address, transport });
    if (res === null) return 'dropped';
    const m = decodeResponse(res);
    if (m.tc) {
      expect(m.answers.length + m.authorities.length).toBe(0);
      return 'slipped';
    }
    return 'sent';
  };
  const seq = async (n: number, name: (i: number) => string, address?: string) => {
    const out: Outcome[] = [];
    for (let i = 0; i < n; i++) out.push(await ask(name(i), address));
    return out;
  };
  const action = (name: string) =>
    r.container
      .getAll<AdminActions>(ADMIN_ACTIONS)
      .find((a) => a.plugin === 'rrl')!
      .actions.find((a) => a.name === name)!;
  return { r, clock, ask, seq, action };
}

const same = () => 'www.example.com';

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});

describe('rrl', () => {
  it('identical answers: `responsesPerSecond` pass, then every 2nd limited one is slipped (TC=1), the others dropped', async () => {
    const { seq } = setup({ responsesPerSecond: 5 });
    expect(await seq(11, same)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent', 'dropped', 'slipped', 'dropped', 'slipped', 'dropped', 'slipped']);
  });

  it('accounts per name and type, per client prefix (/24), case-insensitively', async () => {
    const { seq, ask } = setup({ responsesPerSecond: 2, slip: 0 });
    expect(await seq(3, same)).toEqual(['sent', 'sent', 'dropped']);
    expect(await ask('WWW.Example.COM')).toBe('dropped');
    expect(await seq(2, () => 'other.example.com')).toEqual(['sent', 'sent']);
    expect(await ask('www.example.com', '198.51.100.200')).toBe('dropped'); // same /24
    expect(await seq(2, same, '198.51.101.7')).toEqual(['sent', 'sent']);
    expect(await seq(3, same, '2001:db8:0:1::1')).toEqual(['sent', 'sent', 'dropped']);
    expect(await ask('www.example.com', '2001:db8:0:ff::1')).toBe('dropped'); // same /56
  });

  it('window: a flood builds a debt of at most window × rate, paid back at `rate` per second', async () => {
    const { seq, clock } = setup({ responsesPerSecond: 5, window: 15, slip: 0 });
    await seq(500, same);
    clock.advance(15_000);
    expect(await seq(1, same)).toEqual(['dropped']); // balance back to 0 only: the next one goes negative
    clock.advance(1_000);
    expect(await seq(5, same)).toEqual(['sent', 'sent', 'sent', 'sent', 'dropped']);
  });

  it('NXDOMAIN is accounted per zone (the SOA owner), whatever the name: random-subdomain floods are limited', async () => {
    const { seq } = setup({ responsesPerSecond: 100, nxdomainsPerSecond: 3, slip: 0 });
    expect(await seq(5, (i) => `r${i}.nx.example`)).toEqual(['sent', 'sent', 'sent', 'dropped', 'dropped']);
    expect(await seq(2, (i) => `x${i}.example.org`)).toEqual(['sent', 'sent']); // answers: another class
  });

  it('errors share one account per prefix (`errorsPerSecond`); NODATA per zone (`nodataPerSecond`)', async () => {
    const { seq } = setup({ responsesPerSecond: 100, errorsPerSecond: 2, nodataPerSecond: 1, slip: 0 });
    expect(await seq(3, (i) => `e${i}.fail.example`)).toEqual(['sent', 'sent', 'dropped']);
    expect(await seq(2, (i) => `n${i}.empty.example`)).toEqual(['sent', 'dropped']);
  });

  it('allPerSecond limits every response of a prefix; 0 turns a class limit off', async () => {
    const { seq } = setup({ responsesPerSecond: 0, allPerSecond: 4, slip: 1 });
    expect(await seq(6, (i) => `n${i}.example.com`)).toEqual(['sent', 'sent', 'sent', 'sent', 'slipped', 'slipped']);
  });

  it('slip 1 truncates every limited response; the TC=1 answer keeps the rcode and question', async () => {
    const { r, seq } = setup({ responsesPerSecond: 1, nxdomainsPerSecond: 1, slip: 1 });
    expect(await seq(3, same)).toEqual(['sent', 'slipped', 'slipped']);
    await r.handle(query('a.nx.example'), { address: '198.51.100.7', transport: 'udp' });
    const m = decodeResponse(await r.handle(query('B.nx.example', 'A', { id: 77 }), { address: '198.51.100.7', transport: 'udp' }));
    expect({ id: m.id, tc: m.tc, rcode: m.rcode, q: m.questions[0]!.name, records: m.answers.length + m.authorities.length }).toEqual({
      id: 77,
      tc: true,
      rcode: 3,
      q: 'B.nx.example',
      records: 0,
    });
  });

  it('logOnly sends everything, counts what it would limit and logs (rate-limited)', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    });
    const { seq, action } = setup({ responsesPerSecond: 2, logOnly: true }, pino({ level: 'info' }, sink));
    expect(await seq(6, same)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent', 'sent']);
    await seq(3, same, '192.0.2.1');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => l.plugin === 'rrl')).toEqual([
      expect.objectContaining({
        msg: 'would limit responses (log-only)',
        prefix: '198.51.100.0/24',
        class: 'answer',
        name: 'www.example.com',
        type: 1,
        rate: 2,
        otherAccountsNotLogged: 0,
      }),
    ]);
    expect(await action('stats').run({})).toMatchObject({ accounts: 2, answer_logged: 5, answer_dropped: 0, answer_slipped: 0 });
  });

  it('never limits exempt clients or TCP (by default)', async () => {
    const { seq, ask } = setup({ responsesPerSecond: 1, slip: 0, exemptClients: ['198.51.100.0/24', '2001:db8::/32'] });
    expect(await seq(5, same)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent']);
    expect(await seq(5, same, '2001:db8::5')).toEqual(['sent', 'sent', 'sent', 'sent', 'sent']);
    for (let i = 0; i < 5; i++) expect(await ask('www.example.com', '192.0.2.1', 'tcp')).toBe('sent');
    expect(await seq(2, same, '192.0.2.1')).toEqual(['sent', 'dropped']);
  });

  it('the `limited` action lists accounts over their rate now; `reset` forgets them', async () => {
    const { seq, action, clock } = setup({ responsesPerSecond: 2, nxdomainsPerSecond: 1 });
    const t0 = clock.now();
    await seq(4, same);
    await seq(3, (i) => `r${i}.nx.example`, '2001:db8::1');
    expect(await action('limited').run({})).toEqual([
      { prefix: '198.51.100.0/24', class: 'answer', name: 'www.example.com', type: 1, since: t0, limited: 2 },
      { prefix: '2001:db8::/56', class: 'nxdomain', name: 'nx.example', type: 0, since: t0, limited: 2 },
    ]);
    clock.advance(5000);
    expect(await action('limited').run({})).toEqual([]);
    await seq(4, same);
    expect(await action('reset').run({})).toEqual({ forgotten: 2 });
    expect(await seq(2, same)).toEqual(['sent', 'sent']);
  });

  it('names the config field of a bad option', () => {
    expect(() => rrl({ exemptClients: ['10.0.0.0/8', '10.0.0.1/40'] }, { path: 'plugins[3].options' })).toThrow(
      new ConfigError('plugins[3].options.exemptClients[1]', 'must be an IP address or a CIDR prefix (192.0.2.0/24, 2001:db8::/32)', '10.0.0.1/40'),
    );
    expect(() => rrl({ slip: 11 } as never, { path: 'p' })).toThrow(/^p\.slip: /);
    expect(() => rrl({ window: 0 } as never, { path: 'p' })).toThrow(/^p\.window: /);
    expect(rrl().options).toEqual({
      responsesPerSecond: 5,
      allPerSecond: 0,
      window: 15,
      slip: 2,
      ipv4Prefix: 24,
      ipv6Prefix: 56,
      exemptClients: [],
      logOnly: false,
      transports: ['udp'],
      maxTableSize: 20_000,
    });
  });
});

describe('rrl classification', () => {
  const base = { id: 1, qr: true, questions: [{ name: 'a.b.example', type: 1, class: 1 }] };
  const into = () => ({ cls: -1, name: '', qtype: 0 });
  it('NXDOMAIN by SOA owner, else the parent; NODATA by SOA owner; referral by NS owner; errors unnamed', () => {
    expect(classifyOther(encode({ ...base, rcode: 3, authorities: [soa('B.Example.')] }), 3, 'a.b.example', 1, into())).toEqual({
      cls: NXDOMAIN,
      name: 'b.example',
      qtype: 0,
    });
    expect(classifyOther(encode({ ...base, rcode: 3 }), 3, 'a.b.example', 1, into())).toEqual({ cls: NXDOMAIN, name: 'b.example', qtype: 0 });
    expect(classifyOther(encode({ ...base, aa: true, authorities: [soa('example')] }), 0, 'a.b.example', 1, into())).toEqual({
      cls: NODATA,
      name: 'example',
      qtype: 0,
    });
    expect(classifyOther(encode({ ...base }), 0, 'a.b.example', 28, into())).toEqual({ cls: NODATA, name: 'a.b.example', qtype: 28 });
    const ns = { name: 'b.example', type: RecordType.NS, ttl: 300, data: 'ns1.b.example' };
    expect(classifyOther(encode({ ...base, authorities: [ns] }), 0, 'a.b.example', 1, into())).toEqual({ cls: REFERRAL, name: 'b.example', qtype: 0 });
    expect(classifyOther(encode({ ...base, rcode: 2 }), 2, 'a.b.example', 1, into())).toEqual({ cls: ERROR, name: '', qtype: 0 });
    expect(classifyOther(encode({ ...base, rcode: 5 }), 5, 'a.b.example', 1, into())).toEqual({ cls: ERROR, name: '', qtype: 0 });
  });
});

describe('rrl on real sockets', () => {
  it('a flood of one answer from 127.0.0.1 is limited (drops and TC=1 slips); 127.0.0.2 is served in full', async () => {
    started = createResolver({
      plugins: [rrl({ responsesPerSecond: 5, ipv4Prefix: 32 }), zone()],
      listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }],
      logger: silentLogger(),
    });
    await started.start();
    const port = started.addresses()[0]!.port;
    const send = (localAddress: string, n: number) =>
      Promise.allSettled(Array.from({ length: n }, (_, i) => udpQuery(port, query('www.example.com', 'A', { id: i + 1 }), { localAddress, timeoutMs: 700 })));
    const flood = await send('127.0.0.1', 60);
    const full = flood.filter((r) => r.status === 'fulfilled' && !decodeResponse(r.value).tc).length;
    const slipped = flood.filter((r) => r.status === 'fulfilled' && decodeResponse(r.value).tc).length;
    const lost = flood.filter((r) => r.status === 'rejected').length;
    expect(full).toBeGreaterThanOrEqual(5);
    expect(full).toBeLessThanOrEqual(10);
    expect(slipped).toBeGreaterThanOrEqual(20); // every 2nd limited response
    expect(lost).toBeGreaterThanOrEqual(20);
    const other = await send('127.0.0.2', 5);
    expect(other.map((r) => r.status === 'fulfilled' && !decodeResponse(r.value).tc && decodeResponse(r.value).answers.length === 1)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
  });
});
