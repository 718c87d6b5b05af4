/**
 * @heimdall/udp — batched UDP for DNS servers on Linux.
 *
 * A Node-API addon (native/udp.c) reads up to 64 datagrams per `recvmmsg`
 * into buffers allocated once per socket, hands JavaScript ONE call per batch
 * (`onBatch(socket, count)`), and sends the answers written during that call
 * with one `sendmmsg`. Lengths and client addresses arrive packed in a reused
 * buffer (`meta`, 48 bytes a datagram, validated by the addon); nothing is
 * allocated per datagram unless JavaScript asks for it (`request(i)`,
 * `address(i)`, `record(i)`). Sockets set SO_REUSEPORT on request on every
 * Node version, and IP_PKTINFO / IPV6_RECVPKTINFO so that a wildcard socket
 * answers from the address each query arrived at.
 *
 * `loadNativeUdp()` never throws: when the addon was not built (no compiler
 * at install, not Linux) it says why, and callers use `node:dgram`.
 */
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Datagrams per batch (the addon's compile-time constant). */
export const BATCH = 64;
/** Bytes of one meta record. */
export const META = 48;
const OUTMETA = 8;

/** The raw binding (native/udp.c). */
interface Binding {
  open(options: object): object;
  start(h: object): void;
  pause(h: object): void;
  close(h: object): void;
  localPort(h: object): number;
  send(h: object, buf: Buffer, len: number, record: Buffer): number;
  stats(h: object): NativeUdpStats;
  BATCH: number;
  META: number;
  OUTMETA: number;
}

/** Counters kept by the addon for one socket. */
export interface NativeUdpStats {
  received: number;
  batches: number;
  /** Datagrams flagged invalid (truncated, bad address); JavaScript skips them. */
  invalid: number;
  sent: number;
  /** Answers dropped because the socket's send buffer was full. */
  send_dropped: number;
  /** Answers the kernel refused, or entries JavaScript got wrong. */
  send_errors: number;
  calls: number;
}

/** Options of {@link openNativeUdp}. */
export interface NativeUdpOptions {
  /** IPv4 or IPv6 literal; `0.0.0.0` / `::` answer from each query's arrival address. */
  readonly address: string;
  readonly port: number;
  readonly reusePort?: boolean;
  readonly reuseAddr?: boolean;
  readonly ipv6Only?: boolean;
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
  /** Largest datagram accepted (bigger ones are dropped by the addon). 512..65535, default 4096. */
  readonly maxQuerySize?: number;
  /** Largest answer written during a batch (the out slot size). 512..65535. */
  readonly maxResponseSize: number;
  /** Called once per batch; returns how many answers it wrote with {@link NativeUdpSocket.answer}. */
  readonly onBatch: (socket: NativeUdpSocket, count: number) => number;
}

/** The result of {@link loadNativeUdp}. */
export type NativeUdpLoad =
  | { readonly available: true; open(options: NativeUdpOptions): NativeUdpSocket }
  | { readonly available: false; readonly reason: string };

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let loaded: NativeUdpLoad | undefined;

/** Loads the addon once. Never throws. */
export function loadNativeUdp(): NativeUdpLoad {
  if (loaded !== undefined) return loaded;
  loaded = tryLoad();
  return loaded;
}

function tryLoad(): NativeUdpLoad {
  if (process.platform !== 'linux') return { available: false, reason: `platform ${process.platform}` };
  const file = join(root, 'build/Release/heimdall_udp.node');
  if (!existsSync(file)) {
    const marker = join(root, 'build/unavailable.json');
    const why = existsSync(marker) ? (JSON.parse(readFileSync(marker, 'utf8')) as { reason?: string }).reason : undefined;
    return { available: false, reason: why ? `not built: ${why}` : 'not built (run `npm run build:native -w @heimdall/udp`)' };
  }
  try {
    const binding = createRequire(import.meta.url)(file) as Binding;
    if (binding.BATCH !== BATCH || binding.META !== META || binding.OUTMETA !== OUTMETA)
      return { available: false, reason: 'addon and wrapper disagree on the batch layout' };
    return { available: true, open: (options) => new NativeUdpSocket(binding, options) };
  } catch (err) {
    return { available: false, reason: `could not load: ${(err as Error).message}` };
  }
}

const v4Names = new Map<number, string>();
/**
 * In front of `v4Names`: 256 direct-mapped slots by a hash of the address,
 * so a client seen lately costs two array reads instead of a `Map` lookup.
 */
const V4_SLOTS = 256;
const v4SlotKey = new Int32Array(V4_SLOTS);
const v4SlotName = new Array<string>(V4_SLOTS).fill('');

/** One batched UDP socket. Buffers are owned by it and reused for every batch. */
export class NativeUdpSocket {
  /** Datagram i at `i * slot` (valid during `onBatch` only). */
  readonly in: Buffer;
  /** One 48-byte record per datagram (valid during `onBatch` only). */
  readonly meta: Buffer;
  readonly out: Buffer;
  readonly outMeta: Buffer;
  readonly slot: number;
  readonly outSlot: number;
  readonly #b: Binding;
  readonly #h: object;
  #closed = false;
  /** {@link request}: `in` as words, and the last pool a copy came from as words. */
  readonly #in32: Int32Array;
  #pool: ArrayBufferLike | null = null;
  #pool32: Int32Array = new Int32Array(0);

  constructor(binding: Binding, options: NativeUdpOptions) {
    this.#b = binding;
    this.slot = options.maxQuerySize ?? 4096;
    this.outSlot = options.maxResponseSize;
    this.in = Buffer.alloc(BATCH * this.slot);
    this.#in32 = new Int32Array(this.in.buffer, this.in.byteOffset, this.in.length >> 2);
    this.meta = Buffer.alloc(BATCH * META);
    this.out = Buffer.alloc(BATCH * this.outSlot);
    this.outMeta = Buffer.alloc(BATCH * OUTMETA);
    const onBatch = options.onBatch;
    this.#h = binding.open({
      address: options.address,
      port: options.port,
      reusePort: options.reusePort === true,
      reuseAddr: options.reuseAddr === true,
      ipv6Only: options.ipv6Only === true,
      recvBufferSize: options.recvBufferSize,
      sendBufferSize: options.sendBufferSize,
      slot: this.slot,
      outSlot: this.outSlot,
      in: this.in,
      meta: this.meta,
      out: this.out,
      outMeta: this.outMeta,
      onBatch: (count: number) => onBatch(this, count),
    });
  }

  /** Starts (or resumes) reading. */
  start(): void {
    if (!this.#closed) this.#b.start(this.#h);
  }
  /** Stops reading (datagrams queue in the kernel). */
  pause(): void {
    if (!this.#closed) this.#b.pause(this.#h);
  }
  /** Closes the socket (no batch runs after this). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#b.close(this.#h);
  }
  get closed(): boolean {
    return this.#closed;
  }
  localPort(): number {
    return this.#b.localPort(this.#h);
  }
  stats(): NativeUdpStats {
    return this.#b.stats(this.#h);
  }

  /** Whether datagram i passed the addon's checks. */
  valid(i: number): boolean {
    return (this.meta[i * META + 3]! & 1) === 1;
  }
  length(i: number): number {
    return this.meta.readUInt16LE(i * META);
  }
  family(i: number): 4 | 6 {
    return this.meta[i * META + 2] === 6 ? 6 : 4;
  }
  port(i: number): number {
    return this.meta.readUInt16LE(i * META + 4);
  }
  /** The client's address as text (IPv4 strings are cached: no allocation for a known client). */
  address(i: number): string {
    return formatAddress(this.meta, i * META + 8, this.family(i));
  }
  /**
   * How many datagrams the kernel had dropped on this socket for want of
   * receive buffer (SO_RXQ_OVFL) when datagram i arrived: a running count
   * that wraps at 2^32, or -1 when the kernel did not say.
   */
  kernelDrops(i: number): number {
    const m = i * META;
    return (this.meta[m + 3]! & 4) === 0 ? -1 : this.meta.readUInt32LE(m + 44);
  }
  /** The local address datagram i arrived at, or null when the kernel did not say. */
  localAddress(i: number): string | null {
    const m = i * META;
    return (this.meta[m + 3]! & 2) === 0 ? null : formatAddress(this.meta, m + 24, this.family(i));
  }
  /** A copy of datagram i that outlives the batch. */
  request(i: number): Buffer {
    const len = this.length(i);
    const copy = Buffer.allocUnsafe(len);
    const src = this.in;
    const base = i * this.slot;
    if (len > 128) {
      src.copy(copy, 0, base, base + len);
      return copy;
    }
    // A usual query (≤ 128 octets): Buffer#copy of a sub-range makes a temporary view per call, and a byte loop
    // pays a bounds check and a reload of the array's base per octet. Whole 32-bit words when both ends are
    // aligned (Buffer.allocUnsafe hands out 8-aligned slices of its pool: one words view per pool), the last
    // 0-3 octets one by one; never a write outside the copy's own octets.
    let j = 0;
    const off = copy.byteOffset;
    if (((off | base) & 3) === 0) {
      const pool = copy.buffer;
      if (pool !== this.#pool) {
        this.#pool = pool;
        this.#pool32 = new Int32Array(pool, 0, pool.byteLength >> 2);
      }
      const dst = this.#pool32;
      const in32 = this.#in32;
      const d = off >> 2;
      const s = base >> 2;
      const words = len >> 2;
      for (let w = 0; w < words; w++) dst[d + w] = in32[s + w]!;
      j = words << 2;
    }
    for (; j < len; j++) copy[j] = src[base + j]!;
    return copy;
  }
  /** A copy of datagram i's meta record, for {@link send} after the batch. */
  record(i: number): Buffer {
    const copy = Buffer.allocUnsafe(META);
    this.meta.copy(copy, 0, i * META, i * META + META);
    return copy;
  }
  /**
   * Writes answer number `j` of this batch (0, 1, 2 … in order) for datagram
   * `i`. Returns false (nothing written) when it does not fit the out slot.
   */
  answer(j: number, i: number, response: Uint8Array): boolean {
    const len = response.length;
    if (len === 0 || len > this.outSlot || j >= BATCH) return false;
    this.out.set(response, j * this.outSlot);
    const e = j * OUTMETA;
    this.outMeta.writeUInt16LE(i, e);
    this.outMeta.writeUInt16LE(0, e + 2);
    this.outMeta.writeUInt32LE(len, e + 4);
    return true;
  }
  /** Sends one answer after its batch: 1 sent, 0 dropped (send buffer full, closed), -1 refused. */
  send(response: Buffer, record: Buffer): number {
    if (this.#closed) return 0;
    return this.#b.send(this.#h, response, response.length, record);
  }
}

/** Text form of the IPv4 or IPv6 address at `buf[at…]` (RFC 5952, as Node prints them). */
export function formatAddress(buf: Uint8Array, at: number, family: 4 | 6): string {
  if (family === 4) {
    const bits = (buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!;
    const slot = (bits ^ (bits >>> 8) ^ (bits >>> 16) ^ (bits >>> 24)) & (V4_SLOTS - 1);
    let s = v4SlotName[slot]!;
    if (s !== '' && v4SlotKey[slot] === bits) return s;
    const key = bits >>> 0;
    const known = v4Names.get(key);
    if (known === undefined) {
      s = `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
      if (v4Names.size >= 65_536) v4Names.clear();
      v4Names.set(key, s);
    } else s = known;
    v4SlotKey[slot] = bits;
    v4SlotName[slot] = s;
    return s;
  }
  const w: number[] = [];
  for (let k = 0; k < 8; k++) w.push((buf[at + 2 * k]! << 8) | buf[at + 2 * k + 1]!);
  let best = -1;
  let bestLen = 0;
  for (let k = 0; k < 8; ) {
    if (w[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && w[e] === 0) e++;
    if (e - k > bestLen) {
      best = k;
      bestLen = e - k;
    }
    k = e;
  }
  if (bestLen < 2) best = -1;
  // IPv4-compatible / -mapped forms, as inet_ntop prints them.
  if (best === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
    return `::${bestLen === 5 ? 'ffff:' : ''}${buf[at + 12]}.${buf[at + 13]}.${buf[at + 14]}.${buf[at + 15]}`;
  }
  let s = '';
  for (let k = 0; k < 8; k++) {
    if (k === best) {
      s += '::';
      k += bestLen - 1;
      continue;
    }
    if (s.length > 0 && !s.endsWith(':')) s += ':';
    s += w[k]!.toString(16);
  }
  return s;
}
