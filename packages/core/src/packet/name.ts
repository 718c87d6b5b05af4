/**
 * Domain names: wire decoding with decompression, presentation format
 * (RFC 1035 §5.1 escapes), parsing back to wire, and comparison.
 *
 * Presentation strings have no trailing dot; the root is `""`. Bytes that
 * are not plain printable ASCII are written `\DDD`; `.`, `\`, `"`, `(`, `)`,
 * `;`, `@` and `$` are written with a backslash in front (as BIND and dig
 * print them), so every wire name has exactly one canonical string.
 */
import { Buffer } from 'node:buffer';
import {
  checkOffset,
  copyNameLower,
  LOWER,
  MAX_LABEL_LENGTH,
  MAX_NAME_LENGTH,
  MAX_POINTER_HOPS,
  pointerLimit,
  skipName,
  wireNamesEqual,
} from '../wire/name.js';
import { PacketError, truncated } from './errors.js';

export { checkOffset, copyNameLower, LOWER, MAX_LABEL_LENGTH, MAX_NAME_LENGTH, MAX_POINTER_HOPS, skipName, wireNamesEqual };

// Module-local copies of the imported constants used in hot loops: where
// imports compile to property reads (tsx, vitest), a read per iteration
// costs several times the loop itself.
const HOPS = MAX_POINTER_HOPS;
const NAME_MAX = MAX_NAME_LENGTH;
const LOWER_ = LOWER;

declare global {
  // biome-ignore lint/suspicious/noRedeclare: augments the global Buffer interface (the same one `node:buffer` exports).
  interface Buffer {
    /** Node's internal one-byte string slice (what `toString('latin1', s, e)` ends in). */
    latin1Slice(start: number, end: number): string;
  }
}

/**
 * How each byte prints: 0 as is, 1 with a backslash in front, 2 as `\DDD`.
 * @internal
 */
const ESCAPE = new Uint8Array(256);
for (let i = 0; i < 256; i++) ESCAPE[i] = i <= 0x20 || i >= 0x7f ? 2 : 0;
for (const c of '."();\\@$') ESCAPE[c.charCodeAt(0)] = 1;

// 255 wire octets print to at most 63*4*4 + dots < 1024 characters.
const text = Buffer.allocUnsafe(1024);

/**
 * @internal A direct-mapped cache of recently built one-byte strings. Names
 * repeat heavily in DNS traffic, and building a string from bytes costs more
 * than hashing and comparing ~20 characters, so a hit returns the existing
 * string and allocates nothing. A miss (or a hash collision) just builds the
 * string and replaces the slot. Bounded: `size` slots.
 */
export class StringIntern {
  private readonly slots: string[];
  private readonly mask: number;

  /** Per pair of slots: which one the next miss replaces. */
  private readonly victim: Uint8Array;

  /** `size`: a power of two (1 is taken as 2: one pair). */
  constructor(size: number) {
    size = Math.max(2, size);
    this.slots = new Array<string>(size).fill('');
    this.mask = size - 1;
    this.victim = new Uint8Array(size >> 1);
  }

  /** The latin1 string of `bytes[0..n)`. */
  get(bytes: Buffer, n: number): string {
    let h = n;
    for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + bytes[i]) | 0;
    return this.getHashed(bytes, n, h);
  }

  /**
   * The latin1 string of `buf[start..end)` with ASCII letters of
   * `buf[start..lowerEnd)` lowercased, read straight from `buf` (no copy on a hit).
   */
  getLowered(buf: Buffer, start: number, lowerEnd: number, end: number): string {
    let h = end - start;
    for (let i = start; i < lowerEnd; i++) h = (Math.imul(h, 31) + LOWER_[buf[i]]) | 0;
    for (let i = lowerEnd; i < end; i++) h = (Math.imul(h, 31) + buf[i]) | 0;
    const n = end - start;
    const slot = (h ^ (h >>> 15)) & this.mask;
    const s = this.slots[slot];
    if (s.length === n) {
      let k = 0;
      const split = lowerEnd - start;
      while (k < split && s.charCodeAt(k) === LOWER_[buf[start + k]]) k++;
      if (k === split) {
        while (k < n && s.charCodeAt(k) === buf[start + k]) k++;
        if (k === n) return s;
      }
    }
    for (let i = 0; i < n; i++) loweredTmp[i] = i < lowerEnd - start ? LOWER_[buf[start + i]] : buf[start + i];
    const t = loweredTmp.latin1Slice(0, n);
    this.slots[slot] = t;
    return t;
  }

  /**
   * Like {@link get}, with the hash of the bytes computed by the caller (any
   * stable 32-bit mix). Two-way sets: a string may be in either slot of its
   * pair, and a new one takes the slot filled longer ago, so two hot names
   * that hash alike do not evict each other on every query (direct-mapped,
   * 4096 slots held 1000 hot names with about one in five missing).
   */
  getHashed(bytes: Buffer, n: number, h: number): string {
    const slot = (h ^ (h >>> 15)) & this.mask & ~1;
    const slots = this.slots;
    const s = slots[slot];
    if (s.length === n) {
      let k = 0;
      while (k < n && s.charCodeAt(k) === bytes[k]) k++;
      if (k === n) return s;
    }
    const other = slots[slot + 1];
    if (other.length === n) {
      let k = 0;
      while (k < n && other.charCodeAt(k) === bytes[k]) k++;
      if (k === n) return other;
    }
    const t = bytes.latin1Slice(0, n);
    const set = slot >> 1;
    slots[slot + this.victim[set]] = t;
    this.victim[set] ^= 1;
    return t;
  }
}

