/**
 * Eviction policies over intrusive doubly-linked lists of {@link CacheNode}s.
 *
 * - SIEVE (Zhang et al., NSDI '24): one FIFO list, a "visited" bit set on a
 *   hit, a hand that walks from the tail clearing bits and evicts the first
 *   unvisited node. A hit is one field write.
 * - LRU: move to the head on every hit (six pointer writes per hit).
 * - S3-FIFO-lite (Yang et al., SOSP '23): a small FIFO (10 %), a main FIFO
 *   with a 2-bit frequency, and a ghost FIFO of recently evicted keys.
 *
 * All three share one node shape so the store's hot path stays monomorphic.
 * The measurements behind the default (SIEVE) are in the README.
 */
import type { CacheEntry } from './entry.js';

/** A store slot: the entry plus policy and bookkeeping fields (all declared here: one hidden class). */
export class CacheNode {
  key: string;
  entry: CacheEntry;
  /** Bytes charged against maxBytes. */
  size: number;
  prev: CacheNode | null = null;
  next: CacheNode | null = null;
  /** SIEVE visited bit / S3-FIFO frequency (0..3). */
  freq = 0;
  /** S3-FIFO queue: 0 small, 1 main. */
  queue = 0;
  /** Prefetch: hits in the current run (gaps shorter than the prefetch duration). */
  hits = 0;
  /** Prefetch: epoch ms of the last hit. */
  lastHit = 0;

  constructor(key: string, entry: CacheEntry, size: number) {
    this.key = key;
    this.entry = entry;
    this.size = size;
  }
}

/** A doubly-linked list; `head` is the newest node, `tail` the oldest. */
class List {
  head: CacheNode | null = null;
  tail: CacheNode | null = null;
  count = 0;

  pushHead(n: CacheNode): void {
    n.prev = null;
    n.next = this.head;
    if (this.head !== null) this.head.prev = n;
    else this.tail = n;
    this.head = n;
    this.count++;
  }

  unlink(n: CacheNode): void {
    if (n.prev !== null) n.prev.next = n.next;
    else this.head = n.next;
    if (n.next !== null) n.next.prev = n.prev;
    else this.tail = n.prev;
    n.prev = null;
    n.next = null;
    this.count--;
  }

  clear(): void {
    this.head = null;
    this.tail = null;
    this.count = 0;
  }
}

/** What the store needs from an eviction policy. */
export interface EvictionPolicy {
  readonly name: string;
  /** A new node entered the store. */
  insert(node: CacheNode): void;
  /** A lookup hit the node. Must be cheap: it is on the hit path. */
  hit(node: CacheNode): void;
  /** The node leaves the store for another reason (delete, expiry, flush). */
  remove(node: CacheNode): void;
  /** Picks the next victim and unlinks it; null when empty. */
  evict(): CacheNode | null;
  clear(): void;
}

/** SIEVE. */
export class SievePolicy implements EvictionPolicy {
  readonly name = 'sieve';
  private readonly list = new List();
  private hand: CacheNode | null = null;

  insert(node: CacheNode): void {
    node.freq = 0;
    this.list.pushHead(node);
  }

  hit(node: CacheNode): void {
    node.freq = 1;
  }

  remove(node: CacheNode): void {
    if (this.hand === node) this.hand = node.prev;
    this.list.unlink(node);
  }

  evict(): CacheNode | null {
    let o = this.hand ?? this.list.tail;
    if (o === null) return null;
    while (o.freq !== 0) {
      o.freq = 0;
      o = o.prev ?? this.list.tail!;
    }
    this.hand = o.prev;
    this.list.unlink(o);
    return o;
  }

  clear(): void {
    this.list.clear();
    this.hand = null;
  }
}

/** Least recently used. */
export class LruPolicy implements EvictionPolicy {
  readonly name = 'lru';
  private readonly list = new List();

  insert(node: CacheNode): void {
    this.list.pushHead(node);
  }

  hit(node: CacheNode): void {
    if (this.list.head === node) return;
    this.list.unlink(node);
    this.list.pushHead(node);
  }

  remove(node: CacheNode): void {
    this.list.unlink(node);
  }

  evict(): CacheNode | null {
    const t = this.list.tail;
    if (t !== null) this.list.unlink(t);
    return t;
  }

  clear(): void {
    this.list.clear();
  }
}

/**
 * S3-FIFO, "lite": frequencies capped at 3, small queue target 10 % of the
 * resident nodes, ghost queue of keys (bounded by `ghostLimit`) remembering
 * one-hit wonders evicted from the small queue so that their return goes
 * straight to the main queue.
 */
export class S3FifoPolicy implements EvictionPolicy {
  readonly name = 's3fifo';
  private readonly small = new List();
  private readonly main = new List();
  private readonly ghost = new Map<string, true>();
  private readonly ghostLimit: number;

  constructor(ghostLimit: number) {
    this.ghostLimit = Math.max(1, ghostLimit);
  }

  insert(node: CacheNode): void {
    node.freq = 0;
    if (this.ghost.delete(node.key)) {
      node.queue = 1;
      this.main.pushHead(node);
    } else {
      node.queue = 0;
      this.small.pushHead(node);
    }
  }

  hit(node: CacheNode): void {
    if (node.freq < 3) node.freq++;
  }

  remove(node: CacheNode): void {
    (node.queue === 0 ? this.small : this.main).unlink(node);
  }

  evict(): CacheNode | null {
    for (;;) {
      const resident = this.small.count + this.main.count;
      if (resident === 0) return null;
      if (this.small.count > 0 && (this.small.count * 10 >= resident || this.main.count === 0)) {
        const t = this.small.tail!;
        this.small.unlink(t);
        if (t.freq > 1) {
          t.queue = 1;
          t.freq = 0;
          this.main.pushHead(t);
          continue;
        }
        this.remember(t.key);
        return t;
      }
      const t = this.main.tail!;
      this.main.unlink(t);
      if (t.freq > 0) {
        t.freq--;
        this.main.pushHead(t);
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
    this.small.clear();
    this.main.clear();
    this.ghost.clear();
  }
}

/** Builds the named policy. */
export function createPolicy(name: 'sieve' | 'lru' | 's3fifo', maxEntries: number): EvictionPolicy {
  switch (name) {
    case 'lru':
      return new LruPolicy();
    case 's3fifo':
      return new S3FifoPolicy(maxEntries);
    default:
      return new SievePolicy();
  }
}
