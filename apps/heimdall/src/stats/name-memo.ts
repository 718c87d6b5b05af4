/**
 * A direct-mapped memo of question names by their wire octets: the stats
 * plugin's way to get a query's name as text (and lower-cased) without
 * decoding it again for every query. A hit costs one hash pass and one
 * compare pass over the octets (no string built, no escaping); a miss
 * decodes as usual and takes the slot (two-way: a slot and its neighbour). Only uncompressed names of at most
 * {@link WIDTH} octets are kept (the usual question name); others are not
 * memoized. Memory is fixed: 16384 slots × 64 octets (1 MiB), and the strings held.
 *
 * Quicker still, a slot can be found by the query's question key
 * (`ctx.questionKey()`, computed once per query and the same string object
 * for a repeated question): {@link findKey} is one `Map` lookup, no pass over
 * the octets. The key index holds at most as many keys as there are slots
 * (then it is emptied at once), and a key whose slot was taken by another
 * name since is not trusted (each slot counts its stores).
 */
/** Longest wire name memoized (octets, root label included). */
export const WIDTH = 64;
/** {@link NameMemo.find}: the name cannot be memoized (compressed, too long, malformed): decode it. */
export const NOT_MEMOIZABLE = -2;
/** {@link NameMemo.find}: not held; {@link NameMemo.store} puts it in. */
export const MISS = -1;

export class NameMemo {
  private readonly bytes: Uint8Array;
  private readonly lens: Uint8Array;
  /** Presentation form (as `readName` prints it) by slot. */
  readonly text: string[];
  /** The same, lower-cased, by slot. */
  readonly lower: string[];
  /** A caller's number per slot (the stats plugin keeps the name's top-k counter there); -1 when stored. */
  readonly hint: Int32Array;
  private readonly mask: number;
  /** Per pair of slots: which one the next store replaces when both are full. */
  private readonly victim: Uint8Array;
  private missSlot = 0;
  private missLen = 0;
  /** Question key → `generation × slots + slot` ({@link findKey}). */
  private readonly byKey = new Map<string, number>();
  /** Per slot: how many names were stored in it (mod 2^16), so that a key of an earlier name is not trusted. */
  private readonly generation: Uint16Array;
  private readonly slots: number;

  /** `slots`: a power of two. */
  constructor(slots = 16384) {
    if (slots < 2 || (slots & (slots - 1)) !== 0) throw new RangeError('slots must be a power of two, at least 2');
    this.mask = slots - 1;
    this.bytes = new Uint8Array(slots * WIDTH);
    this.lens = new Uint8Array(slots);
    this.text = new Array<string>(slots).fill('');
    this.lower = new Array<string>(slots).fill('');
    this.hint = new Int32Array(slots).fill(-1);
    this.victim = new Uint8Array(slots >> 1);
    this.generation = new Uint16Array(slots);
    this.slots = slots;
  }

  /**
   * The slot of the name whose question key is `key` (linked by
   * {@link linkKey}), or {@link MISS}. Exact when keys are linked only for
   * names without capitals (the key then holds the name's own octets) to a
   * slot {@link find} or {@link store} gave for those octets.
   */
  findKey(key: string): number {
    const v = this.byKey.get(key);
    if (v === undefined) return MISS;
    const slot = v & this.mask;
    return this.generation[slot] === Math.floor(v / this.slots) ? slot : MISS;
  }

  /** Links a question key to the slot holding its name (from {@link find} or {@link store}). */
  linkKey(key: string, slot: number): void {
    const index = this.byKey;
    // Bounded: one key per slot on average, then start again (a key costs one Map entry and keeps its string).
    if (index.size >= this.slots) index.clear();
    index.set(key, this.generation[slot]! * this.slots + slot);
  }

  /**
   * The slot holding the name at `offset`, {@link MISS} or {@link NOT_MEMOIZABLE}.
   *
   * Cost: a walk over the labels (no per-octet work), a hash taking four
   * octets per multiply, and a compare four octets at a time. Hashing one
   * octet per multiply (FNV-1a) was half of a hit's time: each multiply waits
   * for the one before.
   */
  find(buf: Uint8Array, offset: number): number {
    const len = buf.length;
    let p = offset;
    for (;;) {
      if (p >= len) return NOT_MEMOIZABLE;
      const b = buf[p]!;
      if (b >= 0x40) return NOT_MEMOIZABLE; // pointer or reserved label type
      p += 1 + b;
      if (p - offset > WIDTH || p > len) return NOT_MEMOIZABLE;
      if (b === 0) break;
    }
    const n = p - offset;
    let h = n;
    let i = offset;
    for (const end4 = offset + (n & ~3); i < end4; i += 4) {
      h = Math.imul(h ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)), 0x01000193);
      h ^= h >>> 15;
    }
    for (; i < p; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    // Two-way sets: the name may be in either slot of its pair (see store).
    const slot = (h ^ (h >>> 16)) & this.mask & ~1;
    const bytes = this.bytes;
    const lens = this.lens;
    for (let way = slot; way <= slot + 1; way++) {
      if (lens[way] !== n) continue;
      const at = way * WIDTH;
      let j = 0;
      for (; j + 4 <= n; j += 4) {
        const q = offset + j;
        const r = at + j;
        if ((buf[q]! ^ bytes[r]!) | (buf[q + 1]! ^ bytes[r + 1]!) | (buf[q + 2]! ^ bytes[r + 2]!) | (buf[q + 3]! ^ bytes[r + 3]!)) break;
      }
      while (j < n && bytes[at + j] === buf[offset + j]) j++;
      if (j === n) return way;
    }
    this.missSlot = slot;
    this.missLen = n;
    return MISS;
  }

  /**
   * Stores the name of the last {@link find} that returned {@link MISS} in
   * its pair of slots: an empty one, else the one filled longer ago (so two
   * hot names that hash alike are both kept). Returns the slot.
   */
  store(buf: Uint8Array, offset: number, text: string, lower: string): number {
    const set = this.missSlot;
    let slot: number;
    if (this.lens[set] === 0) slot = set;
    else if (this.lens[set + 1] === 0) slot = set + 1;
    else {
      slot = set + this.victim[set >> 1]!;
      this.victim[set >> 1] ^= 1;
    }
    const bytes = this.bytes;
    const dst = slot * WIDTH;
    for (let i = 0; i < this.missLen; i++) bytes[dst + i] = buf[offset + i]!;
    this.lens[slot] = this.missLen;
    this.text[slot] = text;
    this.lower[slot] = lower;
    this.hint[slot] = -1;
    this.generation[slot]!++;
    return slot;
  }

  clear(): void {
    this.byKey.clear();
    this.generation.fill(0);
    this.lens.fill(0);
    this.text.fill('');
    this.lower.fill('');
    this.hint.fill(-1);
    this.victim.fill(0);
  }
}
