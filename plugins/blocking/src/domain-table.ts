/**
 * The domain set used by the blocking engine: an open-addressing hash table
 * of 64-bit name hashes in ONE `Uint32Array`, three words per slot
 * `[lane1, lane2, value]` so a probe touches a single cache line. `value` is
 * a non-zero 31-bit payload (the engine stores a palette index + 1); 0 marks an
 * empty slot. Linear probing; the capacity is not a power of two (slot =
 * multiply-shift range reduction) so the load factor can stay near
 * {@link TARGET_LOAD} without doubling memory.
 *
 * Memory: 12 bytes per slot, ≈ 17 bytes per entry at load 0.7 — 1M domains
 * take ≈ 17 MB of ArrayBuffer memory and almost nothing on the JS heap.
 *
 * False positives: two different names collide only if both 32-bit lanes
 * agree. With n entries and k suffix probes per query the probability that a
 * query is wrongly matched is about k·n / 2^64 (≈ 3·10^-13 for k = 5,
 * n = 10^6): below any other failure rate of a DNS resolver. Seeds are random
 * per build, so collisions cannot be aimed at.
 */
import { type HashSeed, hashName } from './hash.js';

/**
 * How `readName` (core's packet codec) prints an octet of a label: 0 as
 * itself, 1 as `\` + itself, 2 as `\DDD` (RFC 1035 §5.1). The wire-name walk
 * hashes exactly those characters so that it agrees with the string walk.
 */
const ESCAPE = new Uint8Array(256);
for (let i = 0; i < 256; i++) ESCAPE[i] = i <= 0x20 || i >= 0x7f ? 2 : 0;
for (const c of '."();\\@$') ESCAPE[c.charCodeAt(0)] = 1;

/** Load factor the builder sizes the final table for. */
export const TARGET_LOAD = 0.7;
/** Bit set on {@link DomainTable.matchSuffixes} outputs when the suffix is the whole name. */
export const FULL_NAME = 0x80000000;
/** Largest value the table can store. */
export const MAX_VALUE = 0x7fffffff;

/** Slots needed for `n` entries at the target load. */
export function capacityFor(n: number): number {
  return Math.max(8, Math.ceil(n / TARGET_LOAD) + 1);
}

/**
 * Read side of the table. Immutable once built; cheap to move between
 * threads (`slots.buffer` is transferable).
 */
export class DomainTable {
  /** `[lane1, lane2, value] × capacity`. */
  readonly slots: Uint32Array;
  readonly capacity: number;
  readonly size: number;
  readonly seed: HashSeed;
  /** The prefilter ({@link buildFilter}): 8 bits per entry, two bits set per entry in one 32-bit word. */
  readonly filter: Uint32Array;
  readonly #s1: number;
  readonly #s2: number;
  readonly #filterShift: number;
  /** Scratch of {@link matchSuffixesWire}: label offsets, and the characters one octet prints as. */
  readonly #labels = new Int32Array(128);
  readonly #seq = new Uint8Array(4);

  /** `filter` is computed from `slots` when not given (≈ 10 ms per million entries). */
  constructor(slots: Uint32Array, size: number, seed: HashSeed, filter?: Uint32Array) {
    if (slots.length % 3 !== 0 || slots.length === 0) throw new RangeError('DomainTable: slot array length must be a positive multiple of 3');
    this.slots = slots;
    this.capacity = slots.length / 3;
    this.size = size;
    this.seed = seed;
    this.#s1 = seed.s1 | 0;
    this.#s2 = seed.s2 | 0;
    this.filter = filter ?? buildFilter(slots, size);
    if ((this.filter.length & (this.filter.length - 1)) !== 0) throw new RangeError('DomainTable: filter length must be a power of two');
    this.#filterShift = 32 - Math.log2(this.filter.length);
  }

  /** The value stored for the exact hash pair, or 0. */
  getHash(h1: number, h2: number): number {
    const slots = this.slots;
    const cap = this.capacity;
    let i = slotOf(h1, h2, cap);
    for (;;) {
      const b = i * 3;
      const v = slots[b + 2]!;
      if (v === 0) return 0;
      if (slots[b] === h1 && slots[b + 1] === h2) return v;
      if (++i === cap) i = 0;
    }
  }

