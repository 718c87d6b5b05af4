/**
 * Eviction policies over intrusive doubly-linked lists of store slots
 * (integers), with the links in typed arrays: no object per entry.
 *
 * - SIEVE (Zhang et al., NSDI '24): one FIFO list, a "visited" bit set on a
 *   hit, a hand that walks from the tail clearing bits and evicts the first
 *   unvisited slot. A hit is one byte write.
 * - LRU: move to the head on every hit (six link writes per hit).
 * - S3-FIFO-lite (Yang et al., SOSP '23): a small FIFO (10 %), a main FIFO
 *   with a 2-bit frequency, and a ghost FIFO of recently evicted keys.
 *
 * The store owns the slots (0 .. capacity-1) and calls {@link EvictionPolicy.resize}
 * before handing out a slot beyond the current capacity. The measurements
 * behind the default (SIEVE) are in the README.
 */

const NIL = -1;

/** A doubly-linked list of slots; `head` is the newest slot, `tail` the oldest. Links live in the policy's arrays. */
interface List {
  head: number;
  tail: number;
  count: number;
}

const newList = (): List => ({ head: NIL, tail: NIL, count: 0 });

/** Links shared by the lists of one policy (a slot is in at most one list). */
abstract class Linked {
  protected prev = new Int32Array(0);
  protected next = new Int32Array(0);
  /** SIEVE visited bit / S3-FIFO frequency (0..3) / S3-FIFO queue in bit 7. */
  protected bits = new Uint8Array(0);

  /** Makes room for slots `0 .. capacity-1` (keeps the links of existing slots). */
  resize(capacity: number): void {
    const grow = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(capacity);
      b.set(a.length <= capacity ? a : (a.subarray(0, capacity) as T));
      return b;
    };
    this.prev = grow(this.prev, (n) => new Int32Array(n));
    this.next = grow(this.next, (n) => new Int32Array(n));
    this.bits = grow(this.bits, (n) => new Uint8Array(n));
  }

  protected pushHead(l: List, s: number): void {
    this.prev[s] = NIL;
    this.next[s] = l.head;
    if (l.head !== NIL) this.prev[l.head] = s;
    else l.tail = s;
    l.head = s;
    l.count++;
  }

  protected unlink(l: List, s: number): void {
    const p = this.prev[s];
    const n = this.next[s];
    if (p !== NIL) this.next[p] = n;
    else l.head = n;
    if (n !== NIL) this.prev[n] = p;
    else l.tail = p;
    this.prev[s] = NIL;
    this.next[s] = NIL;
    l.count--;
  }
}

/** What the store needs from an eviction policy. Slots are integers in `0 .. capacity-1`. */
export interface EvictionPolicy {
  readonly name: string;
  /** Makes room for slots `0 .. capacity-1`. Called by the store before using a new slot. */
  resize(capacity: number): void;
  /** A new entry entered the store in `slot`. */
  insert(slot: number): void;
  /** A lookup hit the slot. Must be cheap: it is on the hit path. */
  hit(slot: number): void;
  /** The slot leaves the store for another reason (delete, expiry). */
  remove(slot: number): void;
  /** Picks the next victim and unlinks it; -1 when empty. */
  evict(): number;
  /** Forgets every slot. */
  clear(): void;
}

/** SIEVE. */
export class SievePolicy extends Linked implements EvictionPolicy {
  readonly name = 'sieve';
  private readonly list = newList();
  private hand = NIL;

  insert(slot: number): void {
    this.bits[slot] = 0;
    this.pushHead(this.list, slot);
  }

  hit(slot: number): void {
    this.bits[slot] = 1;
  }

  remove(slot: number): void {
    if (this.hand === slot) this.hand = this.prev[slot];
    this.unlink(this.list, slot);
  }

  evict(): number {
    let o = this.hand !== NIL ? this.hand : this.list.tail;
    if (o === NIL) return NIL;
    while (this.bits[o] !== 0) {
      this.bits[o] = 0;
      const p = this.prev[o];
      o = p !== NIL ? p : this.list.tail;
    }
    this.hand = this.prev[o];
    this.unlink(this.list, o);
    return o;
  }

