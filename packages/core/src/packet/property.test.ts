/**
 * Property tests (fast-check): generated messages round-trip exactly, and
 * random or damaged bytes only ever raise PacketError, quickly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode } from './decode.js';
import type { EdnsOption } from './edns.js';
import { encode, encodingLength } from './encode.js';
import { PacketError } from './errors.js';
import { formatIPv4, formatIPv6 } from '../wire/ip.js';
import type { MessageInit, ResourceRecordInit } from './message.js';
import { readName } from './name.js';
import { normalize } from './packet.test-helpers.js';
import { MessageReader } from './reader.js';
import { truncateForUdp } from './truncate.js';
import { RecordType } from './types.js';

const RUNS = Number(process.env.CODEC_FUZZ_RUNS ?? 400);

// ---------- arbitraries ----------

/** A label: mostly hostname-like, sometimes any octets (printed with escapes). */
const label = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-zA-Z0-9_*-]{1,12}$/).map((s) => Buffer.from(s, 'latin1')) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 63 }).map((u) => Buffer.from(u)) },
);

/** A name in canonical presentation form (as the decoder prints it), at most 255 octets. */
const freshName = fc
  .array(label, { maxLength: 5 })
  .filter((labels) => labels.reduce((n, l) => n + l.length + 1, 1) <= 255)
  .map((labels) => {
    const parts: Buffer[] = [];
    for (const l of labels) parts.push(Buffer.from([l.length]), l);
    const wire = Buffer.concat([...parts, Buffer.from([0])]);
    return readName(wire, 0);
  });
const name = fc.oneof(
  { weight: 2, arbitrary: freshName },
  { weight: 3, arbitrary: fc.constantFrom('example.com', 'www.example.com', 'a.b.example.com', 'Example.COM', '', 'com', 'x.a\\.b.example.com') },
);

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (max = 40, min = 0) => fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u));
const latin1 = (max = 40, min = 0) => bytes(max, min).map((b) => b.toString('latin1'));
const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((u) => formatIPv4(u, 0));
const ipv6 = fc.array(fc.oneof(fc.constant(0), u16), { minLength: 8, maxLength: 8 }).map((g) => {
  const b = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) b.writeUInt16BE(g[i], i * 2);
  return formatIPv6(b, 0);
});
const typeList = fc.uniqueArray(u16, { maxLength: 12 }).map((t) => t.sort((a, b) => a - b));
const text = fc.string({ maxLength: 30 });

const KNOWN = new Set([
  1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 21, 28, 33, 35, 36, 39, 41, 43, 44, 46, 47, 48, 50, 51, 52, 53, 59, 60, 64, 65, 99, 257, 32768, 32769,
]);

const svcParams = fc.record(
  {
    mandatory: fc.uniqueArray(fc.integer({ min: 1, max: 0xffff }), { minLength: 1, maxLength: 4 }).map((k) => k.sort((a, b) => a - b)),
    alpn: fc.array(latin1(10, 1), { minLength: 1, maxLength: 3 }),
    noDefaultAlpn: fc.constant(true),
    port: u16,
    ipv4hint: fc.array(ipv4, { minLength: 1, maxLength: 3 }),
    ech: bytes(20),
    ipv6hint: fc.array(ipv6, { minLength: 1, maxLength: 2 }),
    dohpath: text,
    ohttp: fc.constant(true),
    unknown: fc
      .uniqueArray(fc.integer({ min: 9, max: 0xffff }), { minLength: 1, maxLength: 3 })
      .chain((keys) => fc.tuple(...keys.sort((a, b) => a - b).map((key) => bytes(8).map((value) => ({ key, value }))))),
  },
  { requiredKeys: [] },
);

