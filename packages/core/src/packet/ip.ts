/**
 * IPv4/IPv6 text <-> bytes, allocation-light. IPv6 text follows RFC 5952
 * (lowercase, longest run of two or more zero groups shortened to `::`).
 */
import { describeValue, PacketError } from './errors.js';

const OCTET: string[] = [];
for (let i = 0; i < 256; i++) OCTET.push(String(i));

// Recently formatted IPv4 addresses by value (direct-mapped, 1024 slots):
// answers repeat addresses, and a hit costs a compare instead of a string.
const V4_SLOTS = 1024;
const v4Key = new Float64Array(V4_SLOTS).fill(-1);
const v4Text: string[] = new Array(V4_SLOTS).fill('');

/** Formats 4 bytes at `offset` as dotted quad. The caller checks bounds. */
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

/** Formats 16 bytes at `offset` as RFC 5952 text. The caller checks bounds. */
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

function badIp(text: unknown, kind: string): PacketError {
  return new PacketError('INVALID_VALUE', -1, `not an ${kind} address: ${describeValue(text)}`);
}

/** Parses dotted-quad text into 4 bytes at `offset`. Throws `INVALID_VALUE`. */
export function parseIPv4(text: string, dst: Uint8Array, offset: number): void {
  if (typeof text !== 'string') throw badIp(text, 'IPv4');
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 0x2e : text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 3) throw badIp(text, 'IPv4');
      dst[offset + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) throw badIp(text, 'IPv4'); // no leading zeros (octal ambiguity)
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) throw badIp(text, 'IPv4');
    } else {
      throw badIp(text, 'IPv4');
    }
  }
  if (part !== 4) throw badIp(text, 'IPv4');
}

const v4tmp = new Uint8Array(4);

/** Parses IPv6 text (with `::` and an optional embedded IPv4 tail) into 16 bytes. Throws `INVALID_VALUE`. */
export function parseIPv6(text: string, dst: Uint8Array, offset: number): void {
  if (typeof text !== 'string' || text.length < 2 || text.length > 45) throw badIp(text, 'IPv6');
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  const n = text.length;
  if (text.charCodeAt(0) === 0x3a) {
    if (text.charCodeAt(1) !== 0x3a) throw badIp(text, 'IPv6');
    gap = 0;
    i = 2;
  }
  while (i < n) {
    // One group, or an IPv4 tail.
    let j = i;
    let value = 0;
    while (j < n) {
      const c = text.charCodeAt(j);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else break;
      value = value * 16 + d;
      j++;
    }
    if (j < n && text.charCodeAt(j) === 0x2e) {
      parseIPv4(text.slice(i), v4tmp, 0);
      groups.push((v4tmp[0] << 8) | v4tmp[1], (v4tmp[2] << 8) | v4tmp[3]);
      i = n;
      break;
    }
    if (j === i || j - i > 4) throw badIp(text, 'IPv6');
    groups.push(value);
    i = j;
    if (i === n) break;
    if (text.charCodeAt(i) !== 0x3a) throw badIp(text, 'IPv6');
    i++;
    if (i < n && text.charCodeAt(i) === 0x3a) {
      if (gap >= 0) throw badIp(text, 'IPv6');
      gap = groups.length;
      i++;
    } else if (i === n) {
      throw badIp(text, 'IPv6');
    }
  }
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) throw badIp(text, 'IPv6');
  const fill = 8 - groups.length;
  let g = 0;
  for (let k = 0; k < 8; k++) {
    let v: number;
    if (gap >= 0 && k >= gap && k < gap + fill) v = 0;
    else v = groups[g++];
    dst[offset + k * 2] = v >> 8;
    dst[offset + k * 2 + 1] = v & 0xff;
  }
}
