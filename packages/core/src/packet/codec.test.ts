import { describe, expect, it } from 'vitest';
import { decode } from './decode.js';
import { EdeCode } from './edecodes.js';
import { encode, encodingLength } from './encode.js';
import { PacketError } from './errors.js';
import type { MessageInit, ResourceRecordInit } from './message.js';
import { OptionCode } from './optioncodes.js';
import { hex, normalize, roundTrip, withRecord } from './packet.test-helpers.js';
import { Rcode } from './rcodes.js';
import { MessageReader } from './reader.js';
import { RecordType } from './types.js';

const b = (h: string) => Buffer.from(h, 'hex');

/** One record of every supported type (and a few unknown ones), as the decoder returns them. */
export const SAMPLE_RECORDS: ResourceRecordInit[] = [
  { name: 'example.com', type: RecordType.A, ttl: 300, data: '192.0.2.1' },
  { name: 'example.com', type: RecordType.A, ttl: 0, data: '0.0.0.0' },
  { name: 'example.com', type: RecordType.A, ttl: 0x7fffffff, data: '255.255.255.255' },
  { name: 'example.com', type: RecordType.AAAA, ttl: 300, data: '2001:db8::1' },
  { name: 'example.com', type: RecordType.AAAA, ttl: 300, data: '::' },
  { name: 'example.com', type: RecordType.AAAA, ttl: 300, data: '::ffff:c000:201' },
  { name: 'example.com', type: RecordType.AAAA, ttl: 300, data: 'fe80:0:0:1::1' },
  { name: 'example.com', type: RecordType.NS, ttl: 300, data: 'ns1.example.com' },
  { name: 'www.example.com', type: RecordType.CNAME, ttl: 300, data: 'example.com' },
  { name: 'a.example.com', type: RecordType.DNAME, ttl: 300, data: 'example.net' },
  { name: '1.2.0.192.in-addr.arpa', type: RecordType.PTR, ttl: 300, data: 'host.example.com' },
  { name: 'example.com', type: RecordType.MX, ttl: 300, data: { preference: 10, exchange: 'mail.example.com' } },
  { name: 'example.com', type: RecordType.MX, ttl: 300, data: { preference: 0, exchange: '' } },
  { name: 'example.com', type: RecordType.TXT, ttl: 300, data: [Buffer.from('v=spf1 -all')] },
  { name: 'example.com', type: RecordType.TXT, ttl: 300, data: [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(255, 0x41)] },
  {
    name: 'example.com',
    type: RecordType.SOA,
    ttl: 3600,
    data: { mname: 'ns1.example.com', rname: 'host\\.master.example.com', serial: 0xffffffff, refresh: 7200, retry: 3600, expire: 1209600, minimum: 300 },
  },
  { name: '_sip._udp.example.com', type: RecordType.SRV, ttl: 60, data: { priority: 10, weight: 60, port: 5060, target: 'sip.example.com' } },
  { name: 'example.com', type: RecordType.CAA, ttl: 60, data: { flags: 128, tag: 'issue', value: 'letsencrypt.org; validationmethods=dns-01' } },
  { name: 'example.com', type: RecordType.CAA, ttl: 60, data: { flags: 0, tag: 'iodef', value: '' } },
  {
    name: 'example.com',
    type: RecordType.NAPTR,
    ttl: 60,
    data: { order: 100, preference: 10, flags: 'U', services: 'E2U+sip', regexp: '!^.*$!sip:info@example.com!', replacement: '' },
  },
  { name: 'example.com', type: RecordType.DS, ttl: 60, data: { keyTag: 60485, algorithm: 13, digestType: 2, digest: Buffer.alloc(32, 7) } },
  { name: 'example.com', type: RecordType.CDS, ttl: 60, data: { keyTag: 0, algorithm: 0, digestType: 0, digest: Buffer.from([0]) } },
  { name: 'example.com', type: RecordType.DNSKEY, ttl: 60, data: { flags: 257, protocol: 3, algorithm: 13, publicKey: Buffer.alloc(64, 9) } },
  { name: 'example.com', type: RecordType.CDNSKEY, ttl: 60, data: { flags: 0, protocol: 3, algorithm: 0, publicKey: Buffer.from([0]) } },
  {
    name: 'example.com',
    type: RecordType.RRSIG,
    ttl: 60,
    data: {
      typeCovered: RecordType.A,
      algorithm: 13,
      labels: 2,
      originalTtl: 300,
      expiration: 1893456000,
      inception: 1704067200,
      keyTag: 12345,
      signerName: 'example.com',
      signature: Buffer.alloc(64, 3),
    },
  },
  {
    name: 'example.com',
    type: RecordType.NSEC,
    ttl: 60,
    data: { nextDomain: 'a.example.com', types: [1, 2, 6, 15, 16, 28, 46, 47, 48, 257, 65280] },
  },
  { name: 'example.com', type: RecordType.NSEC, ttl: 60, data: { nextDomain: 'b.example.com', types: [] } },
  {
    name: '0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.com',
    type: RecordType.NSEC3,
    ttl: 60,
    data: { hashAlgorithm: 1, flags: 1, iterations: 0, salt: Buffer.alloc(0), nextHashedOwner: Buffer.alloc(20, 0xaa), types: [1, 46] },
  },
  { name: 'example.com', type: RecordType.NSEC3PARAM, ttl: 0, data: { hashAlgorithm: 1, flags: 0, iterations: 10, salt: b('aabbccdd') } },
  { name: '_443._tcp.example.com', type: RecordType.TLSA, ttl: 60, data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 1) } },
  { name: 'example.com', type: RecordType.SSHFP, ttl: 60, data: { algorithm: 4, fingerprintType: 2, fingerprint: Buffer.alloc(32, 2) } },
  { name: 'example.com', type: RecordType.HINFO, ttl: 60, data: { cpu: 'RFC8482', os: '' } },
  {
    name: 'example.com',
    type: RecordType.HTTPS,
    ttl: 60,
    data: {
      priority: 1,
      target: '',
      params: {
        mandatory: [1, 3],
        alpn: ['h2', 'h3'],
        noDefaultAlpn: true,
        port: 8443,
        ipv4hint: ['192.0.2.1', '192.0.2.2'],
        ech: b('0045fe0d'),
        ipv6hint: ['2001:db8::1'],
        dohpath: '/dns-query{?dns}',
        ohttp: true,
        unknown: [
          { key: 9, value: b('01') },
          { key: 65000, value: Buffer.alloc(0) },
        ],
      },
    },
  },
  { name: 'example.com', type: RecordType.HTTPS, ttl: 60, data: { priority: 0, target: 'svc.example.net', params: {} } },
  { name: '_dns.example.com', type: RecordType.SVCB, ttl: 60, data: { priority: 1, target: 'dns.example.com', params: { alpn: ['dot'], port: 853 } } },
  { name: 'example.com', type: RecordType.MINFO, ttl: 60, data: { rmailbx: 'admin.example.com', emailbx: 'errors.example.com' } },
  { name: 'example.com', type: RecordType.RP, ttl: 60, data: { mbox: 'admin.example.com', txt: '' } },
  { name: 'example.com', type: RecordType.AFSDB, ttl: 60, data: { subtype: 1, hostname: 'afs.example.com' } },
  { name: 'example.com', type: RecordType.RT, ttl: 60, data: { preference: 1, exchange: 'relay.example.com' } },
  { name: 'example.com', type: RecordType.KX, ttl: 60, data: { preference: 1, exchange: 'kx.example.com' } },
  { name: 'example.com', type: RecordType.MB, ttl: 60, data: 'mb.example.com' },
  { name: 'example.com', type: RecordType.SPF, ttl: 60, data: [Buffer.from('v=spf1')] },
  { name: 'example.com', type: RecordType.SMIMEA, ttl: 60, data: { usage: 0, selector: 0, matchingType: 0, certificate: Buffer.alloc(0) } },
  { name: 'example.com', type: 65280, ttl: 60, data: b('deadbeef') },
  { name: 'example.com', type: RecordType.NULL, ttl: 60, data: Buffer.alloc(0) },
  { name: 'example.com', type: RecordType.LOC, ttl: 60, data: b('0012161300000000') },
];

