/**
 * Byte layout of the databases (format version 2).
 *
 * `entries`: cache key bytes → 20-byte header (CRC-32 u32 LE, expiresAt f64
 * LE, writtenAt f64 LE, both epoch ms) followed by the cache's entry bytes,
 * unchanged.
 * `age`: writtenAt (6 bytes big-endian, so LMDB's byte order is oldest
 * first) + cache key → CRC-32 u32 LE + expiresAt (f64 LE). The age index
 * serves eviction (oldest first) and the expired-entry sweep without reading
 * `entries`.
 * `state`: state key → CRC-32 u32 LE + the record as UTF-8 JSON.
 *
 * Every value starts with the CRC-32 (IEEE, zlib's) of its key followed by
 * the rest of the value: LMDB checksums nothing, so a value whose bytes
 * changed on disk (bit rot, a bad disk, a tool writing into the file) or
 * that sits under another key fails {@link intact} and is never used.
 */
import { Buffer } from 'node:buffer';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { LOWER, MAX_NAME_LENGTH, nameToWire } from '@heimdall/core/wire';

/** Bytes of the checksum at the start of every value. */
export const CHECKSUM = 4;
/** Offset of expiresAt (f64 LE, epoch ms) in an `entries` value. */
export const EXPIRES_AT = 4;
/** Offset of writtenAt (f64 LE, epoch ms) in an `entries` value. */
export const WRITTEN_AT = 12;
/** Bytes before the cache's entry in an `entries` value. */
export const HEADER = 20;
/** Bytes of the time prefix of an `age` key. */
export const AGE_PREFIX = 6;
/** Offset of expiresAt (f64 LE, epoch ms) in an `age` value. */
export const AGE_EXPIRES_AT = CHECKSUM;
/** Bytes of an `age` value: checksum + expiresAt. */
export const AGE_VALUE = CHECKSUM + 8;

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

/** Reads a little-endian f64 at `at` of any Uint8Array (lmdb-js hands out Buffers or, for large values, plain Uint8Arrays). */
export function readF64(bytes: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[i] = bytes[at + i];
  return f64[0];
}

/** Writes a little-endian f64 at `at`. */
export function writeF64(bytes: Uint8Array, at: number, value: number): void {
  f64[0] = value;
  bytes.set(f64Bytes, at);
}

/** The `age` key of an entry written at `writtenAt` (epoch ms) under `key`. */
export function ageKey(writtenAt: number, key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(AGE_PREFIX + key.length);
  out.writeUIntBE(Math.max(0, Math.min(Math.floor(writtenAt), 0xffff_ffff_ffff)), 0, AGE_PREFIX);
  out.set(key, AGE_PREFIX);
  return out;
}

/** writtenAt of an `age` key. */
export function ageKeyTime(k: Uint8Array): number {
  return Buffer.from(k.buffer, k.byteOffset, AGE_PREFIX).readUIntBE(0, AGE_PREFIX);
}

/** The `age` value stored under age key `k`: checksum + expiresAt (f64 LE). */
export function ageValue(k: Uint8Array, expiresAt: number): Buffer {
  const out = Buffer.allocUnsafe(AGE_VALUE);
  writeF64(out, AGE_EXPIRES_AT, expiresAt);
  seal(k, out);
  return out;
}

/** The `entries` value of `entry` under cache key `key`: checksum, expiresAt, writtenAt (epoch ms), the entry bytes. */
export function entryValue(key: Uint8Array, entry: Uint8Array, expiresAt: number, writtenAt: number): Buffer {
  const value = Buffer.allocUnsafe(HEADER + entry.length);
  writeF64(value, EXPIRES_AT, expiresAt);
  writeF64(value, WRITTEN_AT, writtenAt);
  value.set(entry, HEADER);
  seal(key, value);
  return value;
}

/** The `state` value of a record (any JSON value) under state key `key`: checksum + UTF-8 JSON. */
export function stateValue(key: string, record: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(record), 'utf8');
  const value = Buffer.allocUnsafe(CHECKSUM + json.length);
  json.copy(value, CHECKSUM);
  seal(Buffer.from(key, 'utf8'), value);
  return value;
}

