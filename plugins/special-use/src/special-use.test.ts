import { ConfigError, createResolver, type HeimdallPlugin, parseOptions, RecordType, type Resolver } from '@heimdall/core';
import { decode, encode, type Message } from '@heimdall/core/packet';
import { afterEach, describe, expect, it } from 'vitest';
import { specialUse } from './index.js';
import { specialUseOptionsSchema } from './options.js';
import { zoneTable } from './zones.js';

const table = (input: Parameters<typeof specialUse>[0] = {}) => zoneTable(parseOptions(specialUseOptionsSchema, input, 'special-use'));

// Tests go through a real resolver (core's handle()), with a fallback
// plugin behind special-use that answers A 192.0.2.99, so "passed through"
// is visible as that answer.
const fallback: HeimdallPlugin = {
  name: 'fallback',
  middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.99' }]),
};

let resolver: Resolver | undefined;
afterEach(async () => {
  await resolver?.stop();
  resolver = undefined;
});

async function ask(name: string, type: number = RecordType.A, options: Parameters<typeof specialUse>[0] = {}, qclass = 1): Promise<Message> {
  resolver ??= createResolver({ plugins: [specialUse(options), fallback] });
  const q = encode({ id: 7, rd: true, questions: [{ name, type, class: qclass }] });
  const res = await resolver.handle(q);
  expect(res).not.toBeNull();
  return decode(res!);
}

const passedThrough = (m: Message): boolean => m.rcode === 0 && m.answers.length === 1 && m.answers[0]!.data === '192.0.2.99';

