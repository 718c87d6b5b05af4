/**
 * @internal The wire writer shared by the encoder and the RDATA encoders.
 * One instance is reused (encoding is synchronous), so encoding allocates
 * nothing but the compression keys it must remember.
 */
import { Buffer } from 'node:buffer';
import { describeValue, PacketError } from './errors.js';
import { MAX_LABEL_LENGTH, MAX_NAME_LENGTH, nameToWire, readName } from './name.js';

const EMPTY = Buffer.alloc(0);
const nameTmp = Buffer.allocUnsafe(MAX_NAME_LENGTH + 1);

// Compression targets: suffixes of names already written, found through an
// open-addressing hash table of suffix hashes (no per-suffix strings, no
// clearing between messages: slots of older generations count as empty).
const TABLE_SIZE = 4096; // power of two
const TABLE_MASK = TABLE_SIZE - 1;
const MAX_TARGETS = 2048; // beyond this, names are still written, just not offered as targets
const slotEntry = new Int32Array(TABLE_SIZE);
const slotGen = new Uint32Array(TABLE_SIZE);
const entryHash = new Int32Array(MAX_TARGETS);
const entryStart = new Int32Array(MAX_TARGETS);
const entryOffset = new Int32Array(MAX_TARGETS);
const entryText: string[] = new Array(MAX_TARGETS).fill('');
// Label starts (char index) and suffix hashes of the name being written, last label first.
const labelStart = new Int32Array(128);
const labelHash = new Int32Array(128);

function suffixEquals(a: string, ai: number, b: string, bi: number): boolean {
  if (a === b && ai === bi) return true;
  const n = a.length - ai;
  if (n !== b.length - bi) return false;
  for (let k = 0; k < n; k++) if (a.charCodeAt(ai + k) !== b.charCodeAt(bi + k)) return false;
  return true;
}

/** @internal */
export class Writer {
  buf: Buffer = EMPTY;
  /** Next write position (absolute in `buf`). */
  pos = 0;
  /** Offset of the message start in `buf` (pointers are relative to it). */
  start = 0;
  /** Writes must stay below this absolute offset. */
  cap = 0;
  private gen = 0;
  private targets = 0;
  // The last few whole names written with compression and where they are,
  // so a repeated owner name (the usual case) skips hashing altogether.
  private recent = 0;
  private readonly recentName: string[] = ['', '', '', ''];
  private readonly recentOffset = new Int32Array(4);

  reset(buf: Buffer, offset: number, cap: number): void {
    this.buf = buf;
    this.pos = offset;
    this.start = offset;
    this.cap = cap;
    this.targets = 0;
    this.recent = 0;
    if (++this.gen > 0xfffffff0) {
      this.gen = 1;
      slotGen.fill(0);
    }
  }

  overflow(): never {
    if (this.cap - this.start >= 0xffff) {
      throw new PacketError('MESSAGE_TOO_LARGE', this.pos - this.start, 'message longer than 65535 octets');
    }
    throw new PacketError('BUFFER_TOO_SMALL', this.pos - this.start, 'buffer too small for the message');
  }

  need(n: number): void {
    if (this.pos + n > this.cap) this.overflow();
  }

  u8(v: number, what: string): void {
    if (!isUint(v, 0xff)) badValue(what, v);
    if (this.pos + 1 > this.cap) this.overflow();
    this.buf[this.pos++] = v;
  }

  u16(v: number, what: string): void {
    if (!isUint(v, 0xffff)) badValue(what, v);
    if (this.pos + 2 > this.cap) this.overflow();
    const b = this.buf;
    b[this.pos++] = v >>> 8;
    b[this.pos++] = v & 0xff;
  }

  u32(v: number, what: string): void {
    if (!isUint(v, 0xffffffff)) badValue(what, v);
    if (this.pos + 4 > this.cap) this.overflow();
    const b = this.buf;
    b[this.pos++] = v >>> 24;
    b[this.pos++] = (v >>> 16) & 0xff;
    b[this.pos++] = (v >>> 8) & 0xff;
    b[this.pos++] = v & 0xff;
  }

  bytes(src: Uint8Array, what: string): void {
    if (!(src instanceof Uint8Array)) badValue(what, src);
    const n = src.length;
    if (this.pos + n > this.cap) this.overflow();
    this.buf.set(src, this.pos);
    this.pos += n;
  }

