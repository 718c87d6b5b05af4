import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';

// One randomFillSync call per 2048 IDs: crypto-quality IDs without a syscall
// or an allocation per query (crypto.randomInt costs ~1 µs per call).
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/** A 16-bit DNS message ID from a cryptographic source (RFC 5452 §9.2). */
export function randomId(): number {
  if (offset >= POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = (pool[offset]! << 8) | pool[offset + 1]!;
  offset += 2;
  return id;
}

/** A uniform random integer in [0, n) for strategy choices (not security-relevant). */
export function randomBelow(n: number): number {
  return Math.floor(Math.random() * n);
}