  /** The value stored for `name` (letters folded), or 0. */
  get(name: string): number {
    const h = new Uint32Array(2);
    hashName(name, this.seed, h);
    return this.getHash(h[0]!, h[1]!);
  }

  /**
   * Looks up every suffix of `name` that starts at a label boundary and has
   * at least two labels (`example.com`, …, the whole name — single-label
   * suffixes are never probed, see below), shortest first, and writes the
   * stored value of each one found into `out` (OR-ed with {@link FULL_NAME}
   * for the whole name). Returns how many were written (at most
   * `out.length`). Allocates nothing.
   */
  matchSuffixes(name: string, out: Uint32Array): number {
    // The table's fields in locals for the whole walk: per-boundary loads of
    // this.filter / this.slots cost ~15 % of a 5-label lookup (bench/blocking).
    const { filter, slots, capacity } = this;
    const fs = this.#filterShift;
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
        // Boundary: the state now hashes name.slice(i + 1).
        n = probe(filter, fs, slots, capacity, h1, h2, out, n, 0);
      }
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      // The two hash lanes (hash.ts), written out: a function call per character
      // here cost ~10 % of a lookup (bench/blocking).
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    return name.length === 0 ? n : probe(filter, fs, slots, capacity, h1, h2, out, n, FULL_NAME);
  }

  /**
   * {@link matchSuffixes} for a name in DNS wire format at `offset` of `buf`
   * (compression pointers followed), with exactly the result
   * `matchSuffixes(readName(buf, offset), out)` has, but without building the
   * string: the characters of the presentation form (letters folded, the
   * `\.`/`\DDD` escapes `readName` writes) are hashed straight from the
   * bytes, last label first. Returns -1, having written nothing, when the
   * name cannot be walked (truncated, reserved label type, a pointer that
   * does not point backwards, more than 127 hops or 255 octets), where
   * `readName` throws. Allocates nothing.
   */
  matchSuffixesWire(buf: Uint8Array, offset: number, out: Uint32Array): number {
    // Pass 1: where each label starts (a name has at most 127 labels).
    const labels = this.#labels;
    const len = buf.length;
    let count = 0;
    let p = offset;
    let limit = offset;
    let hops = 0;
    let wire = 1;
    if (offset < 0 || offset >= len) return -1;
    for (;;) {
      if (p >= len) return -1;
      const b = buf[p]!;
      if (b === 0) break;
      if (b >= 0xc0) {
        if (p + 1 >= len) return -1;
        const target = ((b & 0x3f) << 8) | buf[p + 1]!;
        if (target >= limit || ++hops > 127) return -1;
        p = limit = target;
        continue;
      }
      if (b >= 0x40) return -1;
      wire += b + 1;
      if (wire > 255 || p + 1 + b > len) return -1;
      labels[count++] = p;
      p += b + 1;
    }
    // Pass 2: the presentation form's characters, last to first, as matchSuffixes walks the string.
    const { filter, slots, capacity } = this;
    const fs = this.#filterShift;
    const esc = ESCAPE;
    const seq = this.#seq;
    let n = 0;
    let h1 = this.#s1;
    let h2 = this.#s2;
    let fed = 0; // characters hashed so far: the first one (the string's last) is never a boundary
    let first = true;
    for (let k = count - 1; k >= 0; k--) {
      const start = labels[k]!;
      for (let i = start + buf[start]!; i > start; i--) {
        const byte = buf[i]!;
        const e = esc[byte]!;
        let m: number;
        if (e === 0) {
          seq[0] = byte;
          m = 1;
        } else if (e === 1) {
          seq[0] = byte;
          seq[1] = 0x5c;
          m = 2;
        } else {
          seq[0] = 0x30 + (byte % 10);
          seq[1] = 0x30 + (((byte / 10) | 0) % 10);
          seq[2] = 0x30 + ((byte / 100) | 0);
          seq[3] = 0x5c;
          m = 4;
        }
        for (let j = 0; j < m; j++) {
          let c = seq[j]!;
          if (c === 0x2e && fed !== 0) {
            if (first) first = false;
            else n = probe(filter, fs, slots, capacity, h1, h2, out, n, 0);
          }
          if (c >= 0x41 && c <= 0x5a) c |= 0x20;
          h1 = Math.imul(h1 ^ c, 0x01000193);
          h2 = Math.imul(h2 ^ c, 0x5bd1e995);
          h2 ^= h2 >>> 15;
          fed++;
        }
      }
      if (k > 0) {
        // The dot between labels (never the string's last character: a label has at least one).
        if (first) first = false;
        else n = probe(filter, fs, slots, capacity, h1, h2, out, n, 0);
        h1 = Math.imul(h1 ^ 0x2e, 0x01000193);
        h2 = Math.imul(h2 ^ 0x2e, 0x5bd1e995);
        h2 ^= h2 >>> 15;
        fed++;
      }
    }
    return fed === 0 ? n : probe(filter, fs, slots, capacity, h1, h2, out, n, FULL_NAME);
  }
}

