import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decode } from './decode.js';
import { encode } from './encode.js';
import type { Message } from './message.js';
import { OptionCode } from './optioncodes.js';
import { hex } from './packet.test-helpers.js';
import { MessageReader } from './reader.js';
import { truncateForUdp } from './truncate.js';
import { RecordType } from './types.js';

const dir = new URL('./fixtures/', import.meta.url);
const fixtures = new Map<string, Buffer>(
  readdirSync(dir)
    .filter((f) => f.endsWith('.hex'))
    .map((f) => [f.slice(0, -4), hex(readFileSync(new URL(f, dir), 'utf8'))]),
);
const fx = (name: string): Buffer => {
  const b = fixtures.get(name);
  if (!b) throw new Error(`missing fixture ${name}`);
  return b;
};

/** Checks the lazy reader against the full decoder, field by field. */
function readerAgrees(bytes: Buffer, m: Message): void {
  const r = new MessageReader(bytes);
  expect([r.id, r.qr, r.opcode, r.aa, r.tc, r.rd, r.ra, r.z, r.ad, r.cd, r.fullRcode]).toEqual([
    m.id,
    m.qr,
    m.opcode,
    m.aa,
    m.tc,
    m.rd,
    m.ra,
    m.z,
    m.ad,
    m.cd,
    m.rcode,
  ]);
  if (m.questions.length > 0) {
    expect([r.qname, r.qtype, r.qclass]).toEqual([m.questions[0].name, m.questions[0].type, m.questions[0].class]);
    const key = r.cacheKey();
    const lower = new MessageReader(encode({ questions: [{ ...m.questions[0], name: m.questions[0].name.toLowerCase() }] }));
    expect(key).toBe(lower.cacheKey());
  }
  const views = [...r.records()].filter((v) => v.type !== RecordType.OPT);
  const records = [...m.answers, ...m.authorities, ...m.additionals];
  expect(views.length).toBe(records.length);
  views.forEach((v, i) => {
    expect({ name: v.name, type: v.type, class: v.class, ttl: v.ttl, data: v.data() }).toEqual(records[i]);
    expect(bytes.readUInt32BE(v.ttlOffset)).toBe(v.ttl);
  });
  expect(r.edns() ?? undefined).toEqual(m.edns);
}

