/**
 * Wire-format names at the byte level: skipping (bounded, validating),
 * following compression pointers with a hop limit, case-insensitive
 * comparison. No strings are built here (see `packet/name.ts` for the
 * presentation format).
 */
import { Buffer } from 'node:buffer';
import { PacketError, truncated } from '../packet/errors.js';

/** Longest name in wire form, length octets and root label included (RFC 1035 §2.3.4). */
export const MAX_NAME_LENGTH = 255;
/** Longest label (RFC 1035 §2.3.4). */
export const MAX_LABEL_LENGTH = 63;
/**
 * Most compression pointers one name may follow. A 255-octet name has at
 * most 127 labels, so a well-formed name never needs more hops than that;
 * the bound caps the work of a crafted chain of pointers to pointers
 * (raises `POINTER_LIMIT`).
 */
export const MAX_POINTER_HOPS = 127;

/** ASCII lowercase table for case-insensitive work (RFC 4343: only A-Z fold). */
export const LOWER = new Uint8Array(256);
for (let i = 0; i < 256; i++) LOWER[i] = i >= 0x41 && i <= 0x5a ? i + 0x20 : i;

/**
 * Rejects offsets that are not integers (and non-Buffer input) at public
 * entry points: a NaN offset would otherwise defeat the bounds checks.
 *
 * @throws PacketError `INVALID_VALUE`
 */
export function checkOffset(buf: Buffer, offset: number): void {
  if (!(buf instanceof Uint8Array) || typeof offset !== 'number' || !(offset >= 0) || Math.floor(offset) !== offset) {
    throw new PacketError('INVALID_VALUE', -1, 'expected a Buffer and a non-negative integer offset');
  }
}

/**
 * Offset just after the (possibly compressed) name at `offset`, without
 * following pointers or building a string; -1 when the name is malformed:
 * it runs past `end` (default `buf.length`), has a reserved label type
 * (0x40/0x80) or is longer than 255 octets in place. Pointer targets are
 * checked when the name is followed (`readName`, {@link copyNameLower}).
 * Bounded: at most 255 octets are read.
 *
 * Cost: a few byte reads per label, no allocation. {@link skipName} is the
 * throwing form.
 */
export function trySkipName(buf: Buffer, offset: number, end: number = buf.length): number {
  let p = offset;
  for (;;) {
    if (p >= end) return -1;
    const b = buf[p];
    if (b === 0) return p + 1;
    if (b >= 0xc0) {
      return p + 1 < end ? p + 2 : -1;
    }
    if (b >= 0x40) return -1;
    p += b + 1;
    if (p - offset >= MAX_NAME_LENGTH) return -1;
  }
}

/**
 * Offset just after the name at `offset` (see {@link trySkipName}).
 *
 * @throws PacketError `TRUNCATED`, `BAD_LABEL`, `NAME_TOO_LONG`, `INVALID_VALUE` (bad offset).
 */
export function skipName(buf: Buffer, offset: number): number {
  checkOffset(buf, offset);
  const p = trySkipName(buf, offset);
  if (p >= 0) return p;
  throw skipError(buf, offset);
}

/** The error {@link skipName} raises for a name {@link trySkipName} refused. */
function skipError(buf: Buffer, offset: number): PacketError {
  const len = buf.length;
  let pos = offset;
  for (;;) {
    if (pos >= len) return truncated(pos, 'a name');
    const b = buf[pos];
    if (b >= 0xc0) return truncated(pos, 'a compression pointer');
    if (b >= 0x40) return new PacketError('BAD_LABEL', pos, `unsupported label type 0x${b.toString(16)}`);
    pos += b + 1;
    if (pos - offset >= MAX_NAME_LENGTH) return new PacketError('NAME_TOO_LONG', offset, 'name longer than 255 octets');
  }
}

/**
 * Offset just after an uncompressed name at `p` (the question name of a
 * well-formed message), or -1 when the name is compressed, malformed,
 * longer than 255 octets or runs past the buffer. No allocation.
 */
