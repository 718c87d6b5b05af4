/**
 * What is cache-specific at the byte level: flush requests name a domain in
 * presentation form, turned into lowercased wire form here (through core's
 * `nameToWire`) with errors reported as {@link CacheNameError}. Every other
 * wire helper (question key, copy-and-patch, TTL rewrite, name skipping)
 * is in `@heimdall/core/wire`.
 */
import { Buffer } from 'node:buffer';
import { createError } from '@heimdall/core/errors';
import { LOWER, MAX_NAME_LENGTH, nameToWire } from '@heimdall/core/wire';

/** Error raised for a name that cannot be a DNS name (flush requests): code `CACHE_BAD_NAME`, admin status 400. */
export const CacheNameError = createError<[name: string, reason: string]>('CACHE_BAD_NAME', 'plugin/cache: bad name %j: %s', 400);

const scratch = Buffer.allocUnsafe(MAX_NAME_LENGTH);

/**
 * A presentation name (`www.example.com`, trailing dot optional, `""` or
 * `"."` for the root, RFC 1035 escapes `\.` and `\DDD`) to lowercased wire
 * format (a new Buffer). Characters outside printable ASCII must be escaped.
 * Throws {@link CacheNameError} for empty labels, labels over 63 bytes,
 * names over 255 bytes and bad escapes.
 */
export function flushNameToWire(name: string): Buffer {
  if (typeof name !== 'string') throw new CacheNameError(String(name), 'not a string');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x7e || c < 0x21) throw new CacheNameError(name, 'characters outside printable ASCII must be escaped as \\DDD');
  }
  let end: number;
  try {
    end = nameToWire(name, scratch, 0);
  } catch (e) {
    throw new CacheNameError(name, (e as Error).message);
  }
  const out = Buffer.allocUnsafe(end);
  for (let i = 0; i < end; i++) out[i] = LOWER[scratch[i]];
  return out;
}
