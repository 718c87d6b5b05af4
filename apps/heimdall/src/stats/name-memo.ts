/**
 * A direct-mapped memo of question names by their wire octets: the stats
 * plugin's way to get a query's name as text (and lower-cased) without
 * decoding it again for every query. A hit costs one hash pass and one
 * compare pass over the octets (no string built, no escaping); a miss
 * decodes as usual and takes the slot (two-way: a slot and its neighbour). Only uncompressed names of at most
 * {@link WIDTH} octets are kept (the usual question name); others are not
 * memoized. Memory is fixed: 16384 slots × 64 octets (1 MiB), and the strings held.
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
  }

  /** The slot holding the name at `offset`, {@link MISS} or {@link NOT_MEMOIZABLE}. */
  find(buf: Uint8Array, offset: number): number {
    const len = buf.length;
    let h = 0x811c9dc5;
    let p = offset;
    for (;;) {
      if (p >= len) return NOT_MEMOIZABLE;
      const b = buf[p]!;
      if (b >= 0x40) return NOT_MEMOIZABLE; // pointer or reserved label type
      const end = p + 1 + b;
      if (end - offset > WIDTH || end > len) return NOT_MEMOIZABLE;
      for (; p < end; p++) h = Math.imul(h ^ buf[p]!, 0x01000193);
      if (b === 0) break;
    }
    const n = p - offset;
    // Two-way sets: the name may be in either slot of its pair (see store).
    const slot = (h ^ (h >>> 16)) & this.mask & ~1;
    const bytes = this.bytes;
    for (let way = slot; way <= slot + 1; way++) {
      if (this.lens[way] !== n) continue;
      let i = 0;
      const at = way * WIDTH;
      while (i < n && bytes[at + i] === buf[offset + i]) i++;
      if (i === n) return way;
    }
    this.missSlot = slot;
    this.missLen = n;
    return MISS;
  }

  /**
   * Stores the name of the last {@link find} that returned {@link MISS} in
   * its pair of slots: an empty one, else the one filled longer ago (so two
   * hot names that hash alike are both kept).
   */
  store(buf: Uint8Array, offset: number, text: string, lower: string): void {
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
  }

  clear(): void {
    this.lens.fill(0);
    this.text.fill('');
    this.lower.fill('');
    this.hint.fill(-1);
    this.victim.fill(0);
  }
}
