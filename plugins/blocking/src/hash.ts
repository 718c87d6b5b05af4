/**
 * 64-bit name hashing in two independent 32-bit lanes, computed from the
 * LAST character of a name towards the first, with ASCII case folding.
 *
 * Hashing right to left makes the hash of every suffix a prefix of the same
 * computation: when the walk over `a.b.example.com` reaches a dot, the running
 * state is exactly the hash of the suffix after that dot (`example.com`,
 * `b.example.com`, …). A lookup therefore visits each label boundary once,
 * on the raw string, without slicing a single label.
 *
 * Lane 1 is FNV-1a; lane 2 is a multiply/xor-shift (murmur-style constant).
 * Both start from per-build random seeds, so a client cannot precompute a name
 * that collides with a listed one.
 */

/** Per-build seeds: two lane initial values. */
export interface HashSeed {
  readonly s1: number;
  readonly s2: number;
}

/** Fresh random seeds (crypto quality is not needed, unpredictability is). */
export function randomSeed(): HashSeed {
  const a = new Uint32Array(2);
  crypto.getRandomValues(a);
  return { s1: (0x811c9dc5 ^ a[0]!) >>> 0, s2: (0x9747b28c ^ a[1]!) >>> 0 };
}

/** A fixed seed for reproducible tests and benchmarks. */
export const FIXED_SEED: HashSeed = Object.freeze({ s1: 0x811c9dc5, s2: 0x9747b28c });

/**
 * Hashes a whole name (already lowercase or not: letters are folded) into
 * `out[0]` (lane 1) and `out[1]` (lane 2). Equal to the state a suffix walk
 * has after consuming the name completely.
 */
export function hashName(name: string, seed: HashSeed, out: Uint32Array): void {
  let h1 = seed.s1 | 0;
  let h2 = seed.s2 | 0;
  for (let i = name.length - 1; i >= 0; i--) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  out[0] = h1 >>> 0;
  out[1] = h2 >>> 0;
}
