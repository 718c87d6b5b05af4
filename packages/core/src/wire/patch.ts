/**
 * Patching stored wire responses for one query: ID, flags, question letter
 * case, TTLs. The stored bytes are never touched; each routine writes into
 * a buffer the caller owns.
 */

import { Buffer } from 'node:buffer';
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
 *
 * `copyName` false skips the question name: for a store that keeps its
 * question names lowercased (the cache does) and a query whose name has no
 * ASCII capitals (`ctx.questionNameFolded` false), the octets are already
 * the query's own.
 */
export function copyForQuery(wire: Buffer, request: Buffer, nameEnd: number, doBit: boolean, clearAa: boolean, copyName = true): Buffer {
  const len = wire.length;
  const out = Buffer.allocUnsafe(len);
  // TypedArray#set of the whole of `wire`: what Buffer#copy does in the end, minus its argument checks (5 % of a cache hit's JS time).
  out.set(wire, 0);
  out[0] = request[0];
  out[1] = request[1];
  // Byte 2: QR(0x80) OPCODE(0x78) AA(0x04) TC(0x02) RD(0x01).
  out[2] = (out[2] & (clearAa ? 0xfa : 0xfe)) | (request[2] & 0x01);
  // Byte 3: RA(0x80) Z(0x40) AD(0x20) CD(0x10) RCODE(0x0f).
  if (!doBit && (request[3] & 0x20) === 0) out[3] = out[3] & 0xdf;
  // A byte loop: for a ~20-byte name it is 3x cheaper than a native copy() call.
  if (copyName) for (let i = 12; i < nameEnd; i++) out[i] = request[i];
  return out;
}

/** A copy of `msg` with its ID set to `id` (the input is never modified: callers may share it). */
export function copyWithId(msg: Buffer, id: number): Buffer {
  const out = Buffer.allocUnsafe(msg.length);
  out.set(msg, 0);
  out[0] = id >>> 8;
  out[1] = id & 0xff;
  return out;
}

/** Overwrites the ID of a buffer the caller owns. */
export function setId(msg: Buffer, id: number): void {
  msg[0] = id >>> 8;
  msg[1] = id & 0xff;
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

/**
 * RFC 2181 §8: the TTL at `p` (big-endian u32), 0 when its top bit is set.
 * The caller checks bounds.
 */
export function readTtl(buf: Buffer, p: number): number {
  return buf[p] >= 0x80 ? 0 : buf[p] * 0x1000000 + ((buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]);
}