const rdata: fc.Arbitrary<Pick<ResourceRecordInit, 'type' | 'data'>> = fc.oneof(
  ipv4.map((data) => ({ type: RecordType.A, data })),
  ipv6.map((data) => ({ type: RecordType.AAAA, data })),
  fc.tuple(fc.constantFrom(2, 3, 4, 5, 7, 8, 9, 12, 39), name).map(([type, data]) => ({ type, data })),
  fc.tuple(fc.constantFrom(15, 21, 36), u16, name).map(([type, preference, exchange]) => ({ type, data: { preference, exchange } })),
  fc.tuple(u16, name).map(([subtype, hostname]) => ({ type: RecordType.AFSDB, data: { subtype, hostname } })),
  fc.tuple(name, name).map(([rmailbx, emailbx]) => ({ type: RecordType.MINFO, data: { rmailbx, emailbx } })),
  fc.tuple(name, name).map(([mbox, txt]) => ({ type: RecordType.RP, data: { mbox, txt } })),
  fc.tuple(fc.constantFrom(16, 99), fc.array(bytes(255), { minLength: 1, maxLength: 4 })).map(([type, data]) => ({ type, data })),
  fc.tuple(latin1(20), latin1(20)).map(([cpu, os]) => ({ type: RecordType.HINFO, data: { cpu, os } })),
  fc.record({ mname: name, rname: name, serial: u32, refresh: u32, retry: u32, expire: u32, minimum: u32 }).map((data) => ({ type: RecordType.SOA, data })),
  fc.record({ priority: u16, weight: u16, port: u16, target: name }).map((data) => ({ type: RecordType.SRV, data })),
  fc.record({ flags: u8, tag: latin1(15, 1), value: latin1(60) }).map((data) => ({ type: RecordType.CAA, data })),
  fc
    .record({ order: u16, preference: u16, flags: latin1(3), services: latin1(20), regexp: latin1(40), replacement: name })
    .map((data) => ({ type: RecordType.NAPTR, data })),
  fc
    .tuple(fc.constantFrom(43, 59, 32768, 32769), fc.record({ keyTag: u16, algorithm: u8, digestType: u8, digest: bytes(48) }))
    .map(([type, data]) => ({ type, data })),
  fc.tuple(fc.constantFrom(48, 60), fc.record({ flags: u16, protocol: u8, algorithm: u8, publicKey: bytes(64) })).map(([type, data]) => ({ type, data })),
  fc
    .record({
      typeCovered: u16,
      algorithm: u8,
      labels: u8,
      originalTtl: u32,
      expiration: u32,
      inception: u32,
      keyTag: u16,
      signerName: name,
      signature: bytes(64),
    })
    .map((data) => ({ type: RecordType.RRSIG, data })),
  fc.record({ nextDomain: name, types: typeList }).map((data) => ({ type: RecordType.NSEC, data })),
  fc
    .record({ hashAlgorithm: u8, flags: u8, iterations: u16, salt: bytes(16), nextHashedOwner: bytes(32, 1), types: typeList })
    .map((data) => ({ type: RecordType.NSEC3, data })),
  fc.record({ hashAlgorithm: u8, flags: u8, iterations: u16, salt: bytes(16) }).map((data) => ({ type: RecordType.NSEC3PARAM, data })),
  fc.tuple(fc.constantFrom(52, 53), fc.record({ usage: u8, selector: u8, matchingType: u8, certificate: bytes(64) })).map(([type, data]) => ({ type, data })),
  fc.record({ algorithm: u8, fingerprintType: u8, fingerprint: bytes(32) }).map((data) => ({ type: RecordType.SSHFP, data })),
  fc.tuple(fc.constantFrom(64, 65), fc.record({ priority: u16, target: name, params: svcParams })).map(([type, data]) => ({ type, data })),
  fc
    .tuple(
      u16.filter((t) => !KNOWN.has(t)),
      bytes(40),
    )
    .map(([type, data]) => ({ type, data })),
);

/** Types whose format is defined for class IN only (RFC 3597 §4: opaque in other classes). */
const CLASS_IN_ONLY = new Set<number>([RecordType.A, RecordType.AAAA, RecordType.SRV, RecordType.NAPTR, RecordType.KX, RecordType.SVCB, RecordType.HTTPS]);