/** Types whose format is defined for class IN only (RFC 3597 §4: opaque bytes in other classes). */
const CLASS_IN_ONLY = new Set<number>([RecordType.A, RecordType.AAAA, RecordType.SRV, RecordType.NAPTR, RecordType.KX, RecordType.SVCB, RecordType.HTTPS]);

/** The RDATA bytes `rr` encodes to in class IN. */
function inRdata(rr: ResourceRecordInit): Buffer {
  const [view] = new MessageReader(encode({ answers: [rr] })).records();
  return Buffer.from(view.rdata());
}

describe('round trip per record type', () => {
  for (const rr of SAMPLE_RECORDS) {
    it(`${rr.type} ${JSON.stringify(rr.data).slice(0, 60)}`, () => {
      roundTrip(withRecord(rr));
      // Also as authority and additional records, and in a class other than IN
      // (where class-IN formats are opaque bytes).
      const other = CLASS_IN_ONLY.has(rr.type) ? { ...rr, class: 3, data: inRdata(rr) } : { ...rr, class: 3 };
      roundTrip({ authorities: [rr], additionals: [other] });
    });
  }

  it('class-IN formats (A, AAAA, SRV, NAPTR, KX, SVCB, HTTPS) are opaque bytes in other classes (RFC 3597 §4)', () => {
    for (const rr of SAMPLE_RECORDS.filter((r) => CLASS_IN_ONLY.has(r.type))) {
      const raw = inRdata(rr);
      for (const klass of [3, 4, 255]) {
        const bytes = encode({ answers: [{ ...rr, class: klass, data: raw }] });
        expect(decode(bytes).answers[0].data).toEqual(raw);
        const [view] = new MessageReader(bytes).records();
        expect(view.data()).toEqual(raw);
        // The class-IN text form is refused outside class IN.
        expect(() => encode({ answers: [{ ...rr, class: klass }] })).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
      }
    }
    // A CHAOS-class "A" record of 2 octets is not malformed: it is not an address at all.
    const ch = encode({ answers: [{ name: 'x', type: RecordType.A, class: 3, data: b('0102') }] });
    expect(decode(ch).answers[0].data).toEqual(b('0102'));
  });

  it('a TTL with the top bit set reads as 0 on both paths (RFC 2181 §8)', () => {
    for (const ttl of [0x80000000, 0xffffffff, 0x80000001]) {
      const bytes = encode({ answers: [{ name: 'example.com', type: RecordType.A, ttl, data: '192.0.2.1' }] });
      expect(decode(bytes).answers[0].ttl).toBe(0);
      const [view] = new MessageReader(bytes).records();
      expect(view.ttl).toBe(0);
    }
    const ok = encode({ answers: [{ name: 'example.com', type: RecordType.A, ttl: 0x7fffffff, data: '192.0.2.1' }] });
    expect(decode(ok).answers[0].ttl).toBe(0x7fffffff);
    expect([...new MessageReader(ok).records()][0].ttl).toBe(0x7fffffff);
  });

  it('accepts strings for TXT and decodes them as bytes', () => {
    const m = withRecord({ name: 'example.com', type: RecordType.TXT, data: ['héllo', Buffer.from('x')] });
    const expected = normalize(m);
    expected.answers[0].data = [Buffer.from('héllo', 'utf8'), Buffer.from('x')];
    roundTrip(m, expected);
  });

  it('prints IPv6 addresses in RFC 5952 form', () => {
    const m = withRecord({ name: 'x', type: RecordType.AAAA, data: '2001:DB8:0:0:1:0:0:1' });
    expect(decode(encode(m)).answers[0].data).toBe('2001:db8::1:0:0:1');
    const v4 = withRecord({ name: 'x', type: RecordType.AAAA, data: '::ffff:192.0.2.1' });
    expect(decode(encode(v4)).answers[0].data).toBe('::ffff:c000:201');
  });
});