/** The record in a `state` value, or `undefined` when the value fails its checksum (or, which it then cannot, is not JSON). */
export function readStateValue(key: string, value: Uint8Array): unknown {
  if (!intact(Buffer.from(key, 'utf8'), value)) return undefined;
  try {
    return JSON.parse(Buffer.from(value.buffer, value.byteOffset + CHECKSUM, value.length - CHECKSUM).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

// ---- Checksums ----------------------------------------------------------

/** CRC-32 (IEEE 802.3, reflected 0xEDB88320: zlib's) tables for slicing by 8. */
const CRC_TABLE = new Int32Array(256 * 8);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}
// Table t: the CRC of byte n followed by t zero bytes.
for (let t = 1; t < 8; t++) {
  for (let n = 0; n < 256; n++) {
    const prev = CRC_TABLE[(t - 1) * 256 + n];
    CRC_TABLE[t * 256 + n] = (prev >>> 8) ^ CRC_TABLE[prev & 0xff];
  }
}

/** Spans at least this long go to zlib's native CRC-32; shorter ones are faster in JS (a native call costs about as much as 250 bytes here). */
const NATIVE_FROM = 256;

/**
 * CRC-32 of `bytes[start, end)` continuing from `crc` (0 to start): the same
 * value as `zlib.crc32(bytes.subarray(start, end), crc)`, computed in JS
 * (slicing by 8) for short spans and by zlib for long ones.
 */
export function crc32(bytes: Uint8Array, start: number, end: number, crc: number): number {
  if (end - start >= NATIVE_FROM) return zlibCrc32(new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start), crc);
  const t = CRC_TABLE;
  let c = ~crc;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c =
      t[1792 + (a & 0xff)] ^
      t[1536 + ((a >>> 8) & 0xff)] ^
      t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + bytes[i + 4]] ^
      t[512 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** The checksum a value stored under `key` must carry: CRC-32 of the key bytes, then of the value after its checksum field. */
export function checksumOf(key: Uint8Array, value: Uint8Array): number {
  return crc32(value, CHECKSUM, value.length, crc32(key, 0, key.length, 0));
}

/** Writes the checksum of `value` (stored under `key`) into its first 4 bytes. */
export function seal(key: Uint8Array, value: Uint8Array): void {
  const c = checksumOf(key, value);
  value[0] = c & 0xff;
  value[1] = (c >>> 8) & 0xff;
  value[2] = (c >>> 16) & 0xff;
  value[3] = c >>> 24;
}

/** Whether `value`, read under `key`, carries its checksum (bytes unchanged since written, and written under this key). */
export function intact(key: Uint8Array, value: Uint8Array): boolean {
  if (value.length < CHECKSUM) return false;
  const stored = (value[0] | (value[1] << 8) | (value[2] << 16) | (value[3] << 24)) >>> 0;
  return stored === checksumOf(key, value);
}

const scratch = Buffer.allocUnsafe(MAX_NAME_LENGTH);

/** A presentation name (`www.example.com`, trailing dot optional) in lowercased wire form. Throws on a bad name. */
export function nameToLowerWire(name: string): Buffer {
  const end = nameToWire(name, scratch, 0);
  const out = Buffer.allocUnsafe(end);
  for (let i = 0; i < end; i++) out[i] = LOWER[scratch[i]];
  return out;
}

/**
 * Whether the question name at the start of cache key `key` is `suffix`
 * (lowercased wire form) or below it, label-aligned (`badexample.com` is not
 * below `example.com`). Keys hold plain (uncompressed) lowercased names.
 */
export function keyNameUnder(key: Uint8Array, suffix: Uint8Array): boolean {
  // The name ends with its root label (a 0 byte); the key adds type, class and a flag byte.
  const nameLength = key.length - 5;
  if (nameLength < suffix.length) return false;
  let p = 0;
  while (p <= nameLength - suffix.length) {
    if (nameLength - p === suffix.length) {
      for (let i = 0; i < suffix.length; i++) if (key[p + i] !== suffix[i]) return false;
      return true;
    }
    const len = key[p];
    if (len === 0 || len > 63) return false;
    p += len + 1;
  }
  return false;
}