// TTLs up to 2^31-1: a TTL with the top bit set reads as 0 (RFC 2181 §8, tested in codec.test.ts).
const record: fc.Arbitrary<ResourceRecordInit> = fc
  .tuple(name, rdata, fc.oneof(fc.constant(1), u16), fc.integer({ min: 0, max: 0x7fffffff }))
  .map(([n, r, klass, ttl]) => ({ name: n, type: r.type, class: CLASS_IN_ONLY.has(r.type) ? 1 : klass, ttl, data: r.data }));

const ednsOption: fc.Arbitrary<EdnsOption> = fc.oneof(
  fc.tuple(fc.constantFrom<1 | 2>(1, 2), fc.nat(128), fc.nat(128), fc.uint8Array({ minLength: 16, maxLength: 16 })).map(([family, s, sc, raw]) => {
    const max = family === 1 ? 32 : 128;
    const source = s % (max + 1);
    const addr = Buffer.alloc(16);
    const n = (source + 7) >>> 3;
    Buffer.from(raw).copy(addr, 0, 0, n);
    if (source % 8) addr[n - 1] &= (0xff << (8 - (source % 8))) & 0xff;
    return {
      code: 8,
      family,
      sourcePrefixLength: source,
      scopePrefixLength: sc % (max + 1),
      address: family === 1 ? formatIPv4(addr, 0) : formatIPv6(addr, 0),
    } as EdnsOption;
  }),
  fc
    .tuple(bytes(8, 8), fc.option(bytes(32, 8), { nil: undefined }))
    .map(([client, server]) => (server === undefined ? { code: 10, client } : { code: 10, client, server }) as EdnsOption),
  fc.option(u16, { nil: undefined }).map((timeout) => (timeout === undefined ? { code: 11 } : { code: 11, timeout }) as EdnsOption),
  fc.nat(300).map((length) => ({ code: 12, length }) as EdnsOption),
  fc.tuple(u16, text).map(([infoCode, extraText]) => ({ code: 15, infoCode, extraText }) as EdnsOption),
  fc
    .tuple(
      u16.filter((c) => ![8, 10, 11, 12, 15].includes(c)),
      bytes(20),
    )
    .map(([code, data]) => ({ code, data }) as EdnsOption),
);

const message: fc.Arbitrary<MessageInit> = fc
  .record({
    id: u16,
    qr: fc.boolean(),
    opcode: fc.integer({ min: 0, max: 15 }),
    aa: fc.boolean(),
    tc: fc.boolean(),
    rd: fc.boolean(),
    ra: fc.boolean(),
    z: fc.boolean(),
    ad: fc.boolean(),
    cd: fc.boolean(),
    rcode: fc.integer({ min: 0, max: 0xfff }),
    questions: fc.array(fc.record({ name, type: u16, class: u16 }), { maxLength: 1 }),
    answers: fc.array(record, { maxLength: 5 }),
    authorities: fc.array(record, { maxLength: 3 }),
    additionals: fc.array(
      record.filter((r) => r.type !== RecordType.OPT),
      { maxLength: 3 },
    ),
    edns: fc.option(
      fc.record({
        udpPayloadSize: u16,
        extendedRcode: u8,
        version: u8,
        dnssecOk: fc.boolean(),
        flags: fc.integer({ min: 0, max: 0x7fff }),
        options: fc.array(ednsOption, { maxLength: 4 }),
      }),
      { nil: undefined },
    ),
  })
  .map((m) => {
    const out: MessageInit = { ...m };
    if (m.edns === undefined) {
      delete out.edns;
      out.rcode = m.rcode & 0xf;
    } else if (m.rcode > 15) {
      out.edns = { ...m.edns, extendedRcode: m.rcode >>> 4 };
    } else {
      out.rcode = (m.rcode & 0xf) | (m.edns.extendedRcode << 4);
    }
    return out;
  });

// ---------- helpers ----------

function onlyPacketErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PacketError)) throw e;
    expect(typeof e.code).toBe('string');
    expect(Number.isInteger(e.offset)).toBe(true);
  }
}

