/**
 * Storage for the wire bytes of cache entries: 64 KiB slabs carved into one
 * view per entry.
 *
 * Why: a `Buffer.allocUnsafeSlow` per entry costs an ArrayBuffer and a
 * backing store each (~255 bytes for a 79-byte response, measured) and its
 * external-memory accounting keeps waking the garbage collector on inserts;
 * slices of Node's shared 8 KiB pool are cheap but a long-lived entry pins
 * its whole pool slab, and with it whatever short-lived data shares it.
 *
 * Here slabs hold only cache entries, the store tells the arena when an entry
 * leaves ({@link WireArena.release}), and the periodic sweep moves the
 * survivors of a mostly-dead slab into the current one
 * ({@link WireArena.isSparse}), so the slab can be collected: wasted space
 * stays under about half of the slab space, and a slab is freed by the
 * garbage collector as soon as no view of it remains.
 */

/** Responses larger than this get their own allocation instead of a slab slice. */
const MAX_SLICE = 8 * 1024;

export class WireArena {
  /** Size of one slab (bytes). */
  readonly slabSize: number;
  private current: Buffer | null = null;
  private offset = 0;
  /** Live bytes per slab, keyed by the slab's ArrayBuffer (only slabs with live entries, plus the current one). */
  private readonly live = new Map<ArrayBufferLike, number>();

  constructor(slabSize = 64 * 1024) {
    this.slabSize = slabSize;
  }

  /** Number of slabs holding live entries (for tests and memory figures). */
  get slabs(): number {
    return this.live.size;
  }

  /** A view of `len` bytes for a new entry (contents undefined: the caller fills it). */
  alloc(len: number): Buffer {
    if (len > MAX_SLICE || len > this.slabSize) return Buffer.allocUnsafeSlow(len);
    let slab = this.current;
    if (slab === null || this.offset + len > this.slabSize) {
      if (slab !== null && this.live.get(slab.buffer) === 0) this.live.delete(slab.buffer);
      slab = this.current = Buffer.allocUnsafeSlow(this.slabSize);
      this.offset = 0;
      this.live.set(slab.buffer, 0);
    }
    const view = slab.subarray(this.offset, this.offset + len);
    this.offset += len;
    this.live.set(slab.buffer, (this.live.get(slab.buffer) ?? 0) + len);
    return view;
  }

  /** A copy of `wire` in the arena. */
  copy(wire: Buffer): Buffer {
    const out = this.alloc(wire.length);
    wire.copy(out, 0, 0, wire.length);
    return out;
  }

  /** True when `wire` is a slice of one of this arena's slabs. */
  owns(wire: Buffer): boolean {
    return this.live.has(wire.buffer);
  }

  /** An entry holding `wire` left the store. */
  release(wire: Buffer): void {
    const ab = wire.buffer;
    const n = this.live.get(ab);
    if (n === undefined) return;
    const left = n - wire.length;
    if (left <= 0 && (this.current === null || ab !== this.current.buffer)) this.live.delete(ab);
    else this.live.set(ab, left);
  }

  /** True when `wire` sits in a slab other than the current one that is less than half live: worth moving. */
  isSparse(wire: Buffer): boolean {
    const ab = wire.buffer;
    const n = this.live.get(ab);
    return n !== undefined && (this.current === null || ab !== this.current.buffer) && n * 2 < this.slabSize;
  }

  /** Forgets every slab (after a flush). Views already handed out stay valid. */
  clear(): void {
    this.live.clear();
    this.current = null;
    this.offset = 0;
  }
}