describe('messages', () => {
  it('round-trips every header flag, opcode and rcode', () => {
    roundTrip({ id: 0xffff, qr: true, opcode: 15, aa: true, tc: true, rd: true, ra: true, z: true, ad: true, cd: true, rcode: 15 });
    roundTrip({ id: 0, opcode: 5 });
  });

  it('round-trips a question of any class', () => {
    roundTrip({ questions: [{ name: 'b.example', type: 28, class: 255 }] });
  });

  it('a second question (QDCOUNT > 1) is FORMERR on both paths (RFC 9619)', () => {
    const two = encode({
      questions: [
        { name: 'a.example', type: 1 },
        { name: 'b.example', type: 28 },
      ],
    });
    expect(() => decode(two)).toThrow(expect.objectContaining({ code: 'BAD_QUESTION' }));
    const r = new MessageReader(two);
    expect(r.qdcount).toBe(2); // the header alone still reads
    expect(() => r.questionEnd).toThrow(expect.objectContaining({ code: 'BAD_QUESTION' }));
    expect(() => [...new MessageReader(two).records()]).toThrow(expect.objectContaining({ code: 'BAD_QUESTION' }));
    expect(() => new MessageReader(two).optOffset).toThrow(expect.objectContaining({ code: 'BAD_QUESTION' }));
  });

  it('an OPT record outside the additional section is FORMERR on both paths (RFC 6891 §6.1.1)', () => {
    const opt = { name: '', type: RecordType.OPT, class: 1232, ttl: 0, data: [] };
    for (const m of [{ answers: [opt] }, { authorities: [opt] }] as MessageInit[]) {
      const bytes = encode({ questions: [{ name: 'example.com', type: 1 }], ...m });
      expect(() => decode(bytes)).toThrow(expect.objectContaining({ code: 'BAD_OPT' }));
      expect(() => [...new MessageReader(bytes).records()]).toThrow(expect.objectContaining({ code: 'BAD_OPT' }));
      expect(() => new MessageReader(bytes).optOffset).toThrow(expect.objectContaining({ code: 'BAD_OPT' }));
      expect(() => new MessageReader(bytes).edns()).toThrow(expect.objectContaining({ code: 'BAD_OPT' }));
    }
  });

  it('round-trips EDNS with every option kind', () => {
    const m: MessageInit = {
      id: 7,
      rcode: Rcode.BADCOOKIE,
      questions: [{ name: 'example.com', type: RecordType.A }],
      edns: {
        udpPayloadSize: 4096,
        version: 0,
        dnssecOk: true,
        flags: 0x1234,
        options: [
          { code: OptionCode.CLIENT_SUBNET, family: 1, sourcePrefixLength: 24, scopePrefixLength: 16, address: '198.51.100.0' },
          { code: OptionCode.CLIENT_SUBNET, family: 2, sourcePrefixLength: 56, scopePrefixLength: 0, address: '2001:db8:1234:5600::' },
          { code: OptionCode.CLIENT_SUBNET, family: 1, sourcePrefixLength: 0, scopePrefixLength: 0, address: '0.0.0.0' },
          { code: OptionCode.COOKIE, client: Buffer.alloc(8, 1) },
          { code: OptionCode.COOKIE, client: Buffer.alloc(8, 1), server: Buffer.alloc(16, 2) },
          { code: OptionCode.TCP_KEEPALIVE },
          { code: OptionCode.TCP_KEEPALIVE, timeout: 600 },
          { code: OptionCode.PADDING, length: 0 },
          { code: OptionCode.PADDING, length: 37 },
          { code: OptionCode.EDE, infoCode: EdeCode.BLOCKED, extraText: 'blocked by policy ✓' },
          { code: OptionCode.EDE, infoCode: EdeCode.STALE_ANSWER, extraText: '' },
          { code: OptionCode.NSID, data: Buffer.from('ns1') },
          { code: 65001, data: Buffer.alloc(0) },
        ],
      },
    };
    const bytes = roundTrip(m);
    const r = new MessageReader(bytes);
    expect(r.rcode).toBe(Rcode.BADCOOKIE & 0xf);
    expect(r.fullRcode).toBe(Rcode.BADCOOKIE);
    expect(r.edns()).toEqual(normalize(m).edns);
  });

  it('masks client subnet host bits when encoding (RFC 7871 §6)', () => {
    const bytes = encode({
      edns: { options: [{ code: OptionCode.CLIENT_SUBNET, family: 1, sourcePrefixLength: 20, scopePrefixLength: 0, address: '192.0.2.255' }] },
    });
    expect(decode(bytes).edns?.options[0]).toEqual({
      code: OptionCode.CLIENT_SUBNET,
      family: 1,
      sourcePrefixLength: 20,
      scopePrefixLength: 0,
      address: '192.0.0.0',
    });
  });

  it('writes EDNS defaults: 1232 bytes, version 0', () => {
    expect(decode(encode({ edns: {} })).edns).toEqual({
      udpPayloadSize: 1232,
      extendedRcode: 0,
      version: 0,
      dnssecOk: false,
      flags: 0,
      options: [],
    });
  });
});

