/**
 * IP addresses and CIDR prefixes: the one implementation of the repo.
 *
 * Text is validated by Node itself (`node:net` `isIPv4`/`isIPv6`: strict
 * dotted quads without leading zeros, every IPv6 form including `::` and an
 * IPv4 tail), so there is no address grammar of our own to get wrong and no
 * dependency to add. Validated text is converted to bytes once and memoized
 * (bounded), so the encoder's hot path (an A or AAAA record whose address it
 * has seen before) costs one `Map.get` and a 4- or 16-byte copy. Bytes are
 * formatted allocation-light (IPv6 per RFC 5952).
 */
import { Buffer } from 'node:buffer';
import { isIPv4, isIPv6 } from 'node:net';
import { describeValue, PacketError } from '../packet/errors.js';

const OCTET: string[] = [];
for (let i = 0; i < 256; i++) OCTET.push(String(i));

// Recently formatted IPv4 addresses by value (direct-mapped, 1024 slots):
// answers repeat addresses, and a hit costs a compare instead of a string.
const V4_SLOTS = 1024;
const v4Key = new Float64Array(V4_SLOTS).fill(-1);
const v4Text: string[] = new Array(V4_SLOTS).fill('');

/** Formats the 4 bytes at `offset` as a dotted quad. The caller checks bounds. */
export function formatIPv4(buf: Uint8Array, offset: number): string {
  const a = buf[offset];
  const b = buf[offset + 1];
  const c = buf[offset + 2];
  const d = buf[offset + 3];
  const key = a * 0x1000000 + ((b << 16) | (c << 8) | d);
  const slot = (a ^ (b << 2) ^ (c << 5) ^ (d << 7) ^ (d >>> 3)) & (V4_SLOTS - 1);
  if (v4Key[slot] === key) return v4Text[slot];
  const s = OCTET[a] + '.' + OCTET[b] + '.' + OCTET[c] + '.' + OCTET[d];
  v4Key[slot] = key;
  v4Text[slot] = s;
  return s;
}

/** Formats the 16 bytes at `offset` as RFC 5952 text (lowercase, longest zero run as `::`). The caller checks bounds. */
export function formatIPv6(buf: Uint8Array, offset: number): string {
  // Find the longest run of zero groups (length >= 2, first one wins).
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let g = 0; g < 8; g++) {
    const zero = buf[offset + g * 2] === 0 && buf[offset + g * 2 + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = g;
      const runLen = g - runStart + 1;
      if (runLen > bestLen) {
        bestLen = runLen;
        bestStart = runStart;
      }
    } else {
      runStart = -1;
    }
  }
  if (bestLen < 2) bestStart = -1;
  let out = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      out += g === 0 ? '::' : ':';
      g += bestLen - 1;
      continue;
    }
    out += ((buf[offset + g * 2] << 8) | buf[offset + g * 2 + 1]).toString(16);
    if (g < 7) out += ':';
  }
  return out;
}

// ---- text → bytes ---------------------------------------------------------------------------

const MEMO_MAX = 1024;
/** IPv4 text → its value as an unsigned 32-bit number. */
const v4Memo = new Map<string, number>();
/** IPv6 text (no zone) → its 16 bytes. */
const v6Memo = new Map<string, Uint8Array>();

/** The value of validated dotted-quad text. */
function v4Value(text: string): number {
  let value = 0;
  let part = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      value = value * 256 + part;
      part = 0;
    } else {
      part = part * 10 + (c - 0x30);
    }
  }
  return value * 256 + part;
}

/** The 16 bytes of validated IPv6 text without a zone (`::` and an IPv4 tail allowed). */
function v6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  const gap = text.indexOf('::');
  const head = gap < 0 ? text : text.slice(0, gap);
  const tail = gap < 0 ? '' : text.slice(gap + 2);
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups: number[] = [];
  const push = (parts: string[], into: number[]): void => {
    for (const p of parts) {
      if (p.indexOf('.') >= 0) {
        const v = v4Value(p);
        into.push(v >>> 16, v & 0xffff);
      } else {
        into.push(Number.parseInt(p, 16));
      }
    }
  };
  push(h, groups);
  const after: number[] = [];
  push(t, after);
  while (groups.length + after.length < 8) groups.push(0);
  groups.push(...after);
  for (let g = 0; g < 8; g++) {
    out[g * 2] = groups[g] >>> 8;
    out[g * 2 + 1] = groups[g] & 0xff;
  }
  return out;
}

function remember<V>(memo: Map<string, V>, key: string, value: V): V {
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(key, value);
  return value;
}