  clear(): void {
    this.list.head = this.list.tail = NIL;
    this.list.count = 0;
    this.hand = NIL;
  }
}

/** Least recently used. */
export class LruPolicy extends Linked implements EvictionPolicy {
  readonly name = 'lru';
  private readonly list = newList();

  insert(slot: number): void {
    this.pushHead(this.list, slot);
  }

  hit(slot: number): void {
    if (this.list.head === slot) return;
    this.unlink(this.list, slot);
    this.pushHead(this.list, slot);
  }

  remove(slot: number): void {
    this.unlink(this.list, slot);
  }

  evict(): number {
    const t = this.list.tail;
    if (t !== NIL) this.unlink(this.list, t);
    return t;
  }

  clear(): void {
    this.list.head = this.list.tail = NIL;
    this.list.count = 0;
  }
}

const MAIN = 0x80;
const FREQ = 0x03;

/**
 * S3-FIFO's ghost queue: a bounded FIFO of keys with O(1) membership, O(1)
 * removal of any key and O(1) amortised trimming of the oldest.
 *
 * A `Map` alone (insertion order as the FIFO, `keys().next()` for the oldest)
 * is not O(1): V8 keeps a deleted entry as a hole in the `Map`'s entry table
 * until the next rehash, and every new iterator walks the holes at its front,
 * so with the oldest key deleted on every eviction each `keys().next()` stepped
 * over thousands of holes (about 6 µs per eviction at 10k keys: an insert
 * into a full store cost 8× SIEVE's).
 *
 * Here the order lives in a ring of keys and the `Map` answers membership
 * (key → index of its ring entry). Removing a key ({@link delete}) blanks its
 * ring entry; trimming pops the ring's front, skipping blanks, and deletes
 * one key from the `Map` (one `Map` operation: the front entry is known to be
 * live). A full ring is compacted (blanks dropped, moved keys re-pointed)
 * when at least half of it is blank, else doubled. Per add: one ring write,
 * at most one pop, and amortised compaction; {@link work} counts these ring
 * steps, for tests. Per S3-FIFO eviction: the insert's lookup, `has` + `set`
 * here and the trim's `delete` (the `Map` ghost did the lookup, `set`,
 * `delete` and the walk).
 *
 * Same contents and the same order as the insertion-ordered `Map` it replaces:
 * {@link add} of a present key keeps its place, the oldest present key goes
 * first once more than `limit` are present.
 */
export class GhostFifo {
  /** Present keys → the index of their ring entry. */
  private readonly map = new Map<string, number>();
  /** Keys from oldest (`front`) to newest, `len` entries (wrapping); a blank is a removed key. */
  private ring: (string | undefined)[] = new Array<string | undefined>(16);
  private front = 0;
  /** Ring entries, present or blank (each present key has exactly one: the blanks are `len - map.size`). */
  private len = 0;
  /** Ring entries written, popped or scanned so far (for tests: O(1) amortised per {@link add}). */
  work = 0;

  constructor(readonly limit: number) {}

  /** Number of keys present. */
  get size(): number {
    return this.map.size;
  }

