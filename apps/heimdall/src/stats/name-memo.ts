/**
 * A direct-mapped memo of question names by their wire octets: the stats
 * plugin's way to get a query's name as text (and lower-cased) without
 * decoding it again for every query. A hit costs one hash pass and one
 * compare pass over the octets (no string built, no escaping); a miss
 * decodes as usual and takes the slot. Only uncompressed names of at most
 * {@link WIDTH} octets are kept (the usual question name); others are not
 * memoized. Memory is fixed: 4096 slots × 64 octets, and the strings held.
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
  private missSlot = 0;
  private missLen = 0;

  /** `slots`: a power of two. */
  constructor(slots = 4096) {
    if (slots < 1 || (slots & (slots - 1)) !== 0) throw new RangeError('slots must be a power of two');
    this.mask = slots - 1;
    this.bytes = new Uint8Array(slots * WIDTH);
    this.lens = new Uint8Array(slots);
    this.text = new Array<string>(slots).fill('');
    this.lower = new Array<string>(slots).fill('');
    this.hint = new Int32Array(slots).fill(-1);
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
    const slot = (h ^ (h >>> 16)) & this.mask;
    if (this.lens[slot] === n) {
      const bytes = this.bytes;
      let i = 0;
      const at = slot * WIDTH;
      while (i < n && bytes[at + i] === buf[offset + i]) i++;
      if (i === n) return slot;
    }
    this.missSlot = slot;
    this.missLen = n;
    return MISS;
  }

  /** Stores the name of the last {@link find} that returned {@link MISS}. */
  store(buf: Uint8Array, offset: number, text: string, lower: string): void {
    const slot = this.missSlot;
    this.bytes.set(buf.subarray(offset, offset + this.missLen), slot * WIDTH);
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
  }
}