describe('names', () => {
  const nameCases = [
    ['', 'root'],
    ['a', 'one label'],
    ['a\\.b.example', 'escaped dot'],
    ['a\\\\b.example', 'escaped backslash'],
    ['\\000\\255\\032x.example', 'decimal escapes'],
    ['\\"\\(\\)\\;\\@\\$.example', 'special characters'],
    ['*.example.com', 'wildcard'],
    ['_sip._udp.example', 'underscores'],
    ['MiXeD.CaSe.Example', 'case kept'],
  ];
  for (const [name, what] of nameCases) {
    it(`round-trips ${what}: ${name}`, () => {
      roundTrip(withRecord({ name, type: RecordType.CNAME, data: name }));
      roundTrip(withRecord({ name: 'x', type: RecordType.SRV, data: { priority: 0, weight: 0, port: 0, target: name } }));
    });
  }

  it('accepts a trailing dot and non-canonical escapes', () => {
    const m = decode(encode({ questions: [{ name: 'Www.\\101xample.com.', type: 1 }] }));
    expect(m.questions[0].name).toBe('Www.example.com');
    expect(decode(encode({ questions: [{ name: '.', type: 1 }] })).questions[0].name).toBe('');
  });

  it('accepts the longest legal name and label, rejects longer ones', () => {
    const label63 = 'a'.repeat(63);
    const longest = [label63, label63, label63, 'a'.repeat(61)].join('.'); // 255 octets in wire form
    roundTrip({ questions: [{ name: longest, type: 1 }] });
    expect(() => encode({ questions: [{ name: `${longest}a`, type: 1 }] })).toThrow(expect.objectContaining({ code: 'NAME_TOO_LONG' }));
    expect(() => encode({ questions: [{ name: 'a'.repeat(64), type: 1 }] })).toThrow(expect.objectContaining({ code: 'LABEL_TOO_LONG' }));
    expect(() => encode({ questions: [{ name: `${'\\065'.repeat(64)}`, type: 1 }] })).toThrow(expect.objectContaining({ code: 'LABEL_TOO_LONG' }));
  });

  it('rejects empty labels and bad escapes', () => {
    for (const name of ['a..b', '.a', 'a\\', 'a\\25', 'a\\256', 'ä€']) {
      expect(() => encode({ questions: [{ name, type: 1 }] }), name).toThrow(PacketError);
    }
  });
});

