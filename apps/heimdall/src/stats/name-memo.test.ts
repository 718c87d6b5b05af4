import { readName } from '@heimdall/core/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MISS, NameMemo, NOT_MEMOIZABLE } from './name-memo.js';

const wire = (labels: number[][]): Buffer => Buffer.from([...labels.flatMap((l) => [l.length, ...l]), 0]);

describe('NameMemo', () => {
  it('gives back what readName prints for the octets it was given, and misses on any other octets', () => {
    const octet = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(0x61, 0x41, 0x62, 0x42, 0x2e, 0x30) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    );
    const name = fc.array(fc.array(octet, { minLength: 1, maxLength: 5 }), { maxLength: 6 });
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 40 }), fc.constantFrom(2, 4, 4096), (names, slots) => {
        const memo = new NameMemo(slots); // few slots: names collide and replace one another
        for (const n of [...names, ...names]) {
          const buf = wire(n);
          const text = readName(buf, 0);
          const at = memo.find(buf, 0);
          if (at >= 0) {
            expect(memo.text[at]).toBe(text);
            expect(memo.lower[at]).toBe(text.toLowerCase());
          } else {
            expect(at).toBe(buf.length <= 64 ? MISS : NOT_MEMOIZABLE);
            if (at === MISS) memo.store(buf, 0, text, text.toLowerCase());
          }
        }
        // Every name fits and was stored: the second pass finds the last one stored.
        const last = wire(names[names.length - 1]!);
        if (last.length <= 64) expect(memo.find(last, 0)).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 500 },
    );
  });

  it('does not memoize compressed, long or malformed names', () => {
    const memo = new NameMemo();
    expect(memo.find(Buffer.from([1, 0x61, 0xc0, 0]), 0)).toBe(NOT_MEMOIZABLE);
    expect(memo.find(Buffer.from([5, 0x61]), 0)).toBe(NOT_MEMOIZABLE);
    expect(memo.find(wire([new Array(63).fill(0x61), [0x62]]), 0)).toBe(NOT_MEMOIZABLE);
    expect(memo.find(Buffer.from([0]), 0)).toBe(MISS);
  });

  it('keeps two names that share a slot (two-way), where a direct-mapped memo would miss on every alternation', () => {
    const memo = new NameMemo(4096);
    const a = wire([[0x61]]);
    memo.find(a, 0);
    memo.store(a, 0, 'a', 'a');
    const slotA = memo.find(a, 0);
    // A name whose own slot is a's (the slot a miss would take).
    let b = a;
    for (let i = 0; i < 1_000_000 && b === a; i++) {
      const c = wire([
        [
          0x62,
          ...String(i)
            .split('')
            .map((d) => d.charCodeAt(0)),
        ],
      ]);
      if (memo.find(c, 0) === MISS && (memo as unknown as { missSlot: number }).missSlot === slotA) b = c;
    }
    expect(b).not.toBe(a);
    memo.find(b, 0);
    memo.store(b, 0, readName(b, 0), readName(b, 0));
    for (let i = 0; i < 3; i++) {
      expect(memo.text[memo.find(a, 0)]).toBe('a');
      expect(memo.text[memo.find(b, 0)]).toBe(readName(b, 0));
    }
  });
});

describe('NameMemo by question key', () => {
  it('finds a linked key until its slot holds another name, and never past its bound', () => {
    const memo = new NameMemo(2); // one pair of slots: every name competes for the same two
    const put = (name: number[][]): number => {
      const buf = wire(name);
      const at = memo.find(buf, 0);
      return at >= 0 ? at : memo.store(buf, 0, readName(buf, 0), readName(buf, 0));
    };
    const a = put([[0x61]]);
    memo.linkKey('key-a', a);
    expect(memo.findKey('key-a')).toBe(a);
    expect(memo.findKey('key-b')).toBe(MISS);
    const b = put([[0x62]]);
    memo.linkKey('key-b', b);
    expect(memo.findKey('key-a')).toBe(a);
    put([[0x63]]); // replaces the older of the pair: a's slot
    expect(memo.findKey('key-a')).toBe(MISS);
    expect(memo.findKey('key-b')).toBe(b);
    // The index holds at most as many keys as there are slots, then starts again.
    memo.linkKey('key-x', b);
    expect(memo.findKey('key-b')).toBe(MISS);
    expect(memo.findKey('key-x')).toBe(b);
  });
});