  /** A <character-string> (RFC 1035 §3.3): length octet + up to 255 octets. Strings are latin1. */
  charString(s: string | Uint8Array, what: string): void {
    if (typeof s === 'string') {
      const n = s.length;
      if (n > 255) badValue(what, `${n} octets`);
      if (this.pos + 1 + n > this.cap) this.overflow();
      const b = this.buf;
      b[this.pos++] = n;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0xff) badValue(what, s);
        b[this.pos++] = c;
      }
    } else {
      if (!(s instanceof Uint8Array) || s.length > 255) badValue(what, s);
      this.u8(s.length, what);
      this.bytes(s, what);
    }
  }

  /** Latin1 text without a length prefix (rest of the RDATA). */
  latin1(s: string, what: string): void {
    if (typeof s !== 'string') badValue(what, s);
    const n = s.length;
    if (this.pos + n > this.cap) this.overflow();
    const b = this.buf;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) badValue(what, s);
      b[this.pos++] = c;
    }
  }

  /** UTF-8 text without a length prefix. */
  utf8(s: string, what: string): void {
    if (typeof s !== 'string') badValue(what, s);
    const n = Buffer.byteLength(s, 'utf8');
    if (this.pos + n > this.cap) this.overflow();
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
  }

  /** Finds an earlier suffix equal to `text` from `at` (hash `h`); returns its message offset or -1. */
  private lookup(text: string, at: number, h: number): number {
    let slot = h & TABLE_MASK;
    const gen = this.gen;
    while (slotGen[slot] === gen) {
      const e = slotEntry[slot];
      if (entryHash[e] === h && suffixEquals(text, at, entryText[e], entryStart[e])) return entryOffset[e];
      slot = (slot + 1) & TABLE_MASK;
    }
    return -1;
  }

  /** Offers the suffix of `text` from `at` (hash `h`) as a pointer target at the current position. */
  private offer(text: string, at: number, h: number): void {
    const here = this.pos - this.start;
    if (here > 0x3fff || this.targets >= MAX_TARGETS) return;
    let slot = h & TABLE_MASK;
    const gen = this.gen;
    while (slotGen[slot] === gen) slot = (slot + 1) & TABLE_MASK;
    const e = this.targets++;
    entryHash[e] = h;
    entryStart[e] = at;
    entryOffset[e] = here;
    entryText[e] = text;
    slotEntry[slot] = e;
    slotGen[slot] = gen;
  }

  private remember(name: string, offset: number): void {
    const slot = this.recent++ & 3;
    this.recentName[slot] = name;
    this.recentOffset[slot] = offset;
  }

  private pointer(offset: number): void {
    this.buf[this.pos++] = 0xc0 | (offset >>> 8);
    this.buf[this.pos++] = offset & 0xff;
  }

  /**
   * Writes a presentation-format name. With `compress`, reuses earlier
   * names through pointers (RFC 1035 §4.1.4) and offers this name's
   * suffixes as pointer targets; without it, writes the name in full and
   * offers nothing (names inside RDATA of types that forbid compression
   * must not become targets either, RFC 3597 §4).
   *
   * Matching is exact (case-sensitive), so the bytes decode to the same
   * string: a pointer never changes the letter case of what it stands for.
   */
  name(name: string, compress: boolean): void {
    if (typeof name !== 'string') badValue('name', name);
    let n = name.length;
    if (n > 0 && name.charCodeAt(n - 1) === 0x2e && (n === 1 || name.charCodeAt(n - 2) !== 0x5c)) {
      name = name.slice(0, --n);
    }
    if (n === 0) {
      if (this.pos + 1 > this.cap) this.overflow();
      this.buf[this.pos++] = 0;
      return;
    }
    if (compress) {
      const seen = Math.min(this.recent, 4);
      for (let r = 0; r < seen; r++) {
        if (this.recentName[r] === name) {
          if (this.pos + 2 > this.cap) this.overflow();
          this.pointer(this.recentOffset[r]);
          return;
        }
      }
    }
    if (name.indexOf('\\') !== -1) {
      this.escapedName(name, compress);
      return;
    }
    if (n + 2 > MAX_NAME_LENGTH) {
      throw new PacketError('NAME_TOO_LONG', this.pos - this.start, `name longer than 255 octets: ${JSON.stringify(name)}`);
    }
    // Label starts and suffix hashes, scanning right to left.
    let labels = 0;
    let h = 0;
    for (let k = n - 1; k >= 0; k--) {
      const c = name.charCodeAt(k);
      if (c === 0x2e) {
        if (k === n - 1 || name.charCodeAt(k + 1) === 0x2e || k === 0) {
          throw new PacketError('INVALID_NAME', this.pos - this.start, `empty label in name ${JSON.stringify(name)}`);
        }
        labelStart[labels] = k + 1;
        labelHash[labels++] = h;
      }
      h = (Math.imul(h, 31) + c) | 0;
    }
    labelStart[labels] = 0;
    labelHash[labels] = h;
    const b = this.buf;
    const first = this.pos - this.start;
    if (compress && first <= 0x3fff) this.remember(name, first);
    for (let idx = labels; idx >= 0; idx--) {
      const i = labelStart[idx];
      if (compress) {
        const ptr = this.lookup(name, i, labelHash[idx]);
        if (ptr >= 0) {
          if (this.pos + 2 > this.cap) this.overflow();
          if (idx === labels) this.recentOffset[(this.recent - 1) & 3] = ptr;
          this.pointer(ptr);
          return;
        }
        this.offer(name, i, labelHash[idx]);
      }
      const j = idx === 0 ? n : labelStart[idx - 1] - 1;
      const len = j - i;
      if (len > MAX_LABEL_LENGTH) {
        throw new PacketError('LABEL_TOO_LONG', this.pos - this.start, `label longer than 63 octets in ${JSON.stringify(name)}`);
      }
      if (this.pos + len + 2 > this.cap) this.overflow(); // label + a pointer or the root label
      let p = this.pos;
      b[p++] = len;
      for (let k = i; k < j; k++) {
        const c = name.charCodeAt(k);
        if (c > 0xff) {
          throw new PacketError('INVALID_NAME', this.pos - this.start, `character U+${c.toString(16)} in name ${JSON.stringify(name)}`);
        }
        b[p++] = c;
      }
      this.pos = p;
    }
    b[this.pos++] = 0;
  }

  /** Slow path for names with escapes: parse to wire, key suffixes by their canonical text. */
  private escapedName(name: string, compress: boolean): void {
    const end = nameToWire(name, nameTmp, 0);
    if (!compress) {
      if (this.pos + end > this.cap) this.overflow();
      nameTmp.copy(this.buf, this.pos, 0, end);
      this.pos += end;
      return;
    }
    const canonical = readName(nameTmp.subarray(0, end), 0);
    if (canonical.indexOf('\\') === -1) {
      this.name(canonical, true);
      return;
    }
    // Label start offsets in the canonical text follow the wire labels one to one.
    let labels = 0;
    for (let at = 0; at < canonical.length; at = nextLabelStart(canonical, at)) labelStart[labels++] = at;
    let h = 0;
    let idx = labels - 1;
    for (let k = canonical.length - 1; k >= 0 && idx >= 0; k--) {
      h = (Math.imul(h, 31) + canonical.charCodeAt(k)) | 0;
      if (k === labelStart[idx]) labelHash[idx--] = h;
    }
    let p = 0;
    for (let l = 0; l < labels; l++) {
      const at = labelStart[l];
      const ptr = this.lookup(canonical, at, labelHash[l]);
      if (ptr >= 0) {
        this.need(2);
        this.pointer(ptr);
        return;
      }
      this.offer(canonical, at, labelHash[l]);
      const len = nameTmp[p];
      this.need(len + 1);
      nameTmp.copy(this.buf, this.pos, p, p + len + 1);
      this.pos += len + 1;
      p += len + 1;
    }
    this.need(1);
    this.buf[this.pos++] = 0;
  }
}

/** Index after the next unescaped dot (or the string length). */
function nextLabelStart(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) {
      i += text.charCodeAt(i + 1) >= 0x30 && text.charCodeAt(i + 1) <= 0x39 ? 3 : 1;
    } else if (c === 0x2e) {
      return i + 1;
    }
  }
  return text.length;
}

/** @internal An integer in 0..max (never coerces: objects without a primitive value fail too). */
export function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && v >= 0 && v <= max && Math.floor(v) === v;
}

/** @internal */
export function badValue(what: string, v: unknown): never {
  throw new PacketError('INVALID_VALUE', -1, `invalid ${what}: ${describeValue(v)}`);
}

/** @internal The single writer instance. */
export const writer = new Writer();
