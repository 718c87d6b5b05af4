import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { type EvictionPolicy, GhostFifo, LruPolicy, S3FifoPolicy, SievePolicy } from './policy.js';

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

/**
 * S3-FIFO-lite as first written (and as `S3FifoPolicy` behaved up to the
 * ghost-queue rewrite): arrays from oldest (index 0) to newest, frequencies in
 * a map, and the ghost an insertion-ordered `Map` trimmed through
 * `keys().next()`.
 */
class ReferenceS3Fifo {
  small: string[] = [];
  main: string[] = [];
  freq = new Map<string, number>();
  ghost = new Map<string, true>();
  constructor(private readonly ghostLimit: number) {}
  insert(key: string): void {
    this.freq.set(key, 0);
    if (this.ghost.delete(key)) this.main.push(key);
    else this.small.push(key);
  }
  hit(key: string): void {
    this.freq.set(key, Math.min(3, this.freq.get(key)! + 1));
  }
  remove(key: string): void {
    const q = this.small.includes(key) ? this.small : this.main;
    q.splice(q.indexOf(key), 1);
    this.freq.delete(key);
  }
  evict(): string | null {
    for (;;) {
      const resident = this.small.length + this.main.length;
      if (resident === 0) return null;
      if (this.small.length > 0 && (this.small.length * 10 >= resident || this.main.length === 0)) {
        const t = this.small.shift()!;
        if (this.freq.get(t)! > 1) {
          this.freq.set(t, 0);
          this.main.push(t);
          continue;
        }
        this.ghost.set(t, true);
        if (this.ghost.size > this.ghostLimit) this.ghost.delete(this.ghost.keys().next().value!);
        this.freq.delete(t);
        return t;
      }
      const t = this.main.shift()!;
      const f = this.freq.get(t)!;
      if (f > 0) {
        this.freq.set(t, f - 1);
        this.main.push(t);
        continue;
      }
      this.freq.delete(t);
      return t;
    }
  }
}

/** What a reference model answers (the policy under test works on slots, the model on keys). */
interface Model {
  insert(key: string): void;
  hit(key: string): void;
  remove(key: string): void;
  evict(): string | null;
}

/**
 * Replays `list` on a policy and its reference model: inserts (the key from
 * `keyFor`, skipped when it gives null), hits and removals of a live key, and
 * evictions, each victim checked against the model's; then drains both.
 * `after` runs after every step (an extra invariant).
 */