describe('special-use plugin', () => {
  it('answers localhost and names below it with loopback addresses', async () => {
    const a = await ask('localhost');
    expect(a.rcode).toBe(0);
    expect(a.aa).toBe(true);
    expect(a.answers).toEqual([expect.objectContaining({ name: 'localhost', type: RecordType.A, data: '127.0.0.1', ttl: 3600 })]);
    const aaaa = await ask('foo.bar.LocalHost', RecordType.AAAA);
    expect(aaaa.answers).toEqual([expect.objectContaining({ name: 'foo.bar.LocalHost', type: RecordType.AAAA, data: '::1' })]);
    const mx = await ask('localhost', RecordType.MX);
    expect(mx.rcode).toBe(0);
    expect(mx.answers).toHaveLength(0);
    expect(mx.authorities[0]?.type).toBe(RecordType.SOA);
  });

  it.each(['invalid', 'foo.invalid', 'printer.local', 'local', 'x.test', 'abc.onion', 'router.home.arpa', 'Printer.LOCAL', 'x.TeSt', 'ABC.Onion'])(
    'answers %s with NXDOMAIN and an SOA',
    async (name) => {
      const m = await ask(name);
      expect(m.rcode).toBe(3);
      expect(m.answers).toHaveLength(0);
      expect(m.authorities).toHaveLength(1);
      expect(m.authorities[0]).toMatchObject({ type: RecordType.SOA, ttl: 3600 });
      expect((m.authorities[0]!.data as { minimum: number }).minimum).toBe(3600);
    },
  );

  it.each([
    '5.1.168.192.in-addr.arpa',
    '1.0.0.10.in-addr.arpa',
    '1.0.16.172.in-addr.arpa',
    '1.0.31.172.in-addr.arpa',
    '2.0.0.127.in-addr.arpa',
    '1.2.254.169.in-addr.arpa',
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa',
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa',
  ])('answers the private reverse name %s with NXDOMAIN', async (name) => {
    const m = await ask(name, RecordType.PTR);
    expect(m.rcode).toBe(3);
    expect(m.authorities[0]?.type).toBe(RecordType.SOA);
  });

  it('answers the loopback PTRs with localhost', async () => {
    const v4 = await ask('1.0.0.127.in-addr.arpa', RecordType.PTR);
    expect(v4.answers).toEqual([expect.objectContaining({ type: RecordType.PTR, data: 'localhost' })]);
    const v6 = await ask(`1.${'0.'.repeat(31)}ip6.arpa`, RecordType.PTR);
    expect(v6.answers).toEqual([expect.objectContaining({ type: RecordType.PTR, data: 'localhost' })]);
    const a = await ask('1.0.0.127.in-addr.arpa', RecordType.A);
    expect(a.rcode).toBe(0);
    expect(a.answers).toHaveLength(0);
  });

  it('answers a locally-served zone apex with its SOA (not NXDOMAIN)', async () => {
    const soa = await ask('168.192.in-addr.arpa', RecordType.SOA);
    expect(soa.rcode).toBe(0);
    expect(soa.answers[0]?.type).toBe(RecordType.SOA);
    const ns = await ask('10.in-addr.arpa', RecordType.NS);
    expect(ns.rcode).toBe(0);
    expect(ns.answers).toHaveLength(0);
  });

  it.each([
    'example.com',
    'www.example.org',
    'localhost.example.com',
    'invalid.example',
    'local.example.net',
    '8.8.8.8.in-addr.arpa',
    '1.0.15.172.in-addr.arpa',
    '1.0.32.172.in-addr.arpa',
    '172.in-addr.arpa',
    'arpa',
    '',
  ])('passes %s through', async (name) => {
    expect(passedThrough(await ask(name))).toBe(true);
  });

  it.each(['www.example', 'a.info', 'b.INFO', 'c.tesT.example', 'd.locals', 'e.onio'])(
    'passes %s through (an ordinary TLD, some of the same length as a special one)',
    async (name) => {
      expect(passedThrough(await ask(name))).toBe(true);
    },
  );

  it('passes other classes through', async () => {
    // (core answers CHAOS itself, before the chain: HESIOD stands for "another class")
    expect(passedThrough(await ask('localhost', RecordType.A, {}, 4 /* HS */))).toBe(true);
    expect(passedThrough(await ask('foo.invalid', RecordType.A, {}, 4 /* HS */))).toBe(true);
  });

  it('honours switches, extra zones and exclusions', async () => {
    expect(passedThrough(await ask('printer.local', RecordType.A, { local: false }))).toBe(true);
    await resolver!.stop();
    resolver = undefined;
    expect(passedThrough(await ask('5.1.168.192.in-addr.arpa', RecordType.PTR, { exclude: ['168.192.in-addr.arpa.'] }))).toBe(true);
    expect((await ask('1.0.0.10.in-addr.arpa', RecordType.PTR)).rcode).toBe(3);
    await resolver!.stop();
    resolver = undefined;
    expect((await ask('nas.LAN', RecordType.A, { appendixG: true })).rcode).toBe(3);
    await resolver!.stop();
    resolver = undefined;
    expect((await ask('a.b.Corp.Example', RecordType.A, { zones: ['corp.example'], ttl: 60, negativeTtl: 30 })).authorities[0]).toMatchObject({
      name: 'corp.example',
      ttl: 30,
    });
    expect((await ask('localhost')).answers[0]?.ttl).toBe(60);
  });

  it('answers synchronously (no Promise on the special-use path)', () => {
    const r = createResolver({ plugins: [specialUse(), fallback] });
    const q = encode({ id: 9, rd: true, questions: [{ name: 'foo.invalid', type: RecordType.A, class: 1 }] });
    const out = r.process(q, { address: '127.0.0.1', port: 1, family: 4, transport: 'udp' });
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(decode(out as Buffer).rcode).toBe(3);
  });

  it('rejects bad options with the field named', () => {
    expect(() => specialUse({ ttl: -1 })).toThrow(ConfigError);
    expect(() => specialUse({ ttl: -1 })).toThrow('special-use.ttl: must be an integer in 0..2147483647');
    expect(() => specialUse({ negativeTtl: 2 ** 31 })).toThrow(/^special-use\.negativeTtl: must be an integer in 0\.\.2147483647/);
    expect(() => specialUse({ zones: ['ok.example', 'bad..name'] })).toThrow(/^special-use\.zones\[1\]: must be a non-root domain name/);
    expect(() => specialUse({ exclude: [`${'a'.repeat(64)}.example`] })).toThrow(/^special-use\.exclude\[0\]: must be a non-root domain name/);
    expect(() => specialUse({ zones: [`${'a.'.repeat(126)}ab`] })).toThrow(/^special-use\.zones\[0\]/);
    expect(() => specialUse({ zones: ['.'] })).toThrow(/^special-use\.zones\[0\]/);
    expect(() => specialUse({ zones: ['a b.example'] })).toThrow(/^special-use\.zones\[0\]/);
    expect(() => specialUse({ localhost: 'yes' as unknown as boolean })).toThrow(/^special-use\.localhost: must be true or false/);
    expect(() => specialUse({ bogus: 1 } as never)).toThrow(/^special-use\.bogus: unknown option/);
    expect(() => specialUse({}, { path: 'plugins[0].options' })).not.toThrow();
    expect(() => specialUse({ ttl: 'x' as never }, { path: 'plugins[0].options' })).toThrow(/^plugins\[0\]\.options\.ttl:/);
  });

  it('accepts the longest names and a trailing dot; defaults are filled in', () => {
    const longest = `${'a.'.repeat(126)}a`; // 253 characters
    expect(table({ zones: [`${longest}.`, 'Corp.Example.'] }).has(longest)).toBe(true);
    expect(table({ zones: ['Corp.Example.'] }).get('corp.example')?.name).toBe('corp.example');
    expect(specialUse().options).toEqual({
      localhost: true,
      invalid: true,
      test: true,
      local: true,
      onion: true,
      homeArpa: true,
      reverse: true,
      appendixG: false,
      zones: [],
      exclude: [],
      ttl: 3600,
      negativeTtl: 3600,
    });
  });

  it('builds the RFC 6303 zone table', () => {
    const t = table();
    for (let i = 16; i <= 31; i++) expect(t.has(`${i}.172.in-addr.arpa`)).toBe(true);
    expect(t.has('15.172.in-addr.arpa')).toBe(false);
    expect(t.has('c.f.ip6.arpa')).toBe(true);
    expect(t.has('b.e.f.ip6.arpa')).toBe(true);
    expect(t.has('home.arpa')).toBe(true);
    expect(table({ reverse: false }).has('10.in-addr.arpa')).toBe(false);
    expect(table({ localhost: false, invalid: false, test: false, local: false, onion: false, homeArpa: false, reverse: false }).size).toBe(0);
  });
});