/** Runs every read path over `buf`; anything but PacketError fails. Re-encodes what decodes. */
function exercise(buf: Buffer): void {
  let decoded: ReturnType<typeof decode> | undefined;
  onlyPacketErrors(() => {
    decoded = decode(buf);
  });
  if (decoded) {
    // Whatever decodes re-encodes, and the re-encoding decodes to the same thing.
    const again = encode(decoded);
    expect(decode(again)).toEqual(decoded);
  }
  onlyPacketErrors(() => {
    const r = new MessageReader(buf);
    void [r.id, r.qr, r.opcode, r.aa, r.tc, r.rd, r.ra, r.z, r.ad, r.cd, r.rcode, r.qdcount, r.ancount, r.nscount, r.arcount];
    void [r.qname, r.qtype, r.qclass, r.questionEnd, r.cacheKey()];
    for (const v of r.records()) {
      void v.name;
      v.data();
    }
    void [r.dnssecOk, r.maxUdpPayload, r.fullRcode];
    r.edns();
  });
  onlyPacketErrors(() => truncateForUdp(buf, 64));
  onlyPacketErrors(() => truncateForUdp(buf, 512));
}

const corpus = fc.sample(message, { numRuns: 40, seed: 42 }).map((m) => encode(m));

// ---------- properties ----------

