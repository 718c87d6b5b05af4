/**
 * The token buckets, one per client prefix, in a bounded `Map`.
 *
 * Amounts are in milli-queries: a query costs 1000, a bucket holds up to
 * `burst × 1000` and gains `rate` per millisecond, so with the coarse clock's
 * whole milliseconds the arithmetic of a query is a few integer operations.
 * A prefix seen before costs one `Map.get` and no allocation; a new one
 * allocates its bucket. At `maxTracked` a new prefix replaces an idle one
 * (its bucket full again: forgetting it changes nothing) among the oldest
 * few, else the least recently seen of them.
 */

/** One prefix's account. */
export class Bucket {
  /** Milli-queries available. */
  tokens: number;
  /** Coarse time (ms) of the last refill. */
  last: number;
  /** Time of the last query over the limit, or -1. */
  limitedAt: number;
  /** Start of the current limited episode, or -1 when not limited. */
  since: number;
  /** Queries over the limit in the current episode. */
  excess: number;

  constructor(tokens: number, now: number) {
    this.tokens = tokens;
    this.last = now;
    this.limitedAt = -1;
    this.since = -1;
    this.excess = 0;
  }
}

/** A prefix over its limit, as the `limited` admin action lists it. */
export interface LimitedPrefix {
  readonly prefix: string;
  /** Epoch ms at which this episode started. */
  readonly since: number;
  /** Queries over the limit since then. */
  readonly excess: number;
}

/** How many of the oldest entries an insertion at the bound looks at. */
const EVICTION_SCAN = 16;
/** A prefix counts as limited until this long after its last excess query. */
export const LIMITED_HOLD_MS = 1000;

/** The bucket table. Pure: time is given by the caller. */
export class BucketTable {
  readonly #map = new Map<number | string, Bucket>();
  readonly #perMs: number;
  readonly #capacity: number;
  readonly #max: number;
  /** Prefixes forgotten at the bound. */
  evictions = 0;

  constructor(perMs: number, capacity: number, maxTracked: number) {
    this.#perMs = perMs;
    this.#capacity = capacity;
    this.#max = maxTracked;
  }

  get size(): number {
    return this.#map.size;
  }

  /**
   * Takes one query from `key`'s bucket at time `now` (ms). Returns null
   * when the query may pass, else the bucket (over its limit; the caller
   * counts the episode).
   */
  take(key: number | string, now: number): Bucket | null {
    const b = this.#map.get(key);
    if (b === undefined) {
      this.#insert(key, now);
      return null;
    }
    let tokens = b.tokens;
    const elapsed = now - b.last;
    if (elapsed > 0) {
      tokens += elapsed * this.#perMs;
      if (tokens > this.#capacity) tokens = this.#capacity;
      b.last = now;
    }
    if (tokens >= 1000) {
      b.tokens = tokens - 1000;
      return null;
    }
    b.tokens = tokens;
    return b;
  }

  #insert(key: number | string, now: number): void {
    const map = this.#map;
    if (map.size >= this.#max) {
      let victim: number | string | undefined;
      let oldest = Number.POSITIVE_INFINITY;
      let n = 0;
      for (const [k, b] of map) {
        if (this.#idle(b, now)) {
          victim = k;
          break;
        }
        if (b.last < oldest) {
          oldest = b.last;
          victim = k;
        }
        if (++n >= EVICTION_SCAN) break;
      }
      map.delete(victim!);
      this.evictions++;
    }
    map.set(key, new Bucket(this.#capacity - 1000, now));
  }

  /** True when the bucket has refilled completely by `now` (it carries no state). */
  #idle(b: Bucket, now: number): boolean {
    return b.tokens + (now - b.last) * this.#perMs >= this.#capacity && (b.limitedAt < 0 || now - b.limitedAt >= LIMITED_HOLD_MS);
  }

  /** Forgets every idle bucket (periodic sweep). Returns how many were removed. */
  sweep(now: number): number {
    let n = 0;
    for (const [k, b] of this.#map) {
      if (this.#idle(b, now)) {
        this.#map.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Buckets over their limit within the last {@link LIMITED_HOLD_MS}, with their keys. */
  *limited(now: number): IterableIterator<[number | string, Bucket]> {
    for (const e of this.#map) if (e[1].limitedAt >= 0 && now - e[1].limitedAt < LIMITED_HOLD_MS) yield e;
  }

  clear(): void {
    this.#map.clear();
  }
}