/**
 * One boundary of a suffix walk: the prefilter first (one word, usually
 * cached), then the table; when the hash pair is listed and `out` has room,
 * writes its value (OR-ed with `flag`) at `n`. Returns the new count. A
 * module function of locals, not a method: the walks keep the table's
 * fields in registers (reading them per boundary cost ~15 %).
 */
function probe(filter: Uint32Array, fs: number, slots: Uint32Array, cap: number, h1: number, h2: number, out: Uint32Array, n: number, flag: number): number {
  const a = h1 >>> 0;
  const b = h2 >>> 0;
  const w = filter[Math.imul(b ^ (a >>> 16), 0x85ebca6b) >>> fs]!;
  const bits = (1 << (a & 31)) | (1 << ((a >>> 5) & 31));
  if ((w & bits) !== bits || n >= out.length) return n;
  for (let s = slotOf(a, b, cap); ; ) {
    const o = s * 3;
    const v = slots[o + 2]!;
    if (v === 0) return n;
    if (slots[o] === a && slots[o + 1] === b) {
      out[n] = (v | flag) >>> 0;
      return n + 1;
    }
    if (++s === cap) s = 0;
  }
}

/**
 * Builds the prefilter: a Bloom filter with 8 bits per entry (power of two
 * words, at least 64) where each entry sets two bits of ONE 32-bit word, so a
 * check is a single memory access into an array ~1/24 the size of the table
 * (1 MiB at 1M entries: it stays in cache while the table does not). False
 * positive rate ≈ 5 %: most probes for unlisted suffixes never touch the
 * table.
 */
export function buildFilter(slots: Uint32Array, size: number): Uint32Array {
  const filter = new Uint32Array(filterWordsFor(size));
  const shift = 32 - Math.log2(filter.length);
  for (let o = 0; o < slots.length; o += 3) {
    if (slots[o + 2] === 0) continue;
    const a = slots[o]!;
    const b = slots[o + 1]!;
    const idx = Math.imul(b ^ (a >>> 16), 0x85ebca6b) >>> shift;
    filter[idx]! |= (1 << (a & 31)) | (1 << ((a >>> 5) & 31));
  }
  return filter;
}

/** Filter size (32-bit words, a power of two ≥ 64) for `n` entries at 8 bits per entry. */
export function filterWordsFor(n: number): number {
  let words = 64;
  while (words * 32 < n * 8 && words < 1 << 24) words *= 2;
  return words;
}

/** Home slot of a hash pair: Fibonacci mix of both lanes, multiply-shift reduced to [0, cap). */
function slotOf(h1: number, h2: number, cap: number): number {
  const m = Math.imul(h1 ^ (h2 >>> 11), 0x9e3779b1) >>> 0;
  return Math.floor((m * cap) / 4294967296);
}

/**
 * Write side: a growable table with merge-on-insert. `merge(old, incoming)`
 * decides the value when the same name is added twice (the engine combines
 * palette entries). Call {@link DomainTableBuilder.finish} once.
 */
export class DomainTableBuilder {
  #slots: Uint32Array;
  #cap: number;
  #size = 0;
  readonly seed: HashSeed;
  readonly #h = new Uint32Array(2);
  /** Prefilter maintained on insert, sized for `expected` (rebuilt at finish only if far off). */
  #filter: Uint32Array;
  #filterShift: number;