describe('compression', () => {
  it('compresses owner names and RFC 1035 RDATA names to 76 bytes for 2 A + OPT', () => {
    const bytes = encode({
      id: 1,
      qr: true,
      questions: [{ name: 'www.example.com', type: 1 }],
      answers: [
        { name: 'www.example.com', type: 1, ttl: 300, data: '192.0.2.1' },
        { name: 'www.example.com', type: 1, ttl: 300, data: '192.0.2.2' },
      ],
      edns: {},
    });
    expect(bytes.length).toBe(76);
    expect(bytes.subarray(33, 35)).toEqual(b('c00c'));
  });

  it('points into suffixes and into NS/MX/SOA/CNAME/PTR RDATA', () => {
    const m: MessageInit = {
      questions: [{ name: 'example.com', type: RecordType.NS }],
      answers: [
        { name: 'example.com', type: RecordType.NS, data: 'ns1.example.com' },
        { name: 'example.com', type: RecordType.NS, data: 'ns2.example.com' },
        { name: 'ns1.example.com', type: RecordType.A, data: '192.0.2.1' },
        { name: 'example.com', type: RecordType.MX, data: { preference: 1, exchange: 'ns1.example.com' } },
      ],
    };
    const bytes = roundTrip(m);
    // 12 header + 17 question; NS #1: 2 name + 10 + "ns1"+ptr (6); NS #2 the same; A: ptr + 10 + 4; MX: ptr + 10 + 2 + ptr.
    expect(bytes.length).toBe(12 + 17 + 18 + 18 + 16 + 16);
  });

  it('never compresses RDATA names of SRV, RRSIG, NSEC, SVCB, DNAME, NAPTR (RFC 3597 §4)', () => {
    const target = 'host.example.com';
    const owner = 'host.example.com';
    const rdataCases: ResourceRecordInit[] = [
      { name: owner, type: RecordType.SRV, data: { priority: 1, weight: 1, port: 1, target } },
      { name: owner, type: RecordType.DNAME, data: target },
      { name: owner, type: RecordType.NSEC, data: { nextDomain: target, types: [1] } },
      { name: owner, type: RecordType.SVCB, data: { priority: 1, target, params: {} } },
      { name: owner, type: RecordType.NAPTR, data: { order: 1, preference: 1, flags: '', services: '', regexp: '', replacement: target } },
      {
        name: owner,
        type: RecordType.RRSIG,
        data: {
          typeCovered: 1,
          algorithm: 8,
          labels: 3,
          originalTtl: 1,
          expiration: 1,
          inception: 1,
          keyTag: 1,
          signerName: target,
          signature: Buffer.alloc(1),
        },
      },
    ];
    for (const rr of rdataCases) {
      const bytes = roundTrip({ questions: [{ name: owner, type: rr.type }], answers: [rr] });
      const r = new MessageReader(bytes);
      const [view] = [...r.records('answer')];
      // The owner is a pointer, the RDATA holds the whole target name.
      expect(bytes.subarray(view.nameOffset, view.nameOffset + 2)).toEqual(b('c00c'));
      expect(view.rdata().includes(b('04686f7374076578616d706c6503636f6d00'))).toBe(true);
    }
  });

  it('does not use names inside non-compressible RDATA as targets', () => {
    const bytes = encode({
      answers: [
        { name: 'a.example', type: RecordType.SRV, data: { priority: 1, weight: 1, port: 1, target: 'zzz.example' } },
        { name: 'zzz.example', type: RecordType.A, data: '192.0.2.1' },
      ],
    });
    const views = [...new MessageReader(bytes).records()];
    const second = bytes.subarray(views[1].nameOffset, views[1].rdataOffset - 10);
    // "zzz" written in full, then a pointer to "example" in the first owner name.
    expect(second).toEqual(b('037a7a7ac00e'));
  });

  it('compresses case-sensitively so letter case survives', () => {
    const m: MessageInit = {
      questions: [{ name: 'WWW.example.com', type: 1 }],
      answers: [{ name: 'www.example.com', type: 1, data: '192.0.2.1' }],
    };
    const bytes = roundTrip(m);
    expect(decode(bytes).answers[0].name).toBe('www.example.com');
  });

  it('compresses escaped names by their wire form', () => {
    roundTrip({
      questions: [{ name: 'a\\.b.example.com', type: 1 }],
      answers: [
        { name: 'a\\.b.example.com', type: 1, data: '192.0.2.1' },
        { name: 'x.a\\.b.example.com', type: 1, data: '192.0.2.2' },
      ],
    });
    const m = decode(encode({ questions: [{ name: 'x.\\097\\.b.example.com', type: 1 }] }));
    expect(m.questions[0].name).toBe('x.a\\.b.example.com');
    const bytes = encode({
      questions: [{ name: 'a\\.b.example.com', type: 1 }],
      answers: [{ name: '\\097\\.b.example.com', type: 1, data: '192.0.2.1' }],
    });
    expect(decode(bytes).answers[0].name).toBe('a\\.b.example.com');
    expect(bytes.length).toBe(12 + 21 + 2 + 10 + 4);
  });

  it('does not point beyond offset 0x3FFF', () => {
    const big = Buffer.alloc(0x4000);
    const bytes = encode({
      answers: [
        { name: 'pad.example', type: 65280, data: big },
        { name: 'late.example', type: 1, data: '192.0.2.1' },
        { name: 'late.example', type: 1, data: '192.0.2.2' },
      ],
    });
    const m = decode(bytes);
    expect(m.answers.map((r) => r.name)).toEqual(['pad.example', 'late.example', 'late.example']);
  });
});