export function plainNameEnd(buf: Buffer, p: number): number {
  const end = buf.length;
  const start = p;
  while (p < end) {
    const len = buf[p];
    if (len === 0) return p + 1 - start <= MAX_NAME_LENGTH ? p + 1 : -1;
    if (len > MAX_LABEL_LENGTH) return -1;
    p += len + 1;
  }
  return -1;
}

/**
 * Copies the name at `offset` (following pointers) into `dst` at `at` in
 * uncompressed wire form, lowercased (ASCII only, RFC 4343). Returns the
 * offset in `dst` after the root label. `dst` must have at least 255 bytes
 * of room.
 *
 * Bounds: every read is checked; a pointer must point strictly before the
 * start of the labels that led to it (`POINTER_LOOP`), at most
 * {@link MAX_POINTER_HOPS} pointers are followed (`POINTER_LIMIT`), more
 * than 255 octets raise `NAME_TOO_LONG`. So the work is at most 255 octets
 * plus 127 hops, whatever the input.
 */
export function copyNameLower(buf: Buffer, offset: number, dst: Buffer, at: number): number {
  checkOffset(buf, offset);
  if (!(dst instanceof Uint8Array) || !(at >= 0 && at + MAX_NAME_LENGTH <= dst.length)) {
    throw new PacketError('INVALID_VALUE', -1, 'copyNameLower needs 255 bytes of room in dst');
  }
  const len = buf.length;
  const start = at;
  let pos = offset;
  let limit = offset;
  let hops = 0;
  for (;;) {
    if (pos >= len) throw truncated(pos, 'a name');
    const b = buf[pos];
    if (b === 0) {
      dst[at++] = 0;
      return at;
    }
    if (b >= 0xc0) {
      if (pos + 1 >= len) throw truncated(pos, 'a compression pointer');
      const target = ((b & 0x3f) << 8) | buf[pos + 1];
      if (target >= limit) {
        throw new PacketError('POINTER_LOOP', pos, `compression pointer to ${target} does not point backwards`);
      }
      if (++hops > MAX_POINTER_HOPS) throw pointerLimit(pos);
      pos = limit = target;
      continue;
    }
    if (b >= 0x40) throw new PacketError('BAD_LABEL', pos, `unsupported label type 0x${b.toString(16)}`);
    const stop = pos + 1 + b;
    if (stop > len) throw truncated(pos, 'a label');
    if (at - start + b + 2 > MAX_NAME_LENGTH) throw new PacketError('NAME_TOO_LONG', pos, 'name longer than 255 octets');
    dst[at++] = b;
    for (let i = pos + 1; i < stop; i++) dst[at++] = LOWER[buf[i]];
    pos = stop;
  }
}

/** @internal The `POINTER_LIMIT` error for a name at `pos`. */
export function pointerLimit(pos: number): PacketError {
  return new PacketError('POINTER_LIMIT', pos, `name follows more than ${MAX_POINTER_HOPS} compression pointers`);
}

const cmpA = Buffer.allocUnsafe(MAX_NAME_LENGTH);
const cmpB = Buffer.allocUnsafe(MAX_NAME_LENGTH);

/**
 * Compares two wire names (each possibly compressed, possibly in different
 * buffers) case-insensitively (RFC 4343) without building strings.
 *
 * @throws PacketError like {@link copyNameLower} for a malformed name.
 */
export function wireNamesEqual(a: Buffer, aOffset: number, b: Buffer, bOffset: number): boolean {
  const x = copyNameLower(a, aOffset, cmpA, 0);
  const y = copyNameLower(b, bOffset, cmpB, 0);
  return x === y && cmpA.compare(cmpB, 0, y, 0, x) === 0;
}

/**
 * Case-insensitive (RFC 4343: ASCII letters only) comparison of `len` bytes
 * of `a` at `ai` and `b` at `bi` — e.g. two uncompressed question names plus
 * their type and class. The caller checks bounds.
 */
export function equalsIgnoreCase(a: Buffer, ai: number, b: Buffer, bi: number, len: number): boolean {
  for (let i = 0; i < len; i++) {
    const x = a[ai + i];
    const y = b[bi + i];
    if (x !== y && LOWER[x] !== LOWER[y]) return false;
  }
  return true;
}
