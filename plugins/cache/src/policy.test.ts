import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type EvictionPolicy, LruPolicy, S3FifoPolicy, SievePolicy } from './policy.js';

/** Slot numbers for keys, handed out and recycled the way the store does (free list first). */
class Slots {
  readonly keys: string[] = [];
  readonly live = new Map<string, number>();
  private readonly free: number[] = [];
  add(key: string): number {
    const slot = this.free.pop() ?? this.keys.length;
    this.keys[slot] = key;
    this.live.set(key, slot);
    return slot;
  }
  drop(slot: number): string {
    const key = this.keys[slot];
    this.live.delete(key);
    this.free.push(slot);
    return key;
  }
}

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
          const policy: EvictionPolicy = make();
          policy.resize(4); // grown on demand below, as the store does
          let capacity = 4;
          const model = ref();
          const slots = new Slots();
          let fresh = 0;
          for (const [op, n] of list) {
            const keys = [...slots.live.keys()];
            if (op === 'insert' || keys.length === 0) {
              const key = `k${fresh++}`;
              const slot = slots.add(key);
              if (slot >= capacity) policy.resize((capacity *= 2));
              policy.insert(slot);
              model.insert(key);
            } else if (op === 'hit') {
              const key = keys[n % keys.length];
              policy.hit(slots.live.get(key)!);
              model.hit(key);
            } else if (op === 'remove') {
              const key = keys[n % keys.length];
              const slot = slots.live.get(key)!;
              policy.remove(slot);
              slots.drop(slot);
              model.remove(key);
            } else {
              const victim = policy.evict();
              const expected = model.evict();
              expect(victim >= 0 ? slots.drop(victim) : null).toBe(expected);
            }
          }
          // Drain: the remaining eviction order matches too.
          for (;;) {
            const v = policy.evict();
            expect(v >= 0 ? slots.drop(v) : null).toBe(model.evict());
            if (v < 0) break;
          }
        }),
        { numRuns: 300 },
      );
    });
  }

  it('s3fifo evicts every slot exactly once and keeps hot keys longer than one-hit wonders', () => {
    fc.assert(
      fc.property(ops, (list) => {
        const slots = new Slots();
        const policy = new S3FifoPolicy(16, (s) => slots.keys[s]);
        policy.resize(512);
        let fresh = 0;
        for (const [op, n] of list) {
          const keys = [...slots.live.keys()];
          if (op === 'insert' || keys.length === 0) policy.insert(slots.add(`k${fresh++}`));
          else if (op === 'hit') policy.hit(slots.live.get(keys[n % keys.length])!);
          else if (op === 'remove') {
            const slot = slots.live.get(keys[n % keys.length])!;
            policy.remove(slot);
            slots.drop(slot);
          } else {
            const v = policy.evict();
            expect(v).toBeGreaterThanOrEqual(0);
            expect(slots.live.has(slots.keys[v])).toBe(true);
            slots.drop(v);
          }
        }
        while (slots.live.size > 0) {
          const v = policy.evict();
          expect(v).toBeGreaterThanOrEqual(0);
          expect(slots.live.has(slots.keys[v])).toBe(true);
          slots.drop(v);
        }
        expect(policy.evict()).toBe(-1);
      }),
      { numRuns: 300 },
    );
    // A key hit twice survives a stream of one-hit wonders.
    const slots = new Slots();
    const policy = new S3FifoPolicy(100, (s) => slots.keys[s]);
    policy.resize(2048);
    const hot = slots.add('hot');
    policy.insert(hot);
    policy.hit(hot);
    policy.hit(hot);
    let survived = true;
    for (let i = 0; i < 1000; i++) {
      policy.insert(slots.add(`cold${i}`));
      if (i >= 9) {
        const v = policy.evict();
        if (slots.keys[v] === 'hot') {
          survived = false;
          break;
        }
        slots.drop(v);
      }
      if (i % 50 === 0) policy.hit(hot);
    }
    expect(survived).toBe(true);
  });

  it('resize keeps the links of existing slots', () => {
    const policy = new SievePolicy();
    policy.resize(2);
    policy.insert(0);
    policy.insert(1);
    policy.hit(0);
    policy.resize(8);
    for (let s = 2; s < 8; s++) policy.insert(s);
    // 0 (the tail) was visited: the hand clears it and moves on, so 1 goes first, then 2, 3…; 0 comes last.
    expect(policy.evict()).toBe(1);
    expect(policy.evict()).toBe(2);
    for (let s = 3; s < 8; s++) expect(policy.evict()).toBe(s);
    expect(policy.evict()).toBe(0);
    expect(policy.evict()).toBe(-1);
  });
});
