/**
 * Differential tests against dns-packet: the same bytes in give the same
 * records out. Where dns-packet differs on purpose or is wrong, the
 * difference is written down and tested here:
 *
 * 1. dns-packet never compresses names: its encoding of the same message is
 *    longer; each library decodes the other's bytes to the same records.
 * 2. dns-packet prints label bytes as UTF-8 with no escapes, so a label
 *    holding a dot (`a.b` in one label) reads like two labels; we print
 *    RFC 1035 escapes (`a\.b`). The root is `.` there, `""` here.
 * 3. dns-packet throws plain `Error`/`RangeError` on malformed input (and may
 *    read garbage silently); we raise `PacketError` with a code and offset.
 * 4. Shapes differ (type/class as strings, `originalTTL`, `signersName`,
 *    `rrtypes`, SSHFP `hash` + upper-case hex, DNSKEY without `protocol`,
 *    OPT as an additional record): `fromDnsPacket` below maps them.
 * 5. dns-packet has no SVCB/HTTPS decoder (raw buffer there) and decodes CAA
 *    values as UTF-8 (latin1 here: one char per octet).
 */
import { readdirSync, readFileSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classFromString } from './classes.js';
import { decode } from './decode.js';
import type { EdnsOption } from './edns.js';
import { encode } from './encode.js';
import { PacketError } from './errors.js';
import type { Message, ResourceRecord } from './message.js';
import { hex } from './packet.test-helpers.js';
import { RecordType, typeFromString } from './types.js';

type DpAnswer = Record<string, any>;

function dpType(t: string): number {
  const m = /^UNKNOWN_(\d+)$/.exec(t);
  return m ? Number(m[1]) : (typeFromString(t) ?? -1);
}
function dpClass(c: string): number {
  const m = /^UNKNOWN_(\d+)$/.exec(c);
  return m ? Number(m[1]) : (classFromString(c) ?? -1);
}
const dpName = (n: string) => (n === '.' ? '' : n);

/** Maps one dns-packet record to our ResourceRecord shape. */
function fromDnsPacket(rr: DpAnswer): ResourceRecord {
  const type = dpType(rr.type);
  const d = rr.data;
  let data: unknown;
  switch (type) {
    case RecordType.NS:
    case RecordType.CNAME:
    case RecordType.DNAME:
    case RecordType.PTR:
      data = dpName(d);
      break;
    case RecordType.MX:
      data = { preference: d.preference, exchange: dpName(d.exchange) };
      break;
    case RecordType.SOA:
      data = { ...d, mname: dpName(d.mname), rname: dpName(d.rname) };
      break;
    case RecordType.SRV:
      data = { priority: d.priority, weight: d.weight, port: d.port, target: dpName(d.target) };
      break;
    case RecordType.CAA:
      data = { flags: d.flags, tag: d.tag, value: Buffer.from(d.value, 'utf8').toString('latin1') };
      break;
    case RecordType.NAPTR:
      data = { ...d, replacement: dpName(d.replacement) };
      break;
    case RecordType.DNSKEY:
      data = { flags: d.flags, protocol: 3, algorithm: d.algorithm, publicKey: d.key };
      break;
    case RecordType.RRSIG:
      data = {
        typeCovered: dpType(d.typeCovered),
        algorithm: d.algorithm,
        labels: d.labels,
        originalTtl: d.originalTTL,
        expiration: d.expiration,
        inception: d.inception,
        keyTag: d.keyTag,
        signerName: dpName(d.signersName),
        signature: d.signature,
      };
      break;
    case RecordType.NSEC:
      data = { nextDomain: dpName(d.nextDomain), types: d.rrtypes.map(dpType).sort((a: number, b: number) => a - b) };
      break;
    case RecordType.NSEC3:
      data = {
        hashAlgorithm: d.algorithm,
        flags: d.flags,
        iterations: d.iterations,
        salt: d.salt,
        nextHashedOwner: d.nextDomain,
        types: d.rrtypes.map(dpType).sort((a: number, b: number) => a - b),
      };
      break;
    case RecordType.SSHFP:
      data = { algorithm: d.algorithm, fingerprintType: d.hash, fingerprint: Buffer.from(d.fingerprint, 'hex') };
      break;
    default:
      data = d;
  }
  return { name: dpName(rr.name), type, class: dpClass(rr.class), ttl: rr.ttl, data: data as ResourceRecord['data'] };
}

