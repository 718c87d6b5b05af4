import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CacheEntry } from './entry.js';
import { CacheNode, LruPolicy, S3FifoPolicy, SievePolicy } from './policy.js';

const dummy = {} as CacheEntry;

/** SIEVE as the paper describes it, over an array from tail (oldest, index 0) to head. */
class ReferenceSieve {
  items: Array<{ key: string; visited: boolean }> = [];
  hand: number | null = null;
  insert(key: string): void {
    this.items.push({ key, visited: false });
  }
  hit(key: string): void {
    this.items.find((x) => x.key === key)!.visited = true;
  }
  remove(key: string): void {
    const i = this.items.findIndex((x) => x.key === key);
    this.items.splice(i, 1);
    if (this.hand !== null) {
      if (i < this.hand) this.hand--;
      if (this.hand >= this.items.length) this.hand = null;
    }
  }
  evict(): string | null {
    if (this.items.length === 0) return null;
    let h = this.hand ?? 0;
    while (this.items[h].visited) {
      this.items[h].visited = false;
      h = h + 1 < this.items.length ? h + 1 : 0;
    }
    const key = this.items[h].key;
    this.items.splice(h, 1);
    this.hand = h < this.items.length ? h : null;
    return key;
  }
}

/** LRU over an array from least (index 0) to most recently used. */
class ReferenceLru {
  items: string[] = [];
  insert(key: string): void {
    this.items.push(key);
  }
  hit(key: string): void {
    this.remove(key);
    this.items.push(key);
  }
  remove(key: string): void {
    this.items.splice(this.items.indexOf(key), 1);
  }
  evict(): string | null {
    return this.items.shift() ?? null;
  }
}

const ops = fc.array(fc.tuple(fc.constantFrom('insert', 'hit', 'remove', 'evict'), fc.nat(30)), { maxLength: 300 });

describe('eviction policies against reference models', () => {
  for (const [name, make, ref] of [
    ['sieve', () => new SievePolicy(), () => new ReferenceSieve()],
    ['lru', () => new LruPolicy(), () => new ReferenceLru()],
  ] as const) {
    it(`${name} evicts exactly what the reference model evicts`, () => {
      fc.assert(
        fc.property(ops, (list) => {
          const policy = make();
          const model = ref();
          const live = new Map<string, CacheNode>();
          let fresh = 0;
          for (const [op, n] of list) {
            const keys = [...live.keys()];
            if (op === 'insert' || keys.length === 0) {
              const key = `k${fresh++}`;
              const node = new CacheNode(key, dummy, 1);
              live.set(key, node);
              policy.insert(node);
              model.insert(key);
            } else if (op === 'hit') {
              const key = keys[n % keys.length];
              policy.hit(live.get(key)!);
              model.hit(key);
            } else if (op === 'remove') {
              const key = keys[n % keys.length];
              policy.remove(live.get(key)!);
              live.delete(key);
              model.remove(key);
            } else {
              const victim = policy.evict();
              const expected = model.evict();
              expect(victim?.key ?? null).toBe(expected);
              if (victim) live.delete(victim.key);
            }
          }
          // Drain: the remaining eviction order matches too.
          for (;;) {
            const v = policy.evict();
            expect(v?.key ?? null).toBe(model.evict());
            if (v === null) break;
          }
        }),
        { numRuns: 300 },
      );
    });
  }

  it('s3fifo evicts every node exactly once and keeps hot keys longer than one-hit wonders', () => {
    fc.assert(
      fc.property(ops, (list) => {
        const policy = new S3FifoPolicy(16);
        const live = new Map<string, CacheNode>();
        let fresh = 0;
        for (const [op, n] of list) {
          const keys = [...live.keys()];
          if (op === 'insert' || keys.length === 0) {
            const node = new CacheNode(`k${fresh++}`, dummy, 1);
            live.set(node.key, node);
            policy.insert(node);
          } else if (op === 'hit') policy.hit(live.get(keys[n % keys.length])!);
          else if (op === 'remove') {
            const key = keys[n % keys.length];
            policy.remove(live.get(key)!);
            live.delete(key);
          } else {
            const v = policy.evict();
            expect(v).not.toBeNull();
            expect(live.delete(v!.key)).toBe(true);
          }
        }
        while (live.size > 0) {
          const v = policy.evict();
          expect(v).not.toBeNull();
          expect(live.delete(v!.key)).toBe(true);
        }
        expect(policy.evict()).toBeNull();
      }),
      { numRuns: 300 },
    );
    // A key hit twice survives a stream of one-hit wonders.
    const policy = new S3FifoPolicy(100);
    const hot = new CacheNode('hot', dummy, 1);
    policy.insert(hot);
    policy.hit(hot);
    policy.hit(hot);
    let survived = true;
    for (let i = 0; i < 1000; i++) {
      policy.insert(new CacheNode(`cold${i}`, dummy, 1));
      if (i >= 9) {
        const v = policy.evict()!;
        if (v === hot) survived = false;
        if (v.key === 'hot') break;
      }
      if (i % 50 === 0) policy.hit(hot);
    }
    expect(survived).toBe(true);
  });
});