const names = new StringIntern(8192);
const loweredTmp = Buffer.allocUnsafe(MAX_NAME_LENGTH + 4);

/** A name (or name suffix) already read in this message: its text and wire length. */
interface KnownName {
  readonly text: string;
  /** Wire length, root label included. */
  readonly wire: number;
  /** Pointers followed from its start. */
  readonly hops: number;
}

/**
 * Where a {@link readName} call ended, the name-expansion work still
 * allowed for the message being read, and the names already read through
 * pointers (so a suffix reached again costs one lookup). Caller-owned (one
 * per message), so the second result is explicit and the common path
 * allocates nothing.
 */
export class NameCursor {
  /** Set by {@link readName}: offset just after the name at its original position (after the first pointer if it had one). */
  end = 0;
  /**
   * Work that names reached through compression pointers may still cost in
   * this message (an octet 1, a label or a pointer hop 8); {@link readName}
   * subtracts its own and raises `POINTER_LIMIT` below 0. See {@link nameBudget}.
   */
  budget: number;
  /** @internal Names by the offset they start at, for pointers reaching them again (created on first use). */
  known: Map<number, KnownName> | null = null;

  /** A cursor for a message of `length` octets (budget {@link nameBudget}). */
  constructor(length: number) {
    this.budget = nameBudget(length);
  }

  /** Makes the cursor new for another message of `length` octets. */
  reset(length: number): void {
    this.end = 0;
    this.budget = nameBudget(length);
    this.known = null;
  }
}

/**
 * The name-expansion budget of a message of `length` octets: what names
 * read through pointers may cost, in all, before the message is refused
 * (`POINTER_LIMIT`); an octet counts 1, a label or a pointer hop 8 (what they
 * cost to walk). In-place name octets are paid for by the message itself,
 * and a suffix reached again through a pointer is looked up, not walked.
 * Linear in the message size, so any message decodes in time linear in its
 * length (well under 1 ms for 64 KiB of crafted pointer chains); real
 * messages spend a small fraction of it.
 */
export function nameBudget(length: number): number {
  return 3 * length + 4096;
}

/** What a label or a pointer hop is charged against {@link NameCursor.budget} (about 8 octets' work each). */
const STEP_COST = 8;

/**
 * Reads the (possibly compressed) name at `offset` and returns it in
 * presentation format. With `cursor`, sets `cursor.end` (offset after the
 * name in place), charges the work done behind pointers to
 * `cursor.budget`, and reuses names the cursor already saw.
 *
 * Bounds: every read is checked; pointers must point strictly before the
 * start of the labels that led to them, so the walk always terminates
 * (a loop raises `POINTER_LOOP`); at most {@link MAX_POINTER_HOPS} pointers
 * (`POINTER_LIMIT`); more than 255 octets raise `NAME_TOO_LONG`.
 * Cost: one string allocation (none when the name was built recently), no
 * per-label strings.
 */