describe('real-world fixtures', () => {
  it('has the captured files', () => {
    expect(fixtures.size).toBeGreaterThanOrEqual(30);
  });

  for (const [name, bytes] of fixtures) {
    it(`${name}: decodes, the reader agrees, re-encodes to the same bytes`, () => {
      const m = decode(bytes);
      readerAgrees(bytes, m);
      const again = encode(m);
      expect(again.toString('hex')).toBe(bytes.toString('hex'));
      expect(decode(again)).toEqual(m);
    });
  }

  it('unbound: two A records, compressed owner names, EDNS echoed', () => {
    const m = decode(fx('unbound-a-www'));
    expect(m.qr && m.aa && m.rd && m.ra).toBe(true);
    expect(m.answers.map((r) => [r.name, r.ttl, r.data]).sort()).toEqual([
      ['www.example.test', 300, '192.0.2.1'],
      ['www.example.test', 300, '192.0.2.2'],
    ]);
    expect(m.edns?.udpPayloadSize).toBe(1232);
  });

  it('unbound: 0x20 letter case is preserved through pointers', () => {
    const m = decode(fx('unbound-mixed-case'));
    expect(m.questions[0].name).toBe('WwW.ExAmPlE.TeSt');
    expect(m.answers.map((r) => r.name)).toEqual(['WwW.ExAmPlE.TeSt', 'WwW.ExAmPlE.TeSt']);
    expect(new MessageReader(fx('unbound-mixed-case')).cacheKey()).toBe(new MessageReader(fx('unbound-a-www')).cacheKey());
  });

  it('unbound: NXDOMAIN and NODATA carry the SOA', () => {
    for (const [file, rcode] of [
      ['unbound-nxdomain', 3],
      ['unbound-nodata', 0],
    ] as const) {
      const m = decode(fx(file));
      expect(m.rcode).toBe(rcode);
      expect(m.answers).toEqual([]);
      expect(m.authorities[0]).toMatchObject({ name: 'example.test', type: RecordType.SOA, data: { minimum: 300, serial: 2024010101 } });
    }
  });

  it('unbound: HTTPS ServiceMode and AliasMode, SVCB mandatory keys', () => {
    const https = decode(fx('unbound-https')).answers.map((r) => r.data);
    expect(https).toContainEqual({ priority: 0, target: 'www.example.test', params: {} });
    expect(https).toContainEqual({
      priority: 1,
      target: '',
      params: {
        alpn: ['h2', 'h3'],
        port: 8443,
        ipv4hint: ['192.0.2.1', '192.0.2.2'],
        ech: Buffer.from('AEX+DQBBpQAgACD/rlCjxLyd8Q==', 'base64'),
        ipv6hint: ['2001:db8::1'],
      },
    });
    expect(decode(fx('unbound-svcb')).answers[0].data).toEqual({
      priority: 1,
      target: 'dns.example.test',
      params: { mandatory: [1, 3], alpn: ['dot', 'doq'], port: 853 },
    });
  });

  it('unbound: TXT strings are bytes, several per record', () => {
    const [rr] = decode(fx('unbound-txt-multi')).answers;
    expect((rr.data as Buffer[]).map((s) => s.toString('utf8'))).toEqual(['first string', 'second; string', 'café']);
  });

  it('unbound: DNSSEC types', () => {
    expect(decode(fx('unbound-nsec')).answers[0].data).toEqual({
      nextDomain: 'alias.example.test',
      types: [1, 2, 6, 15, 16, 28, 46, 47, 48, 257],
    });
    expect(decode(fx('unbound-rrsig')).answers[0].data).toMatchObject({
      typeCovered: RecordType.SOA,
      algorithm: 13,
      labels: 2,
      originalTtl: 3600,
      expiration: Date.UTC(2030, 0, 1) / 1000,
      inception: Date.UTC(2024, 0, 1) / 1000,
      keyTag: 12345,
      signerName: 'example.test',
    });
    expect(decode(fx('unbound-nsec3')).answers[0].data).toMatchObject({ hashAlgorithm: 1, flags: 1, iterations: 12, types: [1, 46] });
  });

  it('unbound: truncated answer has TC and no records; the reader sees the same', () => {
    const m = decode(fx('unbound-txt-truncated'));
    expect(m.tc).toBe(true);
    expect(m.answers).toEqual([]);
    expect(new MessageReader(fx('unbound-txt-truncated')).tc).toBe(true);
  });

  it('dig and kdig queries: cookie, NSID, client subnet, padding, DO', () => {
    const dig = decode(fx('dig-query-a'));
    expect(dig.ad).toBe(true);
    expect(dig.edns?.options).toEqual([{ code: OptionCode.COOKIE, client: expect.any(Buffer) }]);
    const dnssec = new MessageReader(fx('dig-query-dnssec-ecs'));
    expect(dnssec.dnssecOk).toBe(true);
    expect(dnssec.edns()?.options).toEqual([
      { code: OptionCode.NSID, data: Buffer.alloc(0) },
      { code: OptionCode.CLIENT_SUBNET, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, address: '198.51.100.0' },
      { code: OptionCode.COOKIE, client: expect.any(Buffer) },
    ]);
    const kdig = decode(fx('kdig-query-padding-ecs6'));
    expect(kdig.edns?.options).toContainEqual({
      code: OptionCode.CLIENT_SUBNET,
      family: 2,
      sourcePrefixLength: 48,
      scopePrefixLength: 0,
      address: '2001:db8:1234::',
    });
    expect(kdig.edns?.options).toContainEqual({ code: OptionCode.PADDING, length: expect.any(Number) });
    const noedns = new MessageReader(fx('kdig-query-noedns'));
    expect(noedns.edns()).toBeNull();
    expect(noedns.maxUdpPayload).toBe(512);
    expect(noedns.qname).toBe('example.com'); // kdig lowercases the name it is given
  });

  it('truncateForUdp on the 945-byte TXT answer keeps whole records and the OPT', () => {
    const full = fx('unbound-txt-big');
    expect(full.length).toBeGreaterThan(512);
    for (const size of [512, 600, 800, 944]) {
      const t = truncateForUdp(full, size);
      expect(t.length).toBeLessThanOrEqual(size);
      const m = decode(t);
      expect(m.tc).toBe(true);
      expect(m.edns?.udpPayloadSize).toBe(1232);
      const original = decode(full).answers;
      expect(m.answers).toEqual(original.slice(0, m.answers.length));
      expect(m.answers.length).toBeLessThan(original.length);
    }
    expect(truncateForUdp(full, 945)).toBe(full);
  });
});
