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

const keyScratch = Buffer.allocUnsafe(255 + 5);

/**
 * Side outputs of the last successful {@link questionKey} call (reused, not
 * allocated per query; read them right after the call).
 */
export const keyInfo = { nameEnd: 0, flags: 0 };

/**
 * The cache key of a query, straight from its bytes, in one string
 * allocation: the question name in wire form with ASCII letters lowercased,
 * QTYPE, QCLASS (exactly the format of `MessageReader.cacheKey()`), then one
 * character `'0' + flags` ({@link KEY_EDNS} | {@link KEY_DO} | {@link KEY_CD}).
 * Returns null when the question name is compressed or malformed, the
 * question is cut short, or the records after it are malformed. Sets
 * {@link keyInfo} (`nameEnd`, `flags`) on success.
 *
 * Why not `cacheKey() + suffix`: appending to the codec's string makes a
 * cons string that `Map.get` must flatten, which measured 3-4x the cost of
 * building the whole key once (bench/cache.bench.ts).
 */
export function questionKey(request: Buffer): string | null {
  const len = request.length;
  const k = keyScratch;
  let p = 12;
  let n = 0;
  for (;;) {
    if (p >= len) return null;
    const l = request[p];
    if (l === 0) break;
    if (l > 63 || n + l + 2 > 255) return null;
    k[n++] = l;
    p++;
    const end = p + l;
    if (end > len) return null;
    for (; p < end; p++) {
      const b = request[p];
      k[n++] = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
    }
  }
  k[n++] = 0;
  const nameEnd = p + 1;
  if (nameEnd + 4 > len) return null;
  k[n++] = request[nameEnd];
  k[n++] = request[nameEnd + 1];
  k[n++] = request[nameEnd + 2];
  k[n++] = request[nameEnd + 3];
  const flags = queryKeyFlags(request, nameEnd + 4);
  if (flags < 0) return null;
  k[n++] = 0x30 + flags;
  keyInfo.nameEnd = nameEnd;
  keyInfo.flags = flags;
  return k.latin1Slice(0, n);
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
  // The whole of `wire`: on Node 20, copying a sub-range allocates a temporary view per call.
  wire.copy(out, 0, 0, len);
  out[0] = request[0];
  out[1] = request[1];
  // Byte 2: QR(0x80) OPCODE(0x78) AA(0x04) TC(0x02) RD(0x01).
  out[2] = (out[2] & (clearAa ? 0xfa : 0xfe)) | (request[2] & 0x01);
  // Byte 3: RA(0x80) Z(0x40) AD(0x20) CD(0x10) RCODE(0x0f).
  if (!doBit && (request[3] & 0x20) === 0) out[3] = out[3] & 0xdf;
  // A byte loop: for a ~20-byte name it is 3x cheaper than a native copy() call.
  for (let i = 12; i < nameEnd; i++) out[i] = request[i];
  return out;
}

/**
 * Writes the TTL of every record at `offsets[i]` (big-endian u32) of `out`:
 * the TTL at the same offset of `wire` (the stored copy) minus `age`, floored
 * at 0. With `fixed >= 0`, writes `fixed` everywhere instead (stale answers).
 */
export function writeTtls(out: Buffer, wire: Buffer, offsets: readonly number[], age: number, fixed: number): void {
  const n = offsets.length;
  for (let i = 0; i < n; i++) {
    const o = offsets[i];
    let t = fixed >= 0 ? fixed : ((wire[o] << 24) | (wire[o + 1] << 16) | (wire[o + 2] << 8) | wire[o + 3]) - age;
    if (t < 0) t = 0;
    out[o] = t >>> 24;
    out[o + 1] = (t >>> 16) & 0xff;
    out[o + 2] = (t >>> 8) & 0xff;
    out[o + 3] = t & 0xff;
  }
}

/**
 * {@link writeTtls} for an entry stored in a slab: the `len` wire bytes at
 * `off` in `src`, followed by a big-endian u16 count and that many u16 TTL
 * offsets (relative to `off`).
 */
export function writeTtlsAt(out: Buffer, src: Buffer, off: number, len: number, age: number): void {
  const table = off + len;
  const n = (src[table] << 8) | src[table + 1];
  for (let q = table + 2, end = q + 2 * n; q < end; q += 2) {
    const o = (src[q] << 8) | src[q + 1];
    const s = off + o;
    let t = ((src[s] << 24) | (src[s + 1] << 16) | (src[s + 2] << 8) | src[s + 3]) - age;
    if (t < 0) t = 0;
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
