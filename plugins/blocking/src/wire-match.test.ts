/**
 * The wire-name walk (`DomainTable.matchSuffixesWire`, `Engine.decideWire`)
 * against the string walk on what core's `readName` prints: the same values
 * for every name, whatever its letter case, escapes or compression.
 */
import { readName } from '@heimdall/core/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainTableBuilder } from './domain-table.js';
import { DECISION_BLOCKED, DECISION_MASK, DECISION_NONE, Engine, EngineBuilder } from './engine.js';
import { randomSeed } from './hash.js';
import { spec } from './test-util.js';

const keepFirst = (a: number) => a;

/** Wire form of labels (octets), optionally ending in a pointer to `ptr` instead of the root. */
function wire(labels: Uint8Array[], ptr?: number): number[] {
  const out: number[] = [];
  for (const l of labels) out.push(l.length, ...l);
  if (ptr === undefined) out.push(0);
  else out.push(0xc0 | (ptr >> 8), ptr & 0xff);
  return out;
}

// Labels drawn mostly from a small alphabet (so names collide with listed ones), with any octet now and then.
const octet = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...[...'abcxyzABZ019-'].map((c) => c.charCodeAt(0))) },
  { weight: 2, arbitrary: fc.constantFrom(0x2e, 0x5c, 0x22, 0x28, 0x29, 0x3b, 0x40, 0x24, 0x20, 0x00, 0x7f, 0xff, 0xc3) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const label = fc
  .uint8Array({ minLength: 1, maxLength: 6 })
  .chain((a) => fc.array(octet, { minLength: a.length, maxLength: a.length }).map((o) => Uint8Array.from(o)));
const labels = fc.array(label, { minLength: 0, maxLength: 5 });

describe('DomainTable.matchSuffixesWire', () => {
  it('finds exactly what matchSuffixes finds on the name readName prints (case, escapes, compression)', () => {
    fc.assert(
      fc.property(fc.array(labels, { minLength: 1, maxLength: 6 }), labels, labels, fc.boolean(), (listed, head, tail, compress) => {
        const b = new DomainTableBuilder(randomSeed(), 8);
        const msg: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        // The listed names go in as the strings readName prints (so escapes and dots inside labels are listed too).
        listed.forEach((ls, i) => {
          const at = msg.length;
          msg.push(...wire(ls));
          const name = readName(Buffer.from(msg), at).toLowerCase();
          if (name !== '') b.add(name, i + 1, keepFirst);
        });
        // The query: head labels, then either the tail in place or a pointer to an earlier copy of it.
        const tailAt = msg.length;
        msg.push(...wire(tail));
        const at = msg.length;
        msg.push(...(compress ? wire(head, tailAt) : wire([...head, ...tail])));
        const buf = Buffer.from(msg);
        const name = readName(buf, at);
        // Every suffix of the printed name after a '.' is listed too (its own value), so each boundary
        // the string walk finds shows up, with its hash: the wire walk must find the same ones.
        const lower = name.toLowerCase();
        for (let i = 0; i < lower.length; i++) if (lower[i] === '.' && i > 0) b.add(lower.slice(i + 1), 100 + i, keepFirst);
        if (lower !== '') b.add(lower, 99, keepFirst);
        const t = b.finish();
        const a = new Uint32Array(16);
        const w = new Uint32Array(16);
        const n = t.matchSuffixes(name, a);
        expect(t.matchSuffixesWire(buf, at, w), name).toBe(n);
        expect([...w.subarray(0, n)], name).toEqual([...a.subarray(0, n)]);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what readName refuses, writing nothing', () => {
    const t = new DomainTableBuilder(randomSeed(), 8).finish();
    const out = new Uint32Array(4);
    const cases: number[][] = [
      [3, 0x61, 0x62], // truncated label
      [3, 0x61, 0x62, 0x63], // no root
      [0x41, 0x61, 0], // reserved label type
      [1, 0x61, 0xc0], // truncated pointer
      [1, 0x61, 0xc0, 0], // pointer to itself (not backwards)
      [...Array.from({ length: 4 }, () => [63, ...new Array(63).fill(0x61)]).flat(), 0], // 256 octets
    ];
    for (const c of cases) {
      const buf = Buffer.from(c);
      expect(() => readName(buf, 0)).toThrow();
      expect(t.matchSuffixesWire(buf, 0, out)).toBe(-1);
    }
    expect(t.matchSuffixesWire(Buffer.from([0]), 1, out)).toBe(-1);
  });
});

describe('Engine.decideWire', () => {
  const b = new EngineBuilder(randomSeed());
  b.addText(spec(0, 0), 'ads.example.com\n||tracker.example.net^\n');
  b.addText(spec(1, 1), '/^x[0-9]+\\./\n');
  const e = new Engine(b.finish());
  const q = (name: string) => Buffer.from(wire(name.split('.').map((l) => Buffer.from(l, 'latin1'))));

  it('decides as decide() does, letters folded on the wire', () => {
    for (const name of ['ads.example.com', 'ADS.Example.COM', 'a.b.Tracker.Example.NET', 'example.com', 'x1.example.org']) {
      expect(e.decideWire(q(name), 0, 1)).toBe(e.decide(name, 1));
    }
    expect(e.decideWire(q('Sub.Tracker.example.net'), 0, 1) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decideWire(q('example.com'), 0, 1)).toBe(DECISION_NONE);
  });

  it('returns -1 where a regex entry applies to the client (the string is needed) or the name is malformed', () => {
    expect(e.wireDecides(1)).toBe(true);
    expect(e.wireDecides(2)).toBe(false);
    expect(e.decideWire(q('x1.example.org'), 0, 2)).toBe(-1);
    expect(e.decideWire(Buffer.from([5, 0x61]), 0, 1)).toBe(-1);
  });
});