describe('encoder input errors', () => {
  const bad: Array<[string, MessageInit]> = [
    ['A text', withRecord({ name: 'x', type: 1, data: '1.2.3' })],
    ['A octet', withRecord({ name: 'x', type: 1, data: '1.2.3.256' })],
    ['A leading zero', withRecord({ name: 'x', type: 1, data: '01.2.3.4' })],
    ['AAAA', withRecord({ name: 'x', type: 28, data: '2001:db8:::1' })],
    ['AAAA groups', withRecord({ name: 'x', type: 28, data: '1:2:3:4:5:6:7:8:9' })],
    ['MX shape', withRecord({ name: 'x', type: 15, data: 'mail.example' })],
    ['u16 range', withRecord({ name: 'x', type: 15, data: { preference: 70000, exchange: 'a' } })],
    ['TTL', { answers: [{ name: 'x', type: 1, ttl: -1, data: '1.2.3.4' }] }],
    ['type', { answers: [{ name: 'x', type: 1.5, data: '1.2.3.4' }] }],
    ['raw', withRecord({ name: 'x', type: 65280, data: 'not bytes' })],
    ['TXT long', withRecord({ name: 'x', type: 16, data: ['x'.repeat(256)] })],
    ['TXT empty', withRecord({ name: 'x', type: 16, data: [] })],
    ['cookie', { edns: { options: [{ code: OptionCode.COOKIE, client: Buffer.alloc(7) }] } }],
    ['ECS family', { edns: { options: [{ code: 8, family: 3, sourcePrefixLength: 0, scopePrefixLength: 0, address: '' } as never] } }],
    ['ECS prefix', { edns: { options: [{ code: 8, family: 1, sourcePrefixLength: 33, scopePrefixLength: 0, address: '1.2.3.4' }] } }],
    ['rcode without EDNS', { rcode: 16 }],
    ['opcode', { opcode: 16 }],
    ['id', { id: 65536 }],
    ['svcb dup', withRecord({ name: 'x', type: 64, data: { priority: 1, target: '', params: { port: 1, unknown: [{ key: 3, value: Buffer.alloc(2) }] } } })],
    ['question', { questions: [null as never] }],
    ['OPT twice', { additionals: [{ name: '', type: RecordType.OPT, class: 512, data: [] }], edns: {} }],
    ['message', null as never],
  ];
  for (const [what, m] of bad) {
    it(`rejects bad ${what} with INVALID_VALUE`, () => {
      let err: unknown;
      try {
        encode(m);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PacketError);
      expect((err as PacketError).code).toBe('INVALID_VALUE');
    });
  }

  it('reports a too-small caller buffer and too-large messages', () => {
    const m = withRecord({ name: 'example.com', type: 1, data: '192.0.2.1' });
    const n = encodingLength(m);
    expect(encode(m, Buffer.alloc(n)).length).toBe(n);
    expect(() => encode(m, Buffer.alloc(n - 1))).toThrow(expect.objectContaining({ code: 'BUFFER_TOO_SMALL' }));
    expect(() => encode(m, Buffer.alloc(n + 10), 11)).toThrow(expect.objectContaining({ code: 'BUFFER_TOO_SMALL' }));
    expect(() => encode(m, Buffer.alloc(n), -1)).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
    const huge = { answers: [1, 2].map(() => ({ name: 'x', type: 65280, data: Buffer.alloc(40000) })) };
    expect(() => encode(huge)).toThrow(expect.objectContaining({ code: 'MESSAGE_TOO_LARGE' }));
    expect(() => encodingLength(huge)).toThrow(expect.objectContaining({ code: 'MESSAGE_TOO_LARGE' }));
  });

  it('never hands out overlapping buffers (slab allocation and its fallback)', () => {
    const messages: MessageInit[] = [];
    const outputs: Buffer[] = [];
    for (let i = 0; i < 600; i++) {
      const size = i % 50 === 49 ? 9000 + i : (i * 37) % 300;
      const m: MessageInit = { id: i, answers: [{ name: `n${i}.example`, type: 65280, data: Buffer.alloc(size, i & 0xff) }] };
      messages.push(m);
      outputs.push(encode(m));
    }
    outputs.forEach((out, i) => {
      expect(out.length).toBe(encodingLength(messages[i]));
      expect(decode(out)).toEqual(normalize(messages[i]));
    });
  });

  it('encodes into a Uint8Array too', () => {
    const u8 = new Uint8Array(64);
    const out = encode({ id: 5 }, u8, 3);
    expect(out.length).toBe(12);
    expect(u8[4]).toBe(5);
  });
});