function optionsFromDnsPacket(options: DpAnswer[]): EdnsOption[] {
  return options.map((o) => {
    switch (o.code) {
      case 8:
        return { code: 8, family: o.family, sourcePrefixLength: o.sourcePrefixLength, scopePrefixLength: o.scopePrefixLength, address: o.ip };
      case 10:
        return o.data.length === 8 ? { code: 10, client: o.data } : { code: 10, client: o.data.subarray(0, 8), server: o.data.subarray(8) };
      case 11:
        return o.timeout === undefined ? { code: 11 } : { code: 11, timeout: o.timeout };
      case 12:
        return { code: 12, length: o.data.length };
      case 15:
        return { code: 15, infoCode: o.data.readUInt16BE(0), extraText: o.data.subarray(2).toString('utf8') };
      default:
        return { code: o.code, data: o.data };
    }
  });
}

/** What our decoder should return for `bytes`, computed from dns-packet's decoding. */
function expectedFromDnsPacket(bytes: Buffer): Message {
  const p = dnsPacket.decode(bytes) as DpAnswer;
  const additionals = (p.additionals ?? []) as DpAnswer[];
  const opt = additionals.find((r) => r.type === 'OPT');
  const flags = bytes.readUInt16BE(2);
  const m: Message = {
    id: p.id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: p.flag_aa,
    tc: p.flag_tc,
    rd: p.flag_rd,
    ra: p.flag_ra,
    z: p.flag_z,
    ad: p.flag_ad,
    cd: p.flag_cd,
    rcode: (flags & 0xf) | (opt ? opt.extendedRcode << 4 : 0),
    questions: p.questions.map((q: DpAnswer) => ({ name: dpName(q.name), type: dpType(q.type), class: dpClass(q.class) })),
    answers: p.answers.map(fromDnsPacket),
    authorities: p.authorities.map(fromDnsPacket),
    additionals: additionals.filter((r) => r.type !== 'OPT').map(fromDnsPacket),
  };
  if (opt) {
    m.edns = {
      udpPayloadSize: opt.udpPayloadSize,
      extendedRcode: opt.extendedRcode,
      version: opt.ednsVersion,
      dnssecOk: opt.flag_do,
      flags: opt.flags & 0x7fff,
      options: optionsFromDnsPacket(opt.options),
    };
  }
  return m;
}

const fixtureDir = new URL('./fixtures/', import.meta.url);
const fixtures = readdirSync(fixtureDir)
  .filter((f) => f.endsWith('.hex'))
  // dns-packet has no SVCB/HTTPS decoder: compared separately below.
  .filter((f) => !/https|svcb/.test(f))
  .map((f) => [f, hex(readFileSync(new URL(f, fixtureDir), 'utf8'))] as const);

// Messages both libraries can express, written by our encoder.
const built = [
  encode({
    id: 1,
    qr: true,
    rd: true,
    ra: true,
    questions: [{ name: 'www.example.com', type: RecordType.A }],
    answers: [
      { name: 'www.example.com', type: RecordType.CNAME, ttl: 60, data: 'web.example.com' },
      { name: 'web.example.com', type: RecordType.A, ttl: 60, data: '192.0.2.1' },
      { name: 'web.example.com', type: RecordType.AAAA, ttl: 60, data: '2001:db8::1' },
    ],
    authorities: [{ name: 'example.com', type: RecordType.NS, ttl: 60, data: 'ns.example.com' }],
    additionals: [{ name: 'ns.example.com', type: RecordType.A, ttl: 60, data: '192.0.2.53' }],
    edns: { udpPayloadSize: 4096, dnssecOk: true, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 24, address: '203.0.113.0' }] },
  }),
  encode({
    id: 2,
    qr: true,
    rcode: 3,
    questions: [{ name: 'nope.example.org', type: RecordType.MX }],
    authorities: [
      {
        name: 'example.org',
        type: RecordType.SOA,
        ttl: 900,
        data: { mname: 'ns.example.org', rname: 'hostmaster.example.org', serial: 7, refresh: 1, retry: 2, expire: 3, minimum: 4 },
      },
    ],
  }),
];