  /** Ring entries held, present or blank (for tests: bounded by a small multiple of {@link limit}). */
  get ringLength(): number {
    return this.len;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** Forgets the key; true when it was present. */
  delete(key: string): boolean {
    const i = this.map.get(key);
    if (i === undefined) return false;
    this.map.delete(key);
    this.ring[i] = undefined;
    return true;
  }

  /** Remembers the key as the newest (a present key keeps its place); drops the oldest beyond the limit. */
  add(key: string): void {
    if (this.map.has(key)) return;
    if (this.len === this.ring.length) this.makeRoom();
    const i = (this.front + this.len) & (this.ring.length - 1);
    this.ring[i] = key;
    this.len++;
    this.work++;
    this.map.set(key, i);
    if (this.map.size > this.limit) this.dropOldest();
  }

  /** Pops ring entries from the front until one present key has been forgotten. */
  private dropOldest(): void {
    const ring = this.ring;
    const mask = ring.length - 1;
    while (this.len > 0) {
      const i = this.front;
      const key = ring[i];
      ring[i] = undefined;
      this.front = (i + 1) & mask;
      this.len--;
      this.work++;
      if (key !== undefined) {
        this.map.delete(key);
        return;
      }
    }
  }

  /** The ring is full: drop its blanks if they are at least half of it, else double it. */
  private makeRoom(): void {
    const ring = this.ring;
    const mask = ring.length - 1;
    const blanks = this.len - this.map.size;
    const next = new Array<string | undefined>(blanks >= this.len >> 1 ? ring.length : ring.length * 2);
    let n = 0;
    for (let j = 0; j < this.len; j++) {
      const key = ring[(this.front + j) & mask];
      if (key === undefined) continue;
      next[n] = key;
      this.map.set(key, n);
      n++;
    }
    this.work += this.len;
    this.ring = next;
    this.front = 0;
    this.len = n;
  }

  clear(): void {
    this.map.clear();
    this.ring = new Array<string | undefined>(16);
    this.front = 0;
    this.len = 0;
  }
}

/**
 * S3-FIFO, "lite": frequencies capped at 3, small queue target 10 % of the
 * resident slots, ghost queue of keys (bounded by `ghostLimit`) remembering
 * one-hit wonders evicted from the small queue so that their return goes
 * straight to the main queue. `keyOf` gives the key stored in a slot (the
 * store sets it before {@link insert} and clears it after {@link evict}).
 */
export class S3FifoPolicy extends Linked implements EvictionPolicy {
  readonly name = 's3fifo';
  private readonly small = newList();
  private readonly main = newList();
  /** Recently evicted one-hit wonders (see {@link GhostFifo}: O(1) per eviction). */
  readonly ghost: GhostFifo;
  private readonly keyOf: (slot: number) => string;

  constructor(ghostLimit: number, keyOf: (slot: number) => string) {
    super();
    this.ghost = new GhostFifo(Math.max(1, ghostLimit));
    this.keyOf = keyOf;
  }

  insert(slot: number): void {
    if (this.ghost.delete(this.keyOf(slot))) {
      this.bits[slot] = MAIN;
      this.pushHead(this.main, slot);
    } else {
      this.bits[slot] = 0;
      this.pushHead(this.small, slot);
    }
  }

  hit(slot: number): void {
    const b = this.bits[slot];
    if ((b & FREQ) < 3) this.bits[slot] = b + 1;
  }

  remove(slot: number): void {
    this.unlink((this.bits[slot] & MAIN) === 0 ? this.small : this.main, slot);
  }

  evict(): number {
    for (;;) {
      const resident = this.small.count + this.main.count;
      if (resident === 0) return NIL;
      if (this.small.count > 0 && (this.small.count * 10 >= resident || this.main.count === 0)) {
        const t = this.small.tail;
        this.unlink(this.small, t);
        if ((this.bits[t] & FREQ) > 1) {
          this.bits[t] = MAIN;
          this.pushHead(this.main, t);
          continue;
        }
        this.ghost.add(this.keyOf(t));
        return t;
      }
      const t = this.main.tail;
      this.unlink(this.main, t);
      const f = this.bits[t] & FREQ;
      if (f > 0) {
        this.bits[t] = MAIN | (f - 1);
        this.pushHead(this.main, t);
        continue;
      }
      return t;
    }
  }

  clear(): void {
    for (const l of [this.small, this.main]) {
      l.head = l.tail = NIL;
      l.count = 0;
    }
    this.ghost.clear();
  }
}

/** Builds the named policy. `keyOf` (the key in a slot) is needed by S3-FIFO's ghost queue. */
export function createPolicy(name: 'sieve' | 'lru' | 's3fifo', maxEntries: number, keyOf: (slot: number) => string): EvictionPolicy {
  switch (name) {
    case 'lru':
      return new LruPolicy();
    case 's3fifo':
      return new S3FifoPolicy(maxEntries, keyOf);
    default:
      return new SievePolicy();
  }
}
