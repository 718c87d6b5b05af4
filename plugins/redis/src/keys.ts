/**
 * Key layout in Redis, all under the `keyPrefix` (default `heimdall:`):
 * - `<prefix>c:<cache key bytes>` → the cache's binary entry, PX until its expiry;
 * - `<prefix>s:<state key>` → a state record (JSON);
 * - `<prefix>flushes` → a stream of recent flushes (the log a reconnecting instance replays);
 * - channel `<prefix>sync` → flush and state messages.
 *
 * A cache key is the question's lowercased wire name, QTYPE, QCLASS and one
 * flag byte (the cache's question key).
 */
import { Buffer } from 'node:buffer';
import type { FlushScope } from '@heimdall/core';
import { LOWER, MAX_NAME_LENGTH, nameToWire } from '@heimdall/core/wire';

/** The names of the layout above for one `keyPrefix` (the one place they are spelled). */
export function redisKeys(keyPrefix: string): { readonly cache: string; readonly state: string; readonly flushLog: string; readonly channel: string } {
  return { cache: `${keyPrefix}c:`, state: `${keyPrefix}s:`, flushLog: `${keyPrefix}flushes`, channel: `${keyPrefix}sync` };
}

/** Bytes after the name in a cache key: QTYPE, QCLASS, flag. */
const KEY_TAIL = 5;

const scratch = Buffer.allocUnsafe(MAX_NAME_LENGTH);

/** A presentation name (`www.example.com`, trailing dot optional) in lowercased wire form. Throws on a bad name. */
export function nameToLowerWire(name: string): Buffer {
  const end = nameToWire(name, scratch, 0);
  const out = Buffer.allocUnsafe(end);
  for (let i = 0; i < end; i++) out[i] = LOWER[scratch[i]!]!;
  return out;
}

/** Whether cache key `key` (from offset `at`) asks about exactly the name `wire`. */
export function keyIsName(key: Uint8Array, at: number, wire: Uint8Array): boolean {
  if (key.length - at !== wire.length + KEY_TAIL) return false;
  for (let i = 0; i < wire.length; i++) if (key[at + i] !== wire[i]) return false;
  return true;
}

/** Whether the name of cache key `key` (from offset `at`) is `suffix` or below it, label-aligned. */
export function keyIsUnder(key: Uint8Array, at: number, suffix: Uint8Array): boolean {
  const nameEnd = key.length - KEY_TAIL;
  let p = at;
  while (p <= nameEnd - suffix.length) {
    if (nameEnd - p === suffix.length) {
      for (let i = 0; i < suffix.length; i++) if (key[p + i] !== suffix[i]) return false;
      return true;
    }
    const len = key[p]!;
    if (len === 0 || len > 63) return false;
    p += len + 1;
  }
  return false;
}

/** Escapes Redis glob metacharacters (`* ? [ ] \`) in raw bytes. */
export function globEscape(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  for (const b of bytes) {
    if (b === 0x2a || b === 0x3f || b === 0x5b || b === 0x5d || b === 0x5c) out.push(0x5c);
    out.push(b);
  }
  return Buffer.from(out);
}

/** A flush scope compiled: a SCAN pattern (under the cache prefix) and the exact test of a full key. */
export interface FlushMatcher {
  readonly pattern: Buffer;
  /** Whether a full Redis key (cache prefix included, `at` = prefix length) matches. */
  matches(key: Uint8Array, at: number): boolean;
}

/** Compiles a flush scope against the cache key prefix. Throws on a bad name. */
export function flushMatcher(scope: FlushScope, cachePrefix: Buffer): FlushMatcher {
  const p = globEscape(cachePrefix);
  if ('all' in scope) return { pattern: Buffer.concat([p, Buffer.from('*')]), matches: () => true };
  if ('name' in scope) {
    const wire = nameToLowerWire(scope.name);
    return { pattern: Buffer.concat([p, globEscape(wire), Buffer.from('?????')]), matches: (k, at) => keyIsName(k, at, wire) };
  }
  const raw = scope.suffix.startsWith('*.') ? scope.suffix.slice(2) : scope.suffix;
  const wire = nameToLowerWire(raw);
  // The root suffix matches everything.
  if (wire.length === 1) return { pattern: Buffer.concat([p, Buffer.from('*')]), matches: () => true };
  return { pattern: Buffer.concat([p, Buffer.from('*'), globEscape(wire), Buffer.from('?????')]), matches: (k, at) => keyIsUnder(k, at, wire) };
}

/** A flush scope as sent in sync messages (plain JSON), checked on receipt. */
export function scopeFromJson(v: unknown): FlushScope | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.all === true) return { all: true };
  if (typeof o.name === 'string' && o.name.length > 0 && o.name.length <= 1024) return { name: o.name };
  if (typeof o.suffix === 'string' && o.suffix.length > 0 && o.suffix.length <= 1024) return { suffix: o.suffix };
  return null;
}
