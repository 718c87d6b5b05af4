/**
 * Benchmark peers of the blocking plugin's domain set, kept for measurement
 * only (`bench/blocking.bench.ts`, the plugin's README): not part of the
 * plugin. First an alternative layout: the same 64-bit suffix hashes as {@link DomainTable}, but
 * stored densely as sorted `[lane1, lane2, value]` triples with a 2^16-entry
 * directory on the top bits of lane 1, then a binary search inside the
 * bucket (≈ 15 entries at 1M).
 *
 * 12 bytes per entry + 256 KiB (≈ 12.3 MB at 1M: ~30 % less than the hash
 * table) at the price of two dependent memory accesses and a short search per
 * probe. The engine uses {@link DomainTable}; this one loses on lookup time.
 */
import { FULL_NAME } from '../../plugins/blocking/src/domain-table.js';
import type { HashSeed } from '../../plugins/blocking/src/hash.js';

const DIR_BITS = 16;

/** Sorted-array domain set (read side). */
export class SortedDomainTable {
  readonly data: Uint32Array;
  readonly dir: Uint32Array;
  readonly size: number;
  readonly #s1: number;
  readonly #s2: number;

  /**
   * Builds from unsorted `[lane1, lane2, value]` triples (duplicates keep the
   * first value). Sorting is an LSD radix sort on lane 1 (two 16-bit passes)
   * followed by an insertion sort of equal-lane-1 runs on lane 2.
   */
  constructor(triples: Uint32Array, seed: HashSeed) {
    this.#s1 = seed.s1 | 0;
    this.#s2 = seed.s2 | 0;
    const n = triples.length / 3;
    let a = triples.slice();
    let b = new Uint32Array(a.length);
    for (let shift = 0; shift < 32; shift += 16) {
      const count = new Uint32Array(65537);
      for (let i = 0; i < n; i++) count[((a[i * 3]! >>> shift) & 0xffff) + 1]!++;
      for (let k = 1; k < 65537; k++) count[k]! += count[k - 1]!;
      for (let i = 0; i < n; i++) {
        const d = count[(a[i * 3]! >>> shift) & 0xffff]!++ * 3;
        b[d] = a[i * 3]!;
        b[d + 1] = a[i * 3 + 1]!;
        b[d + 2] = a[i * 3 + 2]!;
      }
      const t = a;
      a = b;
      b = t;
    }
    // Order equal lane-1 runs by lane 2 and drop duplicates.
    let w = 0;
    for (let i = 0; i < n; ) {
      let j = i + 1;
      while (j < n && a[j * 3] === a[i * 3]) j++;
      const run: [number, number][] = [];
      for (let k = i; k < j; k++) run.push([a[k * 3 + 1]!, a[k * 3 + 2]!]);
      if (run.length > 1) run.sort((x, y) => x[0] - y[0]);
      let prev = -1;
      for (const [h2, v] of run) {
        if (h2 === prev) continue;
        prev = h2;
        b[w * 3] = a[i * 3]!;
        b[w * 3 + 1] = h2;
        b[w * 3 + 2] = v;
        w++;
      }
      i = j;
    }
    this.data = b.slice(0, w * 3);
    this.size = w;
    const dir = new Uint32Array((1 << DIR_BITS) + 1);
    for (let i = 0; i < w; i++) dir[(this.data[i * 3]! >>> (32 - DIR_BITS)) + 1]!++;
    for (let k = 1; k < dir.length; k++) dir[k]! += dir[k - 1]!;
    this.dir = dir;
  }

  /** Stored value for a hash pair, or 0. */
  getHash(h1: number, h2: number): number {
    const data = this.data;
    const top = h1 >>> (32 - DIR_BITS);
    let lo = this.dir[top]!;
    let hi = this.dir[top + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const k1 = data[mid * 3]!;
      if (k1 < h1 || (k1 === h1 && data[mid * 3 + 1]! < h2)) lo = mid + 1;
      else hi = mid;
    }
    if (lo < this.size && data[lo * 3] === h1 && data[lo * 3 + 1] === h2) return data[lo * 3 + 2]!;
    return 0;
  }

  /**
   * Same contract as `DomainTable.matchSuffixes`, and on purpose the same
   * walk (only the probe differs), so the benchmark compares table layouts.
   * `bench/blocking.bench.ts` checks both agree before it measures.
   */
  matchSuffixes(name: string, out: Uint32Array): number {
    const max = out.length;
    let n = 0;
    let h1 = this.#s1;
    let h2 = this.#s2;
    // The first boundary (the single last label) is skipped: a single label is
    // a public suffix under the PSL default rule `*`, refused at build time,
    // so the table never holds one.
    let first = true;
    for (let i = name.length - 1; i >= 0; i--) {
      let c = name.charCodeAt(i);
      if (c === 0x2e && i < name.length - 1 && first) {
        first = false;
      } else if (c === 0x2e && i < name.length - 1) {
        const v = this.getHash(h1 >>> 0, h2 >>> 0);
        if (v !== 0 && n < max) out[n++] = v;
      }
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    if (name.length === 0) return n;
    const v = this.getHash(h1 >>> 0, h2 >>> 0);
    if (v !== 0 && n < max) out[n++] = (v | FULL_NAME) >>> 0;
    return n;
  }
}

/**
 * The naive peer: a `Set` of every listed name; a lookup slices each suffix
 * of the query and asks the set. Simple and allocation-heavy.
 */
export class NaiveSuffixSet {
  readonly set = new Set<string>();
  add(name: string): void {
    this.set.add(name);
  }
  /** Number of listed suffixes of `name` (lowercased first) with at least two labels, plus the name itself. */
  matchCount(name: string): number {
    const n = name.toLowerCase();
    let count = this.set.has(n) ? 1 : 0;
    const last = n.lastIndexOf('.');
    let i = n.indexOf('.');
    while (i >= 0 && i < last) {
      if (this.set.has(n.slice(i + 1))) count++;
      i = n.indexOf('.', i + 1);
    }
    return count;
  }
}