export function readName(buf: Buffer, offset: number, cursor?: NameCursor): string {
  checkOffset(buf, offset);
  const len = buf.length;
  const known = cursor === undefined ? null : cursor.known;
  let pos = offset;
  let end = -1;
  let wire = 1; // the root label
  let out = 0;
  let limit = offset; // pointers must point before this
  let h = 0;
  let hops = 0;
  let work = 0; // octets and labels walked behind pointers
  let first = -1; // target of the first pointer
  let firstOut = 0; // text length and wire length when it was followed
  let firstWire = 0;
  let tail: KnownName | undefined;
  for (;;) {
    if (pos >= len) throw truncated(pos, 'a name');
    const b = buf[pos];
    if (b === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if (b >= 0xc0) {
      if (pos + 1 >= len) throw truncated(pos, 'a compression pointer');
      const target = ((b & 0x3f) << 8) | buf[pos + 1];
      if (target >= limit) {
        throw new PacketError('POINTER_LOOP', pos, `compression pointer to ${target} does not point backwards`);
      }
      if (++hops > HOPS) throw pointerLimit(pos);
      if (end < 0) end = pos + 2;
      if (known !== null) {
        tail = known.get(target);
        if (tail !== undefined) break;
      }
      if (first < 0) {
        first = target;
        firstOut = out;
        firstWire = wire;
      }
      pos = limit = target;
      continue;
    }
    if (b >= 0x40) throw new PacketError('BAD_LABEL', pos, `unsupported label type 0x${b.toString(16)}`);
    wire += b + 1;
    if (wire > NAME_MAX) throw new PacketError('NAME_TOO_LONG', pos, 'name longer than 255 octets');
    const stop = pos + 1 + b;
    if (stop > len) throw truncated(pos, 'a label');
    if (hops !== 0) work += b + STEP_COST;
    if (out !== 0) text[out++] = 0x2e;
    for (let i = pos + 1; i < stop; i++) {
      const c = buf[i];
      const e = ESCAPE[c];
      h = (Math.imul(h, 31) + c) | 0;
      if (e === 0) {
        text[out++] = c;
      } else if (e === 1) {
        text[out++] = 0x5c;
        text[out++] = c;
      } else {
        text[out++] = 0x5c;
        text[out++] = 0x30 + ((c / 100) | 0);
        text[out++] = 0x30 + (((c / 10) | 0) % 10);
        text[out++] = 0x30 + (c % 10);
      }
    }
    h = (Math.imul(h, 31) + b) | 0; // label boundaries take part in the hash
    pos = stop;
  }
  if (cursor === undefined) return out === 0 ? '' : names.getHashed(text, out, h);
  cursor.end = end;
  if (hops !== 0 && (cursor.budget -= work + STEP_COST * hops) < 0) {
    throw new PacketError('POINTER_LIMIT', offset, "names expand past the message's work budget (compression pointer chains)");
  }
  if (tail !== undefined) {
    // The rest is a name read before: its text follows what was walked here.
    if (wire - 1 + tail.wire > NAME_MAX) throw new PacketError('NAME_TOO_LONG', offset, 'name longer than 255 octets');
    if (hops + tail.hops > HOPS) throw pointerLimit(offset);
    return out === 0 ? tail.text : tail.text === '' ? names.getHashed(text, out, h) : `${names.getHashed(text, out, h)}.${tail.text}`;
  }
  const s = out === 0 ? '' : names.getHashed(text, out, h);
  if (hops !== 0) {
    // Remember the name and the suffix its first pointer reached, for pointers reaching them again.
    const k = (cursor.known ??= new Map());
    if (k.size < 4096) {
      k.set(offset, { text: s, wire, hops });
      if (!k.has(first)) {
        const suffix = firstOut === 0 ? s : out === firstOut ? '' : text.latin1Slice(firstOut + 1, out);
        k.set(first, { text: suffix, wire: wire - firstWire + 1, hops: hops - 1 });
      }
    }
  }
  return s;
}

const cmpA = Buffer.allocUnsafe(MAX_NAME_LENGTH);
const cmpB = Buffer.allocUnsafe(MAX_NAME_LENGTH);
const wireScratch = Buffer.allocUnsafe(MAX_NAME_LENGTH + 1);

/**
 * Parses a presentation-format name into uncompressed wire form, written
 * to `dst` at `at` (which needs 255 bytes of room unless `dst` is omitted,
 * in which case an internal scratch buffer is used). Returns the offset
 * after the root label. A trailing dot is accepted; `""` and `"."` are the
 * root. Escapes: `\X` for any character X, `\DDD` for a decimal byte.
 * Characters above U+00FF are rejected (names are octets; use punycode).
 *
 * @throws PacketError `INVALID_NAME`, `LABEL_TOO_LONG`, `NAME_TOO_LONG`
 */
export function nameToWire(name: string, dst: Buffer = wireScratch, at = 0): number {
  if (typeof name !== 'string') throw new PacketError('INVALID_NAME', -1, 'a name must be a string');
  if (!(dst instanceof Uint8Array) || !(at >= 0 && at + MAX_NAME_LENGTH <= dst.length)) {
    throw new PacketError('INVALID_VALUE', -1, 'nameToWire needs 255 bytes of room in dst');
  }
  const n = name.length;
  const start = at;
  if (n === 0 || (n === 1 && name.charCodeAt(0) === 0x2e)) {
    dst[at] = 0;
    return at + 1;
  }
  let lenAt = at++;
  let labelLen = 0;
  let i = 0;
  while (i < n) {
    let c = name.charCodeAt(i++);
    if (c === 0x2e) {
      if (labelLen === 0) throw new PacketError('INVALID_NAME', -1, `empty label in name ${JSON.stringify(name)}`);
      dst[lenAt] = labelLen;
      if (i === n) {
        // trailing dot: absolute name
        dst[at] = 0;
        return at + 1;
      }
      lenAt = at++;
      labelLen = 0;
      continue;
    }
    if (c === 0x5c) {
      if (i >= n) throw new PacketError('INVALID_NAME', -1, `dangling backslash in name ${JSON.stringify(name)}`);
      c = name.charCodeAt(i++);
      if (c >= 0x30 && c <= 0x39) {
        const d2 = name.charCodeAt(i);
        const d3 = name.charCodeAt(i + 1);
        if (!(d2 >= 0x30 && d2 <= 0x39 && d3 >= 0x30 && d3 <= 0x39)) {
          throw new PacketError('INVALID_NAME', -1, `bad \\DDD escape in name ${JSON.stringify(name)}`);
        }
        c = (c - 0x30) * 100 + (d2 - 0x30) * 10 + (d3 - 0x30);
        if (c > 255) throw new PacketError('INVALID_NAME', -1, `\\DDD escape above 255 in name ${JSON.stringify(name)}`);
        i += 2;
      }
    }
    if (c > 0xff) {
      throw new PacketError('INVALID_NAME', -1, `character U+${c.toString(16)} in name ${JSON.stringify(name)}`);
    }
    if (++labelLen > MAX_LABEL_LENGTH) {
      throw new PacketError('LABEL_TOO_LONG', -1, `label longer than 63 octets in name ${JSON.stringify(name)}`);
    }
    if (at - start >= MAX_NAME_LENGTH - 1) {
      throw new PacketError('NAME_TOO_LONG', -1, `name longer than 255 octets: ${JSON.stringify(name)}`);
    }
    dst[at++] = c;
  }
  dst[lenAt] = labelLen;
  dst[at++] = 0;
  return at;
}

/**
 * Canonical presentation form of a name: parsed and printed again, so that
 * `"\097bc.com."` becomes `"abc.com"`. Letter case is kept.
 */
export function canonicalName(name: string): string {
  const end = nameToWire(name);
  return readName(wireScratch.subarray(0, end), 0);
}

/**
 * Case-insensitive comparison of two presentation-format names (RFC 4343:
 * ASCII letters only). Handles escapes and a trailing dot; names that do not
 * parse compare unequal.
 */
export function namesEqual(a: string, b: string): boolean {
  if (a === b) return true;
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  if (a.indexOf('\\') === -1 && b.indexOf('\\') === -1) {
    let la = a.length;
    let lb = b.length;
    if (la > 0 && a.charCodeAt(la - 1) === 0x2e) la--;
    if (lb > 0 && b.charCodeAt(lb - 1) === 0x2e) lb--;
    if (la !== lb) return false;
    for (let i = 0; i < la; i++) {
      const x = a.charCodeAt(i);
      const y = b.charCodeAt(i);
      if (x !== y && (x > 0xff || y > 0xff || LOWER_[x] !== LOWER_[y])) return false;
    }
    return true;
  }
  try {
    const x = nameToWire(a, cmpA, 0);
    const y = nameToWire(b, cmpB, 0);
    if (x !== y) return false;
    for (let i = 0; i < x; i++) if (LOWER_[cmpA[i]] !== LOWER_[cmpB[i]]) return false;
    return true;
  } catch {
    return false;
  }
}

/** Lowercased (ASCII only) presentation name, for use as a map key. */
export function lowercaseName(name: string): string {
  if (typeof name !== 'string') throw new PacketError('INVALID_NAME', -1, 'a name must be a string');
  // Escapes only contain digits and punctuation, so lowercasing the string is safe for ASCII.
  let upper = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) {
      upper = true;
      break;
    }
  }
  if (!upper) return name;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    out += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  }
  return out;
}

/** Number of labels of a name (the root has 0); wildcard `*` counts as a label. */
export function labelCount(name: string): number {
  const end = nameToWire(name);
  let count = 0;
  for (let p = 0; wireScratch[p] !== 0 && p < end; p += wireScratch[p] + 1) count++;
  return count;
}