describe('decoder errors', () => {
  const header = 'abcd 0100 0001 0000 0000 0000';
  const cases: Array<[string, string, string]> = [
    ['short header', 'abcd 0100 0001', 'TRUNCATED'],
    ['missing question', header, 'TRUNCATED'],
    ['label past end', `${header} 05 6162`, 'TRUNCATED'],
    ['missing qtype', `${header} 00 0001`, 'TRUNCATED'],
    ['self pointer', `${header} c00c 0001 0001`, 'POINTER_LOOP'],
    ['forward pointer', `${header} c010 0001 0001 00`, 'POINTER_LOOP'],
    ['pointer loop', `${header} 01 61 c00c 0001 0001`, 'POINTER_LOOP'],
    ['truncated pointer', `${header} c0`, 'TRUNCATED'],
    ['extended label', `${header} 41 00 0001 0001`, 'BAD_LABEL'],
    ['reserved label', `${header} 80 00 0001 0001`, 'BAD_LABEL'],
  ];
  for (const [what, h, code] of cases) {
    it(`${what} → ${code}`, () => {
      expect(() => decode(hex(h))).toThrow(expect.objectContaining({ code }));
    });
  }

  it('a name longer than 255 octets → NAME_TOO_LONG', () => {
    const labels = `${'3f' + '61'.repeat(63)}`.repeat(4);
    expect(() => decode(hex(`${header} ${labels} 00 0001 0001`))).toThrow(expect.objectContaining({ code: 'NAME_TOO_LONG' }));
    // Also when built from pointers: each name adds its labels to an earlier one.
    const parts = [hex('0000 0000 0001 0001 0000 0000')];
    parts.push(hex(`3f${'61'.repeat(63)} 3f${'62'.repeat(63)} 00 0001 0001`)); // 130 octets at 12
    parts.push(hex(`3f${'63'.repeat(63)} 3f${'64'.repeat(63)} c00c`)); // an owner of 258 octets via pointer
    parts.push(hex('0001 0001 00000000 0004 c0000201'));
    const bad = Buffer.concat(parts);
    expect(() => decode(bad)).toThrow(expect.objectContaining({ code: 'NAME_TOO_LONG' }));
  });

  it('RDATA that does not match its type → BAD_RDATA', () => {
    const rr = (type: string, rdata: string) =>
      hex(`0000 8000 0000 0001 0000 0000 00 ${type} 0001 00000000 ${(rdata.replace(/\s/g, '').length / 2).toString(16).padStart(4, '0')} ${rdata}`);
    const bad: Array<[string, string]> = [
      ['0001', '010203'],
      ['001c', '01020304'],
      ['000f', '0001'],
      ['0006', '00 00 00000001'],
      ['0010', '05 6162'],
      ['0010', ''],
      ['0021', '0001 0002 0003'],
      ['0101', '00 00'],
      ['0023', '0001 0002 01'],
      ['002b', '0001'],
      ['0032', '01 00 0000 05'],
      ['002f', '00 01 02'],
      ['002f', '00 00 21 ff'],
      ['0040', '0001 00 0003 0001 ff'],
      ['0040', '0001 00 0003 0002 0050 0001 0002 0101'],
      ['0041', '0001 00 0001 0003 00 0068'],
      ['0002', '00 00'],
      ['0002', '01 61 00 00'],
    ];
    for (const [type, rdata] of bad) {
      expect(() => decode(rr(type, rdata)), `${type} ${rdata}`).toThrow(expect.objectContaining({ code: 'BAD_RDATA' }));
    }
    expect(() => decode(rr('0002', '05 61'))).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
    expect(() => decode(rr('0001', '0102').subarray(0, -1))).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
  });

  it('OPT rules: one, root-owned, in the additional section; options well-formed', () => {
    const opt = '00 0029 04d0 00000000 0000';
    expect(() => decode(hex(`0000 0000 0000 0000 0000 0002 ${opt} ${opt}`))).toThrow(expect.objectContaining({ code: 'DUPLICATE_OPT' }));
    expect(() => decode(hex(`0000 0000 0000 0001 0000 0000 ${opt}`))).toThrow(expect.objectContaining({ code: 'BAD_OPT' }));
    expect(() => decode(hex('0000 0000 0000 0000 0000 0001 0161 00 0029 04d0 00000000 0000'))).toThrow(expect.objectContaining({ code: 'BAD_OPT' }));
    // A pointer to a root label is still not the root owner the RFC asks for.
    const viaPointer = hex('0000 0000 0001 0000 0000 0001 00 0001 0001 c00c 0029 04d0 00000000 0000');
    expect(() => decode(viaPointer)).toThrow(expect.objectContaining({ code: 'BAD_OPT' }));
    expect(() => new MessageReader(viaPointer).edns()).toThrow(expect.objectContaining({ code: 'BAD_OPT' }));
    // An OPT record given as a plain additional record (without `edns`) is written as is.
    const manual = decode(encode({ additionals: [{ name: '', type: RecordType.OPT, class: 1400, ttl: 0x8000, data: [] }] }));
    expect(manual.edns).toMatchObject({ udpPayloadSize: 1400, dnssecOk: true });
    const withOption = (o: string) =>
      hex(`0000 0000 0000 0000 0000 0001 00 0029 04d0 00000000 ${(o.replace(/\s/g, '').length / 2).toString(16).padStart(4, '0')} ${o}`);
    const badOptions = [
      '000a 0007 01020304050607', // cookie length
      '000a 0011 0102030405060708 010203040506070809', // server cookie 9 → total 17 is fine? no: 17 is within 16..40
      '0008 0003 000100', // ECS short
      '0008 0005 0003 08 00 01', // ECS family
      '0008 0006 0001 08 00 0102', // ECS address longer than prefix
      '0008 0005 0001 21 00 01', // ECS prefix > 32
      '000b 0001 00', // keepalive
      '000f 0001 00', // EDE
      '000c 0004 0000', // option runs past
      '00', // truncated option header
    ];
    for (const o of badOptions.filter((x) => !x.includes('010203040506070809'))) {
      expect(() => decode(withOption(o)), o).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
      expect(() => new MessageReader(withOption(o)).edns(), o).toThrow(PacketError);
    }
    expect(decode(withOption('000a 0011 0102030405060708 010203040506070809')).edns?.options[0]).toMatchObject({ code: 10 });
  });

  it('never reads a qname outside the buffer through RecordView', () => {
    const bytes = encode({ questions: [{ name: 'a.example', type: 1 }], answers: [{ name: 'a.example', type: 1, data: '192.0.2.1' }] });
    const r = new MessageReader(bytes.subarray(0, bytes.length - 1));
    expect(() => [...r.records()]).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
  });

  it('accepts Uint8Array input and ignores trailing octets', () => {
    const bytes = encode({ id: 9, questions: [{ name: 'a', type: 1 }] });
    const u8 = new Uint8Array([...bytes, 1, 2, 3]);
    expect(decode(u8).id).toBe(9);
    expect(new MessageReader(u8).qname).toBe('a');
    expect(() => decode('nope' as never)).toThrow(PacketError);
  });
});
