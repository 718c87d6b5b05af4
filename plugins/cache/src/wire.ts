/**
 * Byte-level helpers shared by the cache and dedup hot paths: the key flags
 * of a query, the copy-and-patch routine that turns a stored response into
 * the answer to one particular query, and the TTL rewrite.
 *
 * Everything here works on raw `Buffer`s with bounds checks and allocates
 * nothing but the output buffer.
 */

/** Key flag: the query carries an OPT record (EDNS). */
export const KEY_EDNS = 1;
/** Key flag: the DO bit (RFC 3225) is set in the query's OPT record. */
export const KEY_DO = 2;
/** Key flag: the CD bit (RFC 4035) is set in the query header. */
export const KEY_CD = 4;

/** One-character key suffixes indexed by the flag bits (a precomputed string per value: no per-query string building). */
export const KEY_SUFFIX: readonly string[] = Array.from({ length: 8 }, (_, i) => String.fromCharCode(0x30 + i));

/**
 * Skips one (possibly compressed) name starting at `p`; returns the offset
 * after it, or -1 when the bytes run out or the name is malformed.
 */
function skipName(buf: Buffer, p: number): number {
  const end = buf.length;
  for (let guard = 0; guard < 128; guard++) {
    if (p >= end) return -1;
    const len = buf[p];
    if (len === 0) return p + 1;
    if ((len & 0xc0) === 0xc0) return p + 2 <= end ? p + 2 : -1;
    if (len > 63) return -1;
    p += len + 1;
  }
  return -1;
}

/**
 * The cache-key flags of a query ({@link KEY_EDNS} | {@link KEY_DO} |
 * {@link KEY_CD}), read straight from the request bytes: CD from the header,
 * EDNS presence and DO from the OPT record found by skipping the records that
 * follow the question (a query normally has only the OPT). Returns -1 for a
 * malformed record section: such a query is neither looked up nor cached.
 *
 * Cost: a few byte reads; no allocation (cheaper than decoding the OPT).
 */
export function queryKeyFlags(request: Buffer, questionEnd: number): number {
  let flags = (request[3] & 0x10) !== 0 ? KEY_CD : 0;
  const records = ((request[6] << 8) | request[7]) + ((request[8] << 8) | request[9]) + ((request[10] << 8) | request[11]);
  let p = questionEnd;
  for (let i = 0; i < records; i++) {
    p = skipName(request, p);
    if (p < 0 || p + 10 > request.length) return -1;
    const type = (request[p] << 8) | request[p + 1];
    if (type === 41) {
      flags |= KEY_EDNS;
      if ((request[p + 6] & 0x80) !== 0) flags |= KEY_DO;
    }
    p += 10 + ((request[p + 8] << 8) | request[p + 9]);
    if (p > request.length) return -1;
  }
  return flags;
}

/**
 * Copies a stored response for one query: a new buffer (`Buffer.allocUnsafe`
 * + `copy`; the stored bytes are never touched) with
 * - the query's ID,
 * - the query's RD bit, AA cleared when `clearAa` (a cached answer is not
 *   authoritative), AD cleared unless the query set AD or DO (RFC 6840 §5.7),
 * - the query's question name bytes over the response's (bytes 12 to
 *   `nameEnd`): restores the client's letter case, also in every answer name
 *   that points at the question (same length: the key matched case-insensitively).
 *
 * The caller guarantees `request` holds at least `nameEnd` bytes and that
 * both question names have the same length.
 */
export function copyForQuery(wire: Buffer, request: Buffer, nameEnd: number, doBit: boolean, clearAa: boolean): Buffer {
  const len = wire.length;
  const out = Buffer.allocUnsafe(len);
  wire.copy(out, 0, 0, len);
  out[0] = request[0];
  out[1] = request[1];
  // Byte 2: QR(0x80) OPCODE(0x78) AA(0x04) TC(0x02) RD(0x01).
  out[2] = (wire[2] & (clearAa ? 0xfa : 0xfe)) | (request[2] & 0x01);
  // Byte 3: RA(0x80) Z(0x40) AD(0x20) CD(0x10) RCODE(0x0f).
  if (!doBit && (request[3] & 0x20) === 0) out[3] = wire[3] & 0xdf;
  request.copy(out, 12, 12, nameEnd);
  return out;
}