describe('properties', () => {
  it('decode(encode(m)) equals m; encodingLength matches; offsets work', () => {
    fc.assert(
      fc.property(message, fc.nat(16), (m, offset) => {
        const bytes = encode(m);
        expect(encodingLength(m)).toBe(bytes.length);
        expect(decode(bytes)).toEqual(normalize(m));
        const buf = Buffer.alloc(offset + bytes.length);
        expect(encode(m, buf, offset).equals(bytes)).toBe(true);
        // The lazy reader sees the same records.
        const r = new MessageReader(bytes);
        const views = [...r.records()].filter((v) => v.type !== RecordType.OPT);
        const n = normalize(m);
        expect(views.map((v) => ({ name: v.name, type: v.type, class: v.class, ttl: v.ttl, data: v.data() }))).toEqual([
          ...n.answers,
          ...n.authorities,
          ...n.additionals,
        ]);
        if (n.questions.length > 0) expect(r.qname).toBe(n.questions[0].name);
        expect(r.edns() ?? undefined).toEqual(n.edns);
      }),
      { numRuns: RUNS },
    );
  });

  it('truncateForUdp keeps a decodable prefix with OPT, within the size', () => {
    fc.assert(
      fc.property(message, fc.integer({ min: 12, max: 600 }), (m, size) => {
        const bytes = encode(m);
        const t = truncateForUdp(bytes, size);
        const d = decode(t);
        const n = normalize(m);
        const minimum = encode({ ...m, answers: [], authorities: [], additionals: [] }).length;
        if (minimum <= size) expect(t.length).toBeLessThanOrEqual(size);
        if (t !== bytes) {
          const all = [...n.answers, ...n.authorities, ...n.additionals];
          const kept = [...d.answers, ...d.authorities, ...d.additionals];
          expect(kept).toEqual(all.slice(0, kept.length));
          if (d.answers.length < n.answers.length || d.authorities.length < n.authorities.length) expect(d.tc).toBe(true);
          if (n.edns && t.length <= size && minimum <= size) expect(d.edns).toEqual(n.edns);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('bad encoder input only raises PacketError', () => {
  it('records of every type with arbitrary data, options and fields', () => {
    const types = [...KNOWN, 65280];
    const junk = fc.anything({ maxDepth: 2, withBigInt: true, withTypedArray: true, withNullPrototype: true });
    const nasty = fc.oneof(
      junk,
      fc.record({ priority: junk, target: junk, params: fc.record({ unknown: junk, alpn: junk, mandatory: junk, port: junk }, { requiredKeys: [] }) }),
      fc.array(junk, { maxLength: 3 }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        nasty,
        fc.oneof(name, junk),
        fc.oneof(
          fc.constant(undefined),
          fc.array(fc.oneof(junk, fc.record({ code: fc.constantFrom(8, 10, 11, 12, 15, 3), data: junk, client: junk, length: junk })), { maxLength: 2 }),
        ),
        (type, data, owner, options) => {
          onlyPacketErrors(() =>
            encode({
              questions: [{ name: owner as string, type }],
              answers: [{ name: owner as string, type, data: data as never }],
              edns: options === undefined ? undefined : { options: options as never },
            }),
          );
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  it('wrong top-level shapes', () => {
    for (const m of [
      null,
      1,
      'x',
      [],
      { questions: 1 },
      { answers: [1] },
      { answers: [{}] },
      { edns: 1 },
      { edns: { options: 1 } },
      { id: -1 },
      { rcode: 1.5 },
    ]) {
      onlyPacketErrors(() => encode(m as never));
      onlyPacketErrors(() => encodingLength(m as never));
    }
  });
});

describe('bad input only raises PacketError, quickly', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(bytes(600), (b) => exercise(b)),
      { numRuns: RUNS * 2 },
    );
  });

  it('random bytes after a plausible header', () => {
    fc.assert(
      fc.property(fc.tuple(u16, u16, fc.nat(4), fc.nat(4), fc.nat(4), fc.nat(4)), bytes(300), ([id, flags, qd, an, ns, ar], body) => {
        const h = Buffer.alloc(12);
        h.writeUInt16BE(id, 0);
        h.writeUInt16BE(flags, 2);
        h.writeUInt16BE(qd, 4);
        h.writeUInt16BE(an, 6);
        h.writeUInt16BE(ns, 8);
        h.writeUInt16BE(ar, 10);
        exercise(Buffer.concat([h, body]));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('bit flips, truncations, huge counts and pointer loops in valid messages', () => {
    const mutation = fc.oneof(
      fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 4 }).map((flips) => (b: Buffer) => {
        const c = Buffer.from(b);
        for (const [at, bit] of flips) c[at % c.length] ^= 1 << bit;
        return c;
      }),
      fc.nat().map((cut) => (b: Buffer) => b.subarray(0, cut % b.length)),
      fc.tuple(fc.constantFrom(4, 6, 8, 10), fc.constantFrom(0xffff, 0x8000, 0x0100)).map(([at, v]) => (b: Buffer) => {
        const c = Buffer.from(b);
        c.writeUInt16BE(v, at);
        return c;
      }),
      fc.tuple(fc.nat(), fc.nat(3)).map(([at, kind]) => (b: Buffer) => {
        // A pointer to itself, just ahead, to the start of the header, or to the end.
        const c = Buffer.from(b);
        const p = 12 + (at % Math.max(1, c.length - 13));
        const target = [p, p + 2, 0, c.length][kind] & 0x3fff;
        c[p] = 0xc0 | (target >> 8);
        c[p + 1] = target & 0xff;
        return c;
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...corpus), fc.array(mutation, { minLength: 1, maxLength: 3 }), (b, ms) => {
        let c = b;
        for (const m of ms) c = c.length > 13 ? m(c) : c;
        const start = performance.now();
        exercise(c);
        expect(performance.now() - start).toBeLessThan(250);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('a chain of pointers, each to the previous one, ends within the name-length bound', () => {
    // 12-byte header, 1 question whose name is a long chain of backward pointers.
    const parts = [Buffer.from('0000000000010000000000000161', 'hex'), Buffer.from([0])];
    const chain: number[] = [];
    for (let i = 0; i < 4000; i++) {
      const target = i === 0 ? 12 : 15 + (i - 1) * 4;
      chain.push(0x01, 0x61, 0xc0 | (target >> 8), target & 0xff);
    }
    const buf = Buffer.concat([...parts, Buffer.from(chain), Buffer.from([0, 1, 0, 1])]);
    const r = new MessageReader(buf);
    expect(r.qname).toBe('a');
    const start = performance.now();
    expect(() => readName(buf, buf.length - 8)).toThrow(expect.objectContaining({ code: 'NAME_TOO_LONG' }));
    expect(performance.now() - start).toBeLessThan(50);
  });
});
