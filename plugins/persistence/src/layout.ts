/**
 * Byte layout of the cache databases.
 *
 * `entries`: cache key bytes → 16-byte header (expiresAt f64 LE, writtenAt
 * f64 LE, both epoch ms) followed by the cache's entry bytes, unchanged.
 * `age`: writtenAt (6 bytes big-endian, so LMDB's byte order is oldest
 * first) + cache key → expiresAt (f64 LE). The age index serves eviction
 * (oldest first) and the expired-entry sweep without reading `entries`.
 */
import { LOWER, MAX_NAME_LENGTH, nameToWire } from '@heimdall/core/wire';

/** Bytes before the cache's entry in an `entries` value. */
export const HEADER = 16;
/** Bytes of the time prefix of an `age` key. */
export const AGE_PREFIX = 6;

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

/** An `age` value: expiresAt as f64 LE. */
export function ageValue(expiresAt: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  writeF64(out, 0, expiresAt);
  return out;
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
