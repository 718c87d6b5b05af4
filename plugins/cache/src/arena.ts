/**
 * Storage for the bytes of cache entries (wire response + TTL offset table):
 * 64 KiB slabs, each entry a (slab id, offset) pair kept by the store in
 * typed arrays — no JS object per entry.
 *
 * Why: a `Buffer.allocUnsafeSlow` per entry costs an ArrayBuffer and a
 * backing store each (~255 bytes for a 79-byte response, measured), and even
 * a `subarray` view per entry costs ~100 bytes of heap; slices of Node's
 * shared 8 KiB pool are cheap but a long-lived entry pins its whole pool
 * slab, and with it whatever short-lived data shares it.
 *
 * Here slabs hold only cache entries, the store tells the arena when an entry
 * leaves ({@link WireArena.release}), and the periodic sweep moves the
 * survivors of a mostly-dead slab into the current one
 * ({@link WireArena.isSparse}), so the slab can be collected: wasted space
 * stays under about half of the slab space, and a slab is dropped as soon as
 * no live entry remains in it (views handed out earlier by `getRaw` keep
 * their bytes alive by themselves).
 */

import { Buffer } from 'node:buffer';
/** Allocations larger than this get a dedicated buffer (own slab id) instead of a slab slice. */
const MAX_SLICE = 8 * 1024;

export class WireArena {
  /** Size of one slab (bytes). */
  readonly slabSize: number;
  /**
   * Buffers by slab id (undefined: free id). Read directly by the store's hit
   * path; the array object itself is never replaced.
   */
  readonly buffers: Array<Buffer | undefined> = [];
  /** Live bytes per slab id. */
  private readonly live: number[] = [];
  /** True for a dedicated buffer holding one large entry (never compacted). */
  private readonly dedicated: boolean[] = [];
  private readonly freeIds: number[] = [];
  private current = -1;
  private offset = 0;
  private held = 0;
  /** Slab id of the last {@link alloc} (a side output: no tuple allocated per call). */
  lastSlab = -1;

  constructor(slabSize = 64 * 1024) {
    this.slabSize = slabSize;
  }

  /** Number of buffers holding live entries, plus the current slab (for tests and memory figures). */
  get slabs(): number {
    return this.held;
  }

  private newId(buf: Buffer, dedicated: boolean): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.buffers.length;
    this.buffers[id] = buf;
    this.live[id] = 0;
    this.dedicated[id] = dedicated;
    this.held++;
    return id;
  }

  private drop(id: number): void {
    this.buffers[id] = undefined;
    this.live[id] = 0;
    this.freeIds.push(id);
    this.held--;
  }

  /**
   * Reserves `len` bytes (contents undefined: the caller fills them). Returns
   * the offset in the buffer; the slab id is in {@link lastSlab}.
   */
  alloc(len: number): number {
    if (len > MAX_SLICE || len > this.slabSize) {
      const id = this.newId(Buffer.allocUnsafeSlow(len), true);
      this.live[id] = len;
      this.lastSlab = id;
      return 0;
    }
    let id = this.current;
    if (id < 0 || this.offset + len > this.slabSize) {
      if (id >= 0 && this.live[id] === 0) this.drop(id);
      id = this.current = this.newId(Buffer.allocUnsafeSlow(this.slabSize), false);
      this.offset = 0;
    }
    const at = this.offset;
    this.offset += len;
    this.live[id] += len;
    this.lastSlab = id;
    return at;
  }

  /** `len` bytes reserved in slab `id` are no longer used. */
  release(id: number, len: number): void {
    const buf = this.buffers[id];
    if (buf === undefined) return;
    const left = this.live[id] - len;
    if (left <= 0 && id !== this.current) this.drop(id);
    else this.live[id] = left;
  }

  /** True when slab `id` is not the current one and is less than half live: its entries are worth moving. */
  isSparse(id: number): boolean {
    return id !== this.current && !this.dedicated[id] && this.buffers[id] !== undefined && this.live[id] * 2 < this.slabSize;
  }

  /** Forgets every slab (after a flush). Views already handed out stay valid. */
  clear(): void {
    this.buffers.length = 0;
    this.live.length = 0;
    this.dedicated.length = 0;
    this.freeIds.length = 0;
    this.current = -1;
    this.offset = 0;
    this.held = 0;
    this.lastSlab = -1;
  }
}
