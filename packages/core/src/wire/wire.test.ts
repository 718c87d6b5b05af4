import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encode } from '../packet/encode.js';
import { MessageReader } from '../packet/reader.js';
import { RecordType } from '../packet/types.js';
import {
  cacheKeyOf,
  cidrContains,
  copyForQuery,
  equalsIgnoreCase,
  formatIPv6,
  ipFamily,
  ipToBytes,
  KEY_CD,
  KEY_DO,
  KEY_EDNS,
  keyFlags,
  parseCidr,
  parseIPv4,
  parseIPv6,
  plainNameEnd,
  QuestionKeyInfo,
  queryKeyFlags,
  questionKey,
  skipName,
  trySkipName,
  writeTtls,
} from './index.js';

function query(name: string, o: { type?: number; edns?: boolean; do?: boolean; cd?: boolean; id?: number } = {}): Buffer {
  return encode({
    id: o.id ?? 0x1234,
    rd: true,
    cd: o.cd ?? false,
    questions: [{ name, type: o.type ?? RecordType.A }],
    edns: o.edns || o.do ? { dnssecOk: o.do ?? false } : undefined,
  });
}

describe('question key', () => {
  it('equals MessageReader.cacheKey() plus the flag character, with explicit second results', () => {
    const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
    const info = new QuestionKeyInfo();
    fc.assert(
      fc.property(
        fc.array(label, { minLength: 1, maxLength: 5 }),
        fc.constantFrom(1, 28, 16, 15, 65, 64, 2),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (labels, type, edns, dnssec, cd) => {
          const q = query(labels.join('.'), { type, edns, do: dnssec, cd });
          const r = new MessageReader(q);
          const flags = queryKeyFlags(q, r.questionEnd);
          expect(flags).toBe((edns || dnssec ? KEY_EDNS : 0) | (dnssec ? KEY_DO : 0) | (cd ? KEY_CD : 0));
          const key = questionKey(q, info);
          expect(key).toBe(r.cacheKey() + String.fromCharCode(0x30 + flags));
          expect(info.nameEnd).toBe(r.questionEnd - 4);
          expect(info.flags).toBe(flags);
          expect(keyFlags(key!)).toBe(flags);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('with a key memo (even of 1 or 2 slots, so every other call collides) gives exactly the keys made without one', () => {
    const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,30}$/);
    for (const slots of [1, 2, 4096]) {
      const memo = new QuestionKeyInfo(slots);
      const plain = new QuestionKeyInfo();
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.array(label, { minLength: 1, maxLength: 4 }), fc.constantFrom(1, 28, 65), fc.boolean(), fc.boolean(), fc.boolean()), {
            minLength: 1,
            maxLength: 20,
          }),
          (qs) => {
            // Each question twice in a row, then all again: hits, misses and replaced slots.
            for (const [labels, type, edns, dnssec, cd] of [...qs, ...qs]) {
              const q = query(labels.join('.'), { type, edns, do: dnssec, cd });
              const want = questionKey(q, plain);
              expect(questionKey(q, memo)).toBe(want);
              expect(questionKey(q, memo)).toBe(want);
              expect(memo.nameEnd).toBe(plain.nameEnd);
              expect(memo.flags).toBe(plain.flags);
            }
          },
        ),
        { numRuns: 100 },
      );
    }
    expect(() => new QuestionKeyInfo(3)).toThrow(/power of two/);
    expect(() => new QuestionKeyInfo(-4)).toThrow(/power of two/);
  });

  it('is case-insensitive for letters only, and keeps QTYPE bytes as they are', () => {
    const info = new QuestionKeyInfo();
    expect(questionKey(query('ExAmPle.COM'), info)).toBe(questionKey(query('example.com'), info));
    // HTTPS is type 65 (0x41 = 'A'): must not be folded into type 97.
    expect(questionKey(query('example.com', { type: 65 }), info)).not.toBe(questionKey(query('example.com', { type: 97 }), info));
  });

  it('folds the same key from any octets wherever the query sits (word path, unaligned, at the end of its ArrayBuffer)', () => {
    // Labels of any octets (0x40, 0x5b, 0xc1 … sit next to the capitals), the key and `folded` from a plain
    // octet-by-octet fold; each query at offsets 0-3 of a fresh ArrayBuffer and as its very last octets.
    const label = fc.uint8Array({ minLength: 1, maxLength: 63 });
    fc.assert(
      fc.property(fc.array(label, { minLength: 0, maxLength: 4 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 5 }), (labels, shift, tail) => {
        const name = Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]), Buffer.from([0])]);
        if (name.length > 255) return;
        const wire = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), name, Buffer.from([0, 0x41, 0, 1])]);
        const want = Buffer.from(name.map((c) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c)));
        const folded = !want.equals(name);
        const wantKey = Buffer.concat([want, Buffer.from([0, 0x41, 0, 1, 0x30])]).toString('latin1');
        const spare = new ArrayBuffer(shift + wire.length + tail);
        const placed = Buffer.from(spare, shift, wire.length);
        wire.copy(placed);
        for (const q of [placed, Buffer.from(wire)]) {
          for (const info of [new QuestionKeyInfo(), new QuestionKeyInfo(4)]) {
            expect(questionKey(q, info)).toBe(wantKey);
            expect(info.folded).toBe(folded);
            expect(info.nameEnd).toBe(12 + name.length);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('returns null for a compressed or truncated question and never throws', () => {
    const info = new QuestionKeyInfo();
    const q = query('example.com');
    const ptr = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    expect(questionKey(ptr, info)).toBeNull();
    for (let cut = 12; cut < q.length; cut++) expect(questionKey(q.subarray(0, cut), info)).toBeNull();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 80 }), (bytes) => {
        const k = questionKey(Buffer.from(bytes), info);
        expect(k === null || typeof k === 'string').toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('cacheKeyOf refuses responses, other opcodes, QDCOUNT != 1 and zone transfers', () => {
    const info = new QuestionKeyInfo();
    expect(cacheKeyOf(query('example.com'), info)).toBe(questionKey(query('example.com'), info));
    const resp = query('example.com');
    resp[2] |= 0x80;
    expect(cacheKeyOf(resp, info)).toBeNull();
    const notify = query('example.com');
    notify[2] |= 4 << 3;
    expect(cacheKeyOf(notify, info)).toBeNull();
    expect(cacheKeyOf(query('example.com', { type: 252 }), info)).toBeNull();
    expect(cacheKeyOf(query('example.com', { type: 251 }), info)).toBeNull();
    expect(cacheKeyOf(encode({ questions: [] }), info)).toBeNull();
  });
});

describe('names', () => {
  it('trySkipName / skipName / plainNameEnd agree and are bounded', () => {
    const q = query('www.example.com');
    expect(trySkipName(q, 12)).toBe(29);
    expect(skipName(q, 12)).toBe(29);
    expect(plainNameEnd(q, 12)).toBe(29);
    const ptr = Buffer.from([3, 0x61, 0x62, 0x63, 0, 1, 0x61, 0xc0, 0]);
    expect(trySkipName(ptr, 5)).toBe(9);
    expect(plainNameEnd(ptr, 5)).toBe(-1);
    expect(trySkipName(Buffer.from([0x40]), 0)).toBe(-1);
    expect(trySkipName(Buffer.from([5, 0x61]), 0)).toBe(-1);
    // 256 octets in place: refused without reading further.
    const long = Buffer.alloc(300, 1);
    expect(trySkipName(long, 0)).toBe(-1);
    expect(() => skipName(long, 0)).toThrow(expect.objectContaining({ code: 'NAME_TOO_LONG' }));
  });

  it('equalsIgnoreCase folds ASCII letters only', () => {
    expect(equalsIgnoreCase(Buffer.from('WwW'), 0, Buffer.from('www'), 0, 3)).toBe(true);
    expect(equalsIgnoreCase(Buffer.from([0xc0]), 0, Buffer.from([0xe0]), 0, 1)).toBe(false);
  });
});

describe('patching', () => {
  it('copyForQuery patches ID, RD, AA, AD and the question case without touching the stored bytes', () => {
    const stored = encode({ id: 1, qr: true, aa: true, ad: true, questions: [{ name: 'www.example.com', type: 1 }] });
    const before = Buffer.from(stored);
    const req = query('WWW.Example.COM', { id: 0xbeef });
    const out = copyForQuery(stored, req, 29, false, true);
    expect(stored.equals(before)).toBe(true);
    const r = new MessageReader(out);
    expect([r.id, r.rd, r.aa, r.ad, r.qname]).toEqual([0xbeef, true, false, false, 'WWW.Example.COM']);
  });

  it('copyForQuery copies the question name octet for octet wherever the two buffers sit (word copy, tail, unaligned)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[A-Za-z0-9]{1,20}$/), { minLength: 1, maxLength: 6 }),
        fc.nat(7),
        fc.nat(7),
        fc.boolean(),
        (labels, reqShift, wireShift, pooled) => {
          const name = labels.join('.');
          const stored = encode({
            id: 1,
            qr: true,
            questions: [{ name: name.toLowerCase(), type: 1 }],
            answers: [{ name: name.toLowerCase(), type: 1, ttl: 60, data: '192.0.2.1' }],
          });
          const q = query(name, { id: 0x1234 });
          // The request and the stored answer at every alignment inside bigger buffers, or as pool slices.
          const place = (b: Buffer, shift: number) => {
            if (pooled) {
              const c = Buffer.allocUnsafe(b.length);
              b.copy(c);
              return c;
            }
            const big = Buffer.alloc(b.length + shift + 5, 0xee);
            b.copy(big, shift);
            return big.subarray(shift, shift + b.length);
          };
          const req = place(q, reqShift);
          const wire = place(stored, wireShift);
          const nameEnd = 12 + name.length + 2;
          const out = copyForQuery(wire, req, nameEnd, false, true);
          expect(out.subarray(12, nameEnd)).toEqual(q.subarray(12, nameEnd));
          expect(out.subarray(nameEnd)).toEqual(stored.subarray(nameEnd));
          expect(new MessageReader(out).qname).toBe(name);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('writeTtls counts down and floors at 0, or writes a fixed TTL', () => {
    const wire = Buffer.alloc(8);
    wire.writeUInt32BE(300, 0);
    wire.writeUInt32BE(5, 4);
    const out = Buffer.alloc(8);
    writeTtls(out, wire, [0, 4], 10, -1);
    expect([out.readUInt32BE(0), out.readUInt32BE(4)]).toEqual([290, 0]);
    writeTtls(out, wire, [0, 4], 10, 30);
    expect([out.readUInt32BE(0), out.readUInt32BE(4)]).toEqual([30, 30]);
  });
});

describe('IP addresses', () => {
  it('parses every IPv6 form and formats RFC 5952', () => {
    const b = new Uint8Array(16);
    for (const [text, canonical] of [
      ['::', '::'],
      ['::1', '::1'],
      ['2001:DB8::1', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      ['::1.2.3.4', '::102:304'], // IPv4-compatible, not mapped
      ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
      ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ]) {
      parseIPv6(text, b, 0);
      expect(formatIPv6(b, 0)).toBe(canonical);
    }
    for (const bad of ['', ':', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'fe80::1%eth0', '::1.2.3', ' ::1', 'g::1', 1 as never]) {
      expect(() => parseIPv6(bad, b, 0), String(bad)).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
    }
  });

  it('parses strict dotted quads only', () => {
    const b = new Uint8Array(4);
    parseIPv4('192.0.2.255', b, 0);
    expect([...b]).toEqual([192, 0, 2, 255]);
    for (const bad of ['01.2.3.4', '1.2.3', '256.1.1.1', '0x7f.0.0.1', '1.2.3.4 ', '127.1', '']) {
      expect(() => parseIPv4(bad, b, 0), bad).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
    }
  });

  it('ipToBytes: IPv4-mapped IPv6 is IPv4, zones are ignored; ipFamily', () => {
    expect(ipToBytes('192.0.2.1')).toEqual(Buffer.from([192, 0, 2, 1]));
    expect(ipToBytes('::ffff:192.0.2.1')).toEqual(Buffer.from([192, 0, 2, 1]));
    expect(ipToBytes('fe80::1%eth0')?.toString('hex')).toBe('fe800000000000000000000000000001');
    expect(ipToBytes('nope')).toBeNull();
    expect([ipFamily('192.0.2.1'), ipFamily('::1'), ipFamily('fe80::1%lo0'), ipFamily('x')]).toEqual([4, 6, 6, 0]);
  });

  it('CIDR prefixes: host bits cleared, containment per family', () => {
    const net = parseCidr('192.0.2.77/26')!;
    expect(net).toEqual({ family: 4, bytes: Buffer.from([192, 0, 2, 64]), prefix: 26 });
    expect(cidrContains(net, ipToBytes('192.0.2.127')!)).toBe(true);
    expect(cidrContains(net, ipToBytes('192.0.2.128')!)).toBe(false);
    expect(cidrContains(net, ipToBytes('::ffff:192.0.2.100')!)).toBe(true);
    const v6 = parseCidr('2001:db8::/32')!;
    expect(cidrContains(v6, ipToBytes('2001:db8:ffff::1')!)).toBe(true);
    expect(cidrContains(v6, ipToBytes('192.0.2.1')!)).toBe(false);
    expect(parseCidr('0.0.0.0/0')).toEqual({ family: 4, bytes: Buffer.alloc(4), prefix: 0 });
    for (const bad of ['192.0.2.0/33', '192.0.2.0', '::/129', 'x/8', '1.2.3.4/-1']) expect(parseCidr(bad), bad).toBeNull();
  });
});