describe('differential: dns-packet', () => {
  for (const [file, bytes] of fixtures) {
    it(`${file}: same records out of the same bytes`, () => {
      expect(decode(bytes)).toEqual(expectedFromDnsPacket(bytes));
    });
  }

  built.forEach((bytes, i) => {
    it(`built message ${i}: same records; each decodes the other's encoding; ours is compressed`, () => {
      const ours = decode(bytes);
      expect(ours).toEqual(expectedFromDnsPacket(bytes));
      const theirs = dnsPacket.encode(dnsPacket.decode(bytes));
      expect(decode(theirs)).toEqual(ours);
      expect(bytes.length).toBeLessThan(theirs.length);
    });
  });

  it('generated messages: same records in both decoders', () => {
    const label = fc.stringMatching(/^[a-z0-9-]{1,10}$/);
    const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
    const rr = fc.oneof(
      fc.tuple(name, fc.ipV4()).map(([n, a]) => ({ name: n, type: RecordType.A, ttl: 30, data: a })),
      fc.tuple(name, name).map(([n, t]) => ({ name: n, type: RecordType.CNAME, ttl: 30, data: t })),
      fc.tuple(name, name, fc.nat(0xffff)).map(([n, t, p]) => ({ name: n, type: RecordType.MX, ttl: 30, data: { preference: p, exchange: t } })),
      fc.tuple(name, fc.array(fc.uint8Array({ maxLength: 30 }), { minLength: 1, maxLength: 3 })).map(([n, s]) => ({
        name: n,
        type: RecordType.TXT,
        ttl: 30,
        data: s.map((x) => Buffer.from(x)),
      })),
      fc
        .tuple(name, name, fc.nat(0xffff))
        .map(([n, t, p]) => ({ name: n, type: RecordType.SRV, ttl: 30, data: { priority: p, weight: 1, port: 2, target: t } })),
    );
    fc.assert(
      fc.property(name, fc.array(rr, { maxLength: 6 }), (qname, answers) => {
        const bytes = encode({ id: 3, qr: true, questions: [{ name: qname, type: RecordType.A }], answers });
        expect(decode(bytes)).toEqual(expectedFromDnsPacket(bytes));
        const theirs = dnsPacket.encode(dnsPacket.decode(bytes));
        expect(decode(theirs)).toEqual(decode(bytes));
        expect(bytes.length).toBeLessThanOrEqual(theirs.length);
      }),
      { numRuns: 200 },
    );
  });

  it('difference: dns-packet does not escape a dot inside a label; we do', () => {
    const bytes = encode({ questions: [{ name: 'a\\.b.example', type: RecordType.A }] });
    expect(decode(bytes).questions[0].name).toBe('a\\.b.example');
    expect((dnsPacket.decode(bytes) as DpAnswer).questions[0].name).toBe('a.b.example');
  });

  it('difference: dns-packet encodes the 2 A + OPT response in 106 bytes, we compress it to 76', () => {
    const m = {
      id: 1,
      qr: true,
      questions: [{ name: 'www.example.com', type: RecordType.A }],
      answers: [
        { name: 'www.example.com', type: RecordType.A, ttl: 300, data: '192.0.2.1' },
        { name: 'www.example.com', type: RecordType.A, ttl: 300, data: '192.0.2.2' },
      ],
      edns: {},
    };
    const ours = encode(m);
    const theirs = dnsPacket.encode(dnsPacket.decode(ours));
    expect([ours.length, theirs.length]).toEqual([76, 106]);
  });

  it('difference: malformed input is a PacketError here, an untyped error there', () => {
    const good = built[0];
    for (let cut = 12; cut < good.length; cut += 7) {
      const bytes = good.subarray(0, cut);
      expect(() => decode(bytes)).toThrow(PacketError);
      let theirs: unknown = null;
      try {
        dnsPacket.decode(bytes);
      } catch (e) {
        theirs = e;
      }
      if (theirs !== null) expect(theirs).not.toBeInstanceOf(PacketError);
    }
  });

  it('HTTPS/SVCB: dns-packet returns raw bytes; ours decode the same bytes to params', () => {
    for (const f of readdirSync(fixtureDir).filter((x) => /https|svcb/.test(x))) {
      const bytes = hex(readFileSync(new URL(f, fixtureDir), 'utf8'));
      const theirs = dnsPacket.decode(bytes) as DpAnswer;
      const ours = decode(bytes);
      expect(ours.answers.length).toBe(theirs.answers.length);
      for (const a of theirs.answers) expect(Buffer.isBuffer(a.data)).toBe(true);
      // Our encoding of the decoded RDATA gives back the raw bytes dns-packet saw.
      const again = dnsPacket.decode(encode(ours)) as DpAnswer;
      expect(again.answers.map((a: DpAnswer) => a.data.toString('hex'))).toEqual(theirs.answers.map((a: DpAnswer) => a.data.toString('hex')));
    }
  });
});