/** Value of IPv4 text, or -1 when `text` is not a dotted quad. */
function ipv4ValueOf(text: string): number {
  const v = v4Memo.get(text);
  if (v !== undefined) return v;
  if (typeof text !== 'string' || !isIPv4(text)) return -1;
  return remember(v4Memo, text, v4Value(text));
}

/** Bytes of IPv6 text without a zone, or null. */
function ipv6BytesOf(text: string): Uint8Array | null {
  const v = v6Memo.get(text);
  if (v !== undefined) return v;
  if (typeof text !== 'string' || text.indexOf('%') >= 0 || !isIPv6(text)) return null;
  return remember(v6Memo, text, v6Bytes(text));
}

function badIp(text: unknown, kind: string): PacketError {
  return new PacketError('INVALID_VALUE', -1, `not an ${kind} address: ${describeValue(text)}`);
}

/**
 * Writes the 4 bytes of dotted-quad `text` at `dst[offset]` (the caller
 * checks room).
 *
 * @throws PacketError `INVALID_VALUE` when `text` is not an IPv4 address.
 */
export function parseIPv4(text: string, dst: Uint8Array, offset: number): void {
  const v = ipv4ValueOf(text);
  if (v < 0) throw badIp(text, 'IPv4');
  dst[offset] = v >>> 24;
  dst[offset + 1] = (v >>> 16) & 0xff;
  dst[offset + 2] = (v >>> 8) & 0xff;
  dst[offset + 3] = v & 0xff;
}

/**
 * Writes the 16 bytes of IPv6 `text` (any RFC 4291 form, no zone) at
 * `dst[offset]` (the caller checks room).
 *
 * @throws PacketError `INVALID_VALUE` when `text` is not an IPv6 address.
 */
export function parseIPv6(text: string, dst: Uint8Array, offset: number): void {
  const b = ipv6BytesOf(text);
  if (b === null) throw badIp(text, 'IPv6');
  dst.set(b, offset);
}

/** 4 for IPv4 text, 6 for IPv6 text (a `%zone` suffix allowed), 0 otherwise. */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (typeof text !== 'string') return 0;
  if (ipv4ValueOf(text) >= 0) return 4;
  const pct = text.indexOf('%');
  return ipv6BytesOf(pct >= 0 ? text.slice(0, pct) : text) !== null ? 6 : 0;
}

/**
 * The bytes of an address as a client or a config names it: 4 bytes for
 * IPv4 and for IPv4-mapped IPv6 (`::ffff:192.0.2.1`, an IPv4 client on a
 * dual-stack socket), 16 for other IPv6; a `%zone` suffix is ignored. Null
 * when `text` is not an address. A new Buffer each call (the caller may keep it).
 */
export function ipToBytes(text: string): Buffer | null {
  if (typeof text !== 'string') return null;
  const v = ipv4ValueOf(text);
  if (v >= 0) {
    const out = Buffer.allocUnsafe(4);
    out.writeUInt32BE(v, 0);
    return out;
  }
  const pct = text.indexOf('%');
  const b = ipv6BytesOf(pct >= 0 ? text.slice(0, pct) : text);
  if (b === null) return null;
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
  return Buffer.from(mapped ? b.subarray(12) : b);
}

/** A parsed CIDR prefix: family, 4 or 16 network bytes (host bits zero), prefix length. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Buffer;
  readonly prefix: number;
}

/**
 * Parses `a.b.c.d/n` or `x::y/n` (IPv4-mapped IPv6 counts as IPv4, see
 * {@link ipToBytes}); host bits are cleared. Null when invalid (no slash,
 * prefix not 0..32 / 0..128).
 */
export function parseCidr(text: string): Cidr | null {
  if (typeof text !== 'string') return null;
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const p = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p)) return null;
  const prefix = Number(p);
  const bytes = ipToBytes(text.slice(0, slash));
  if (bytes === null || prefix > bytes.length * 8) return null;
  maskBytes(bytes, prefix);
  return { family: bytes.length === 4 ? 4 : 6, bytes, prefix };
}

/** Clears every bit of `bytes` past the first `prefix` bits, in place (RFC 7871 §6 addresses, CIDR networks). */
export function maskBytes(bytes: Uint8Array, prefix: number): void {
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
}

/** True when the address `bytes` (from {@link ipToBytes}) is inside `cidr` (same family). */
export function cidrContains(cidr: Cidr, bytes: Uint8Array): boolean {
  if (bytes.length !== cidr.bytes.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i] & mask) !== cidr.bytes[i]) return false;
  }
  return true;
}