  constructor(seed: HashSeed, expected = 1024) {
    this.seed = seed;
    this.#cap = capacityFor(expected);
    this.#slots = new Uint32Array(this.#cap * 3);
    this.#filter = new Uint32Array(filterWordsFor(expected));
    this.#filterShift = 32 - Math.log2(this.#filter.length);
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Adds `name` with `value` (1…{@link MAX_VALUE}). When the name is already
   * present, stores `merge(existing, value)` instead. Returns true when the
   * name was new.
   */
  add(name: string, value: number, merge: (existing: number, incoming: number) => number): boolean {
    hashName(name, this.seed, this.#h);
    return this.addHash(this.#h[0]!, this.#h[1]!, value, merge);
  }

  /** {@link add} for a precomputed hash pair. */
  addHash(h1: number, h2: number, value: number, merge: (existing: number, incoming: number) => number): boolean {
    if (value <= 0 || value > MAX_VALUE) throw new RangeError('DomainTableBuilder: value out of range');
    if ((this.#size + 1) / this.#cap > 0.85) this.#resize(capacityFor((this.#size + 1) * 2));
    const slots = this.#slots;
    const cap = this.#cap;
    let i = slotOf(h1, h2, cap);
    for (;;) {
      const b = i * 3;
      const v = slots[b + 2]!;
      if (v === 0) {
        slots[b] = h1;
        slots[b + 1] = h2;
        slots[b + 2] = value;
        this.#size++;
        this.#filter[Math.imul(h2 ^ (h1 >>> 16), 0x85ebca6b) >>> this.#filterShift]! |= (1 << (h1 & 31)) | (1 << ((h1 >>> 5) & 31));
        return true;
      }
      if (slots[b] === h1 && slots[b + 1] === h2) {
        const m = merge(v, value);
        if (m <= 0 || m > MAX_VALUE) throw new RangeError('DomainTableBuilder: merged value out of range');
        slots[b + 2] = m;
        return false;
      }
      if (++i === cap) i = 0;
    }
  }

  /** Rewrites every stored value (used to renumber palette entries). */
  mapValues(fn: (v: number) => number): void {
    const slots = this.#slots;
    for (let o = 2; o < slots.length; o += 3) {
      const v = slots[o]!;
      if (v !== 0) slots[o] = fn(v);
    }
  }

  /**
   * Returns the read side. With `compact` (default) the table is first
   * resized to {@link TARGET_LOAD} (one rehash); without it, only when the
   * current load is outside 0.3…0.85.
   */
  finish(compact = true): DomainTable {
    const want = capacityFor(this.#size);
    const load = this.#size / this.#cap;
    if (want !== this.#cap && (compact || load < 0.3)) this.#resize(want);
    // The incremental filter is reused unless its size is far from right
    // (too small: false positives climb; too big with `compact`: wasted memory).
    const words = filterWordsFor(this.#size);
    const filter = this.#filter.length < words / 2 || (compact && this.#filter.length > words * 2) ? buildFilter(this.#slots, this.#size) : this.#filter;
    const t = new DomainTable(this.#slots, this.#size, this.seed, filter);
    this.#filter = new Uint32Array(64);
    this.#filterShift = 26;
    this.#slots = new Uint32Array(3);
    this.#cap = 1;
    this.#size = 0;
    return t;
  }

  #resize(cap: number): void {
    const old = this.#slots;
    const slots = new Uint32Array(cap * 3);
    for (let o = 0; o < old.length; o += 3) {
      const v = old[o + 2]!;
      if (v === 0) continue;
      const h1 = old[o]!;
      const h2 = old[o + 1]!;
      let i = slotOf(h1, h2, cap);
      for (;;) {
        const b = i * 3;
        if (slots[b + 2] === 0) {
          slots[b] = h1;
          slots[b + 1] = h2;
          slots[b + 2] = v;
          break;
        }
        if (++i === cap) i = 0;
      }
    }
    this.#slots = slots;
    this.#cap = cap;
  }
}