function replay(
  list: ReadonlyArray<readonly [string, number]>,
  policy: EvictionPolicy,
  model: Model,
  slots: Slots,
  keyFor: (n: number) => string | null,
  after?: () => void,
): void {
  let capacity = 4;
  policy.resize(capacity); // grown on demand below, as the store does
  for (const [op, n] of list) {
    const keys = [...slots.live.keys()];
    if (op === 'insert' || keys.length === 0) {
      const key = keyFor(n);
      if (key === null) continue;
      const slot = slots.add(key);
      if (slot >= capacity) policy.resize((capacity *= 2));
      policy.insert(slot);
      model.insert(key);
    } else if (op === 'hit') {
      const key = keys[n % keys.length]!;
      policy.hit(slots.live.get(key)!);
      model.hit(key);
    } else if (op === 'remove') {
      const key = keys[n % keys.length]!;
      const slot = slots.live.get(key)!;
      policy.remove(slot);
      slots.drop(slot);
      model.remove(key);
    } else {
      const victim = policy.evict();
      expect(victim >= 0 ? slots.drop(victim) : null).toBe(model.evict());
    }
    after?.();
  }
  // Drain: the remaining eviction order matches too.
  for (;;) {
    const v = policy.evict();
    expect(v >= 0 ? slots.drop(v) : null).toBe(model.evict());
    if (v < 0) break;
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
          let fresh = 0;
          replay(list, policy, ref(), new Slots(), () => `k${fresh++}`);
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

  it('s3fifo evicts exactly what the reference model evicts, evicted keys coming back through the ghost queue', () => {
    // Keys from a small universe: an evicted key is often inserted again (a
    // ghost hit sends it to the main queue), and small ghost limits trim the
    // ghost queue all the time.
    const s3ops = fc.array(fc.tuple(fc.constantFrom('insert', 'insert', 'hit', 'remove', 'evict', 'evict'), fc.nat(40)), {
      maxLength: 400,
      size: 'large', // fast-check's default size caps arrays near 10 elements
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), s3ops, (ghostLimit, list) => {
        const slots = new Slots();
        const policy = new S3FifoPolicy(ghostLimit, (s) => slots.keys[s]);
        const model = new ReferenceS3Fifo(ghostLimit);
        // The store replaces a present key by remove + insert: a present key is not inserted again.
        replay(
          list,
          policy,
          model,
          slots,
          (n) => (slots.live.has(`k${n}`) ? null : `k${n}`),
          () => expect(policy.ghost.size).toBe(model.ghost.size),
        );
        for (const key of model.ghost.keys()) expect(policy.ghost.has(key)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('the ghost FIFO holds what an insertion-ordered Map trimmed from its front holds', () => {
    // Mostly adds, some deletes (stale ring entries; a deleted key often comes
    // back while its stale entry is still queued), a rare clear; keys from a
    // universe a few times the limit, so that present keys are added again.
    const gops = fc.array(
      fc.tuple(
        fc.nat(99).map((r) => (r < 60 ? 'add' : r < 98 ? 'delete' : 'clear')),
        fc.nat(29),
      ),
      { maxLength: 600, size: 'large' }, // fast-check's default size caps arrays near 10 elements
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), gops, (limit, list) => {
        const ghost = new GhostFifo(limit);
        const model = new Map<string, true>();
        let adds = 0;
        for (const [op, n] of list) {
          const key = `g${n}`;
          if (op === 'add') {
            adds++;
            ghost.add(key);
            model.set(key, true);
            if (model.size > limit) model.delete(model.keys().next().value!);
          } else if (op === 'delete') {
            if (ghost.delete(key) !== model.delete(key)) return false;
          } else {
            ghost.clear();
            model.clear();
          }
          // Plain comparisons (not expect) in the loop: it runs ~10^5 times.
          if (ghost.size !== model.size || ghost.ringLength > Math.max(16, 4 * (limit + 1))) return false;
          for (const k of model.keys()) if (!ghost.has(k)) return false;
        }
        return ghost.work <= 4 * adds;
      }),
      { numRuns: 300 },
    );
  });

  it('the ghost FIFO stays bounded when keys come and go without ever filling it', () => {
    // Every delete leaves a stale ring entry and nothing is trimmed (the ghost
    // never exceeds its limit): compaction, not growth, must absorb them.
    const ghost = new GhostFifo(100);
    for (let i = 0; i < 100_000; i++) {
      ghost.add(`k${i % 150}`);
      ghost.delete(`k${(i + 75) % 150}`);
    }
    expect(ghost.size).toBeLessThanOrEqual(100);
    expect(ghost.ringLength).toBeLessThanOrEqual(4 * 101);
    expect(ghost.work).toBeLessThanOrEqual(4 * 100_000);
  });

  it('s3fifo eviction is O(1): bounded ghost work per eviction, no Map iteration (the insert+evict benchmark at scale)', () => {
    // As in bench/cache.bench.ts: a full 10k store, keys cycling over 40k names,
    // one eviction per insert, no hits: every eviction adds to a full ghost
    // queue and trims its oldest key. The ghost queue used to be a Map trimmed
    // with `keys().next()`: V8 leaves deleted entries as holes at the front of
    // a Map's table until it rehashes, and each new iterator walks them, so
    // every eviction stepped over thousands of holes (~6 µs; 8× SIEVE's insert).
    const N = 10_000;
    const CYCLE = 40_000;
    const names = Array.from({ length: CYCLE }, (_, i) => `i${i}.example.org`);
    const slots = new Slots();
    const policy = new S3FifoPolicy(N, (s) => slots.keys[s]);
    policy.resize(N + 1);
    for (let i = 0; i < N; i++) policy.insert(slots.add(names[i]));
    const iterators = (['keys', 'values', 'entries', 'forEach', Symbol.iterator] as const).map((m) => vi.spyOn(Map.prototype, m));
    try {
      const work0 = policy.ghost.work;
      const EVICTIONS = 100_000;
      let j = N;
      for (let e = 0; e < EVICTIONS; e++) {
        const v = policy.evict();
        slots.drop(v);
        policy.insert(slots.add(names[j]));
        j = j + 1 === CYCLE ? 0 : j + 1;
      }
      for (const spy of iterators) expect(spy).not.toHaveBeenCalled();
      expect(policy.ghost.size).toBe(N);
      // One ring write and one ring pop per eviction, plus amortised compaction.
      expect((policy.ghost.work - work0) / EVICTIONS).toBeLessThanOrEqual(4);
      expect(policy.ghost.ringLength).toBeLessThanOrEqual(4 * (N + 1));
    } finally {
      for (const spy of iterators) spy.mockRestore();
    }
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
