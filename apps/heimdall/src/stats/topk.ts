/**
 * Top-k by the space-saving algorithm (Metwally, Agrawal, El Abbadi 2005):
 * `capacity` counters, whatever the number of distinct keys. A key seen
 * more than N/capacity times (N = every add) is always held; a held count
 * is over its true count by at most its `error`. A new key takes over the
 * smallest counter (found at the top of a min-heap) and inherits its count.
 *
 * Memory is fixed by `capacity`: the key strings held, a Map entry per
 * counter and four typed arrays (8 + 8 + 4 + 4 bytes per counter).
 */
import type { TopItem } from './model.js';

export class SpaceSaving {
  private readonly index = new Map<string, number>();
  private readonly keys: string[];
  private readonly counts: Float64Array;
  private readonly errors: Float64Array;
  /** Min-heap of counter indices by count. */
  private readonly heap: Int32Array;
  /** Position of each counter in the heap. */
  private readonly pos: Int32Array;
  private size = 0;
  /** Every add since the last reset. */
  total = 0;
  /** The key of the last add and its counter: a key repeated back to back (one client) skips the Map. */
  private lastKey: string | undefined = undefined;
  private lastAt = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.keys = new Array<string>(capacity).fill('');
    this.counts = new Float64Array(capacity);
    this.errors = new Float64Array(capacity);
    this.heap = new Int32Array(capacity);
    this.pos = new Int32Array(capacity);
  }

  /**
   * Counts one occurrence of `key`; returns the counter it went to. `hint`:
   * a counter returned for this key before (the caller's memo): when it
   * still holds the key, the Map lookup is skipped.
   */
  add(key: string, hint = -1): number {
    this.total++;
    const at = hint >= 0 && hint < this.size && this.keys[hint] === key ? hint : key === this.lastKey ? this.lastAt : this.index.get(key);
    if (at !== undefined) {
      this.counts[at]!++;
      this.down(this.pos[at]!);
      this.lastKey = key;
      this.lastAt = at;
      return at;
    }
    if (this.size < this.capacity) {
      const i = this.size++;
      this.lastKey = key;
      this.lastAt = i;
      this.keys[i] = key;
      this.counts[i] = 1;
      this.errors[i] = 0;
      this.heap[i] = i;
      this.pos[i] = i;
      this.index.set(key, i);
      this.up(i);
      return i;
    }
    // Replace the smallest counter.
    const i = this.heap[0]!;
    this.index.delete(this.keys[i]!);
    this.keys[i] = key;
    this.errors[i] = this.counts[i]!;
    this.counts[i]!++;
    this.index.set(key, i);
    this.lastKey = key;
    this.lastAt = i;
    this.down(0);
    return i;
  }

  /** The `limit` largest counters, largest first. */
  top(limit: number): TopItem[] {
    const idx = Array.from({ length: this.size }, (_, i) => i);
    idx.sort((a, b) => this.counts[b]! - this.counts[a]! || (this.keys[a]! < this.keys[b]! ? -1 : 1));
    return idx.slice(0, limit).map((i) => ({ key: this.keys[i]!, count: this.counts[i]!, error: this.errors[i]! }));
  }

  /** Keys held now. */
  get held(): number {
    return this.size;
  }

  reset(): void {
    this.index.clear();
    this.keys.fill('');
    this.size = 0;
    this.total = 0;
    this.lastKey = undefined;
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    const x = h[a]!;
    const y = h[b]!;
    h[a] = y;
    h[b] = x;
    this.pos[y] = a;
    this.pos[x] = b;
  }

  private up(p: number): void {
    const h = this.heap;
    const c = this.counts;
    while (p > 0) {
      const parent = (p - 1) >> 1;
      if (c[h[parent]!]! <= c[h[p]!]!) break;
      this.swap(p, parent);
      p = parent;
    }
  }

  private down(p: number): void {
    const h = this.heap;
    const c = this.counts;
    const n = this.size;
    for (;;) {
      const l = 2 * p + 1;
      if (l >= n) return;
      const r = l + 1;
      const m = r < n && c[h[r]!]! < c[h[l]!]! ? r : l;
      if (c[h[p]!]! <= c[h[m]!]!) return;
      this.swap(p, m);
      p = m;
    }
  }
}
