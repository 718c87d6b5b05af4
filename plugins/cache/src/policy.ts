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
  private readonly ghost = new Map<string, true>();
  private readonly ghostLimit: number;
  private readonly keyOf: (slot: number) => string;

  constructor(ghostLimit: number, keyOf: (slot: number) => string) {
    super();
    this.ghostLimit = Math.max(1, ghostLimit);
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
        this.remember(this.keyOf(t));
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

  private remember(key: string): void {
    this.ghost.set(key, true);
    if (this.ghost.size > this.ghostLimit) {
      const oldest = this.ghost.keys().next();
      if (!oldest.done) this.ghost.delete(oldest.value);
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
