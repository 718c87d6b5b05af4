import { MessageReader } from '@heimdall/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeQuery } from './test-util.js';
import { KEY_CD, KEY_DO, KEY_EDNS, KEY_SUFFIX, keyInfo, nameToWire, queryKeyFlags, questionKey } from './wire.js';

describe('questionKey', () => {
  it('equals MessageReader.cacheKey() plus the flag character', () => {
    const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
    fc.assert(
      fc.property(
        fc.array(label, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('A', 'AAAA', 'TXT', 'MX', 'HTTPS', 'SVCB', 'NS'),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (labels, type, edns, dnssec, cd) => {
          const q = makeQuery(labels.join('.'), { type: type as any, edns, do: dnssec, cd });
          const r = new MessageReader(q);
          const flags = queryKeyFlags(q, r.questionEnd);
          expect(flags).toBe((edns || dnssec ? KEY_EDNS : 0) | (dnssec ? KEY_DO : 0) | (cd ? KEY_CD : 0));
          expect(questionKey(q)).toBe(r.cacheKey() + KEY_SUFFIX[flags]);
          expect(keyInfo.nameEnd).toBe(r.questionEnd - 4);
          expect(keyInfo.flags).toBe(flags);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is case-insensitive for letters only, and keeps QTYPE bytes as they are', () => {
    expect(questionKey(makeQuery('ExAmPle.COM'))).toBe(questionKey(makeQuery('example.com')));
    // HTTPS is type 65 (0x41 = 'A'): must not be folded into type 97.
    const withType = (t: number) => {
      const q = makeQuery('example.com');
      q.writeUInt16BE(t, q.length - 4);
      return q;
    };
    expect(questionKey(withType(65))).not.toBe(questionKey(withType(97)));
    expect(questionKey(withType(65))).toBe(new MessageReader(withType(65)).cacheKey() + KEY_SUFFIX[0]);
  });

  it('returns null for a compressed or truncated question and never throws', () => {
    const q = makeQuery('example.com');
    const ptr = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    expect(questionKey(ptr)).toBeNull();
    for (let cut = 12; cut < q.length; cut++) expect(questionKey(q.subarray(0, cut))).toBeNull();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 80 }), (bytes) => {
        const k = questionKey(Buffer.from(bytes));
        expect(k === null || typeof k === 'string').toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('nameToWire', () => {
  it('encodes, lowercases and handles escapes', () => {
    expect(nameToWire('Example.COM.')).toEqual(Buffer.from('\x07example\x03com\x00', 'latin1'));
    expect(nameToWire('')).toEqual(Buffer.from([0]));
    expect(nameToWire('.')).toEqual(Buffer.from([0]));
    expect(nameToWire('a\\.b.c')).toEqual(Buffer.from('\x03a.b\x01c\x00', 'latin1'));
    expect(nameToWire('\\065.x')).toEqual(Buffer.from('\x01a\x01x\x00', 'latin1'));
    expect(() => nameToWire('\\300.x')).toThrow(/over 255/);
    expect(() => nameToWire('a\\')).toThrow(/dangling/);
    expect(() => nameToWire('a b')).toThrow(/escaped/);
    expect(() => nameToWire(`${'a.'.repeat(128)}com`)).toThrow(/255/);
  });
});