/**
 * Writes the TTL of every record: `ttls[i] - age` floored at 0, at
 * `offsets[i]` (big-endian u32). With `fixed >= 0`, writes `fixed`
 * everywhere instead (stale answers).
 */
export function writeTtls(out: Buffer, offsets: Uint16Array, ttls: Uint32Array, age: number, fixed: number): void {
  const n = offsets.length;
  for (let i = 0; i < n; i++) {
    let t = fixed >= 0 ? fixed : ttls[i] - age;
    if (t < 0) t = 0;
    const o = offsets[i];
    out[o] = t >>> 24;
    out[o + 1] = (t >>> 16) & 0xff;
    out[o + 2] = (t >>> 8) & 0xff;
    out[o + 3] = t & 0xff;
  }
}

/** Lowercases ASCII letters only (DNS case-insensitivity, RFC 4343). */
function lower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

/** Case-insensitive (RFC 4343) comparison of `len` bytes of `a` at `ai` and `b` at `bi`. */
export function equalsIgnoreCase(a: Buffer, ai: number, b: Buffer, bi: number, len: number): boolean {
  for (let i = 0; i < len; i++) {
    const x = a[ai + i];
    const y = b[bi + i];
    if (x !== y && lower(x) !== lower(y)) return false;
  }
  return true;
}

/**
 * Offset just past an uncompressed name at `p`, or -1 when the name is
 * compressed, malformed or runs past the buffer. Used for the question name,
 * which is never compressed in well-formed messages.
 */
export function plainNameEnd(buf: Buffer, p: number): number {
  const end = buf.length;
  let total = 0;
  while (p < end) {
    const len = buf[p];
    if (len === 0) return total + 1 <= 255 ? p + 1 : -1;
    if (len > 63) return -1;
    total += len + 1;
    p += len + 1;
  }
  return -1;
}

/** Error raised for a name that cannot be a DNS name (flush requests). */
export class CacheNameError extends Error {
  readonly code = 'BAD_NAME';
  constructor(name: string, reason: string) {
    super(`plugin/cache: bad name ${JSON.stringify(name)}: ${reason}`);
    this.name = 'CacheNameError';
  }
}

/**
 * A presentation name (`www.example.com`, trailing dot optional, `""` or
 * `"."` for the root, RFC 1035 escapes `\.` and `\DDD`) to lowercased wire
 * format. Throws {@link CacheNameError} for empty labels, labels over 63
 * bytes, names over 255 bytes and bad escapes.
 */
export function nameToWire(name: string): Buffer {
  if (typeof name !== 'string') throw new CacheNameError(String(name), 'not a string');
  const bytes: number[] = [];
  let label: number[] = [];
  const flush = (): void => {
    if (label.length === 0) throw new CacheNameError(name, 'empty label');
    if (label.length > 63) throw new CacheNameError(name, 'label longer than 63 bytes');
    bytes.push(label.length, ...label);
    label = [];
  };
  const s = name === '.' ? '' : name;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      flush();
      if (i === s.length - 1) break;
      continue;
    }
    if (c === 0x5c) {
      const d = s.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) throw new CacheNameError(name, `escape \\${d} is over 255`);
        label.push(lower(v));
        i += 3;
      } else if (i + 1 < s.length) {
        label.push(lower(s.charCodeAt(i + 1) & 0xff));
        i += 1;
      } else {
        throw new CacheNameError(name, 'dangling backslash');
      }
      continue;
    }
    if (c > 0x7e || c < 0x21) throw new CacheNameError(name, 'characters outside printable ASCII must be escaped as \\DDD');
    label.push(lower(c));
  }
  if (label.length > 0) flush();
  bytes.push(0);
  if (bytes.length > 255) throw new CacheNameError(name, 'longer than 255 bytes in wire format');
  return Buffer.from(bytes);
}
