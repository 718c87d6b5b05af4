import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildFilter, DomainTableBuilder, FULL_NAME } from './domain-table.js';
import { FIXED_SEED, randomSeed } from './hash.js';

const keepFirst = (a: number) => a;

/** The oracle: how many listed names are `name` or a suffix of it with two labels or more. */
function naiveMatchCount(listed: ReadonlySet<string>, name: string): number {
  const labels = name.toLowerCase().split('.');
  let count = 0;
  for (let i = 0; i < labels.length - 1 || (i === 0 && labels.length === 1); i++) if (listed.has(labels.slice(i).join('.'))) count++;
  return count;
}

describe('DomainTable', () => {
  it('finds every suffix at label boundaries, shortest first, flags the full name', () => {
    const b = new DomainTableBuilder(FIXED_SEED, 4);
    b.add('example.com', 1, keepFirst);
    b.add('ads.example.com', 2, keepFirst);
    b.add('com', 3, keepFirst);
    const t = b.finish();
    const out = new Uint32Array(8);
    expect([...out.subarray(0, t.matchSuffixes('x.ads.example.com', out))]).toEqual([1, 2]); // 'com' is a single label: not probed as a suffix
    expect([...out.subarray(0, t.matchSuffixes('ADS.Example.COM', out))]).toEqual([1, (2 | FULL_NAME) >>> 0]);
    expect([...out.subarray(0, t.matchSuffixes('com', out))]).toEqual([(3 | FULL_NAME) >>> 0]);
    expect(t.matchSuffixes('example.org', out)).toBe(0);
    expect(t.matchSuffixes('badexample.com', out)).toBe(0); // not 'example.com'
    expect(t.matchSuffixes('', out)).toBe(0);
    expect(t.get('Example.com')).toBe(1);
    expect(t.size).toBe(3);
  });
  it('merges duplicates and grows', () => {
    const b = new DomainTableBuilder(randomSeed(), 1);
    for (let i = 0; i < 5000; i++) b.add(`d${i}.example`, 1, (a, x) => a + x);
    for (let i = 0; i < 5000; i += 2) b.add(`d${i}.example`, 1, (a, x) => a + x);
    const t = b.finish();
    expect(t.size).toBe(5000);
    expect(t.get('d0.example')).toBe(2);
    expect(t.get('d1.example')).toBe(1);
    expect(t.get('d5000.example')).toBe(0);
    expect(t.capacity).toBeLessThan(5000 / 0.69);
  });
  it('the filter kept on insert equals one rebuilt from the slots; no false negatives', () => {
    const b = new DomainTableBuilder(randomSeed(), 3000);
    for (let i = 0; i < 3000; i++) b.add(`n${i}.filter.example`, 1, keepFirst);
    const t = b.finish(false);
    expect([...t.filter]).toEqual([...buildFilter(t.slots, t.size)]);
    const out = new Uint32Array(8);
    for (let i = 0; i < 3000; i++) expect(t.matchSuffixes(`n${i}.filter.example`, out)).toBe(1);
    // a badly under-sized filter is rebuilt at finish
    const b2 = new DomainTableBuilder(randomSeed(), 10);
    for (let i = 0; i < 5000; i++) b2.add(`m${i}.filter.example`, 1, keepFirst);
    const t2 = b2.finish(false);
    expect(t2.filter.length).toBeGreaterThanOrEqual(5000 / 4 / 2);
    for (let i = 0; i < 5000; i++) expect(t2.matchSuffixes(`a.m${i}.filter.example`, out)).toBe(1);
  });

  it('agrees with a naive set of suffixes on random names', () => {
    const label = fc.stringMatching(/^[a-z0-9]{1,6}$/);
    const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join('.'));
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 60 }), fc.array(name, { maxLength: 30 }), (listed, queries) => {
        const seed = randomSeed();
        const b = new DomainTableBuilder(seed, 4);
        const naive = new Set(listed);
        for (const [i, n] of listed.entries()) b.add(n, i + 1, keepFirst);
        const t = b.finish();
        const out = new Uint32Array(130);
        for (const q of [...queries, ...listed.map((l) => `x.${l}`)]) {
          const n = t.matchSuffixes(q, out);
          expect(n).toBe(naiveMatchCount(naive, q));
          // Shortest suffix first, the whole name (when listed) last and flagged.
          const values = [...out.subarray(0, n)].map((v) => (v & ~FULL_NAME) >>> 0);
          const want = q
            .split('.')
            .map((_, k, l) => l.slice(k).join('.'))
            .filter((sfx, k, l) => (k < l.length - 1 || l.length === 1) && naive.has(sfx))
            .reverse()
            .map((sfx) => listed.indexOf(sfx) + 1);
          expect(values).toEqual(want);
        }
      }),
      { numRuns: 200 },
    );
  });
});
