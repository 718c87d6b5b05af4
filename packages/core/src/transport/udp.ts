/**
 * DNS over UDP (RFC 1035 §4.2.1, RFC 6891 payload negotiation).
 */
import type { Buffer } from 'node:buffer';
import dgram from 'node:dgram';
import net from 'node:net';
import { ConfigError, ListenError } from '../errors.js';
import { parseOptions } from '../plugin/options.js';
import { udpListenSchema } from './schema.js';
import { MessageReader, truncateForUdp } from '../packet/index.js';
import type { ClientInfo } from '../pipeline/types.js';
import { type BoundAddress, reusePortSupported, type TransportDeps, type TransportServer, type UdpListenOptions } from './types.js';

/**
 * What core uses of `@heimdall/udp` (the optional batched native path). Core
 * does not depend on that package: it is loaded with a guarded dynamic import.
 */
interface NativeSocket {
  valid(i: number): boolean;
  family(i: number): 4 | 6;
  port(i: number): number;
  address(i: number): string;
  /** The kernel's running count of datagrams it dropped on this socket for want of buffer, as of datagram i (wraps at 2^32), or -1. */
  kernelDrops(i: number): number;
  localAddress(i: number): string | null;
  request(i: number): Buffer;
  record(i: number): Buffer;
  answer(j: number, i: number, response: Uint8Array): boolean;
  send(response: Buffer, record: Buffer): number;
  start(): void;
  close(): void;
  localPort(): number;
}
type NativeLoad =
  | {
      readonly available: true;
      open(options: {
        address: string;
        port: number;
        reusePort?: boolean;
        reuseAddr?: boolean;
        ipv6Only?: boolean;
        recvBufferSize?: number;
        sendBufferSize?: number;
        maxResponseSize: number;
        onBatch: (socket: NativeSocket, count: number) => number;
      }): NativeSocket;
    }
  | { readonly available: false; readonly reason: string };

const NATIVE_PACKAGE: string = '@heimdall/udp';
let native: Promise<NativeLoad> | undefined;
let fallbackLogged = false;

/** Loads `@heimdall/udp` once; never rejects (a missing package or addon is a reason). */
export function loadNativeUdp(): Promise<NativeLoad> {
  native ??= import(NATIVE_PACKAGE).then(
    (m: { loadNativeUdp(): NativeLoad }) => m.loadNativeUdp(),
    (err: NodeJS.ErrnoException) => ({ available: false as const, reason: `${NATIVE_PACKAGE} is not installed (${err.code ?? err.message})` }),
  );
  return native;
}

/** Datagrams the kernel dropped between two readings of its per-socket count, which wraps at 2^32 (SO_RXQ_OVFL). */
export function kernelDropsSince(last: number, now: number): number {
  return (now - last) >>> 0;
}

/**
 * The client of one UDP query. A class, not an object literal, on purpose:
 * V8 follows objects made by a literal back to their allocation site, and
 * once the clients of queries waiting on an upstream outlive a few
 * young-generation collections it "pretenures" the site, allocating every
 * later client from it, cache hits included, straight in the old
 * generation. That garbage is freed only by a full mark-compact: measured
 * with `--trace-gc` at 150k cache hits a second, about 300 KB more old
 * space after every scavenge and a mark-compact (3–12 ms pause) every
 * second. Objects made by `new` carry no allocation site.
 */
export class UdpClient implements ClientInfo {
  readonly transport = 'udp' as const;
  constructor(
    readonly address: string,
    readonly port: number,
    readonly family: 4 | 6,
    readonly localAddress: string,
    readonly localPort: number,
  ) {}
}

/** Default ceiling for UDP responses (DNS Flag Day 2020). */
export const DEFAULT_MAX_UDP_PAYLOAD = 1232;

/**
 * The largest response this client can take over UDP: 512 without EDNS
 * (RFC 1035), else its advertised payload size, clamped to 512..`ceiling`
 * (RFC 6891 §6.2.5: values below 512 are treated as 512).
 */
export function udpResponseLimit(request: Buffer, ceiling: number): number {
  let size: number;
  try {
    const r = new MessageReader(request);
    size = r.arcount > 0 ? r.maxUdpPayload : 512;
  } catch {
    return 512;
  }
  if (size < 512) size = 512;
  return Math.min(size, ceiling);
}

/**
 * A UDP listener. Each query is handed to the resolver; the answer is sent
 * back from the socket it arrived on (so from the bound address), truncated
 * with TC=1 when larger than the client's limit (see {@link udpResponseLimit}).
 */
export class UdpServer implements TransportServer {
  private readonly address_: string;
  private readonly port: number;
  private readonly family: 4 | 6;
  private readonly ceiling: number;
  private readonly native: boolean | 'auto';
  private socket: dgram.Socket | null = null;
  private nativeSocket: NativeSocket | null = null;
  private accepting = false;
  private closed = false;
  private bound: BoundAddress | null = null;

  constructor(
    private readonly options: UdpListenOptions,
    private readonly deps: TransportDeps,
    path = 'listen',
  ) {
    const settings = parseOptions(udpListenSchema, { ...options, transport: 'udp' }, path);
    const ipVersion = net.isIP(settings.address);
    if (ipVersion === 0) throw new ConfigError(`${path}.address`, 'must be an IPv4 or IPv6 address', settings.address);
    this.address_ = settings.address;
    this.family = ipVersion as 4 | 6;
    this.port = settings.port;
    this.ceiling = settings.maxUdpPayload;
    this.native = settings.native;
  }

  /** Which path serves: `native` (recvmmsg/sendmmsg batches) or `dgram`; null before listen. */
  get path(): 'native' | 'dgram' | null {
    return this.nativeSocket !== null ? 'native' : this.socket !== null ? 'dgram' : null;
  }

  async listen(): Promise<void> {
    if (this.native !== false) {
      const load = await loadNativeUdp();
      if (load.available) return this.listenNative(load);
      if (this.native === true)
        throw new ListenError(`udp ${this.address_}:${this.port}: native UDP requested (udp.native: true) but unavailable: ${load.reason}`);
      if (!fallbackLogged) {
        fallbackLogged = true;
        this.deps.logger.info({ reason: load.reason }, 'udp: batched native path unavailable, using node:dgram');
      }
    }
    return this.listenDgram();
  }

  /**
   * The batched path: one socket of our own per process (SO_REUSEPORT when
   * asked, on every Node version, so cluster workers never share the
   * primary's socket), one call per batch of up to 64 datagrams, the
   * synchronous answers sent in one sendmmsg.
   */
  private listenNative(load: Extract<NativeLoad, { available: true }>): void {
    let sock: NativeSocket;
    try {
      sock = load.open({
        address: this.address_,
        port: this.port,
        reusePort: this.options.reusePort === true,
        reuseAddr: this.options.reuseAddr === true,
        ipv6Only: this.options.ipv6Only === true,
        recvBufferSize: this.options.recvBufferSize,
        sendBufferSize: this.options.sendBufferSize,
        maxResponseSize: this.ceiling,
        onBatch: (socket, count) => this.onBatch(socket, count),
      });
    } catch (err) {
      throw new ListenError(`udp ${this.address_}:${this.port}: ${(err as Error).message}`, { cause: err });
    }
    this.nativeSocket = sock;
    this.lastKernelDrops = 0; // the kernel counts per socket, from 0
    this.wildcard = this.address_ === '0.0.0.0' || this.address_ === '::';
    this.bound = { transport: 'udp', address: this.address_, port: sock.localPort(), family: this.family };
    this.accepting = true;
    sock.start();
  }

  private wildcard = false;

  private onBatch(sock: NativeSocket, count: number): number {
    const m = this.deps.metrics;
    if (!this.accepting) {
      m.dropped.stopping += count;
      return 0;
    }
    const bound = this.bound!;
    const handler = this.deps.handler;
    let answers = 0;
    for (let i = 0; i < count; i++) {
      if (!sock.valid(i)) {
        m.dropped.malformed++;
        continue;
      }
      const msg = sock.request(i);
      const client = new UdpClient(
        sock.address(i),
        sock.port(i),
        sock.family(i),
        this.wildcard ? (sock.localAddress(i) ?? bound.address) : bound.address,
        bound.port,
      );
      let r: Buffer | null | Promise<Buffer | null>;
      try {
        r = handler.process(msg, client);
      } catch (err) {
        this.deps.logger.error({ err }, 'query handler threw; packet dropped');
        continue;
      }
      if (r === null) continue;
      if (r instanceof Promise) {
        this.later(sock, msg, sock.record(i), r);
        continue;
      }
      const out = this.fit(msg, r);
      if (out !== null && sock.answer(answers, i, out)) answers++;
    }
    // Datagrams the kernel dropped before this batch (a full receive buffer): its running count on the last one.
    const drops = count > 0 ? sock.kernelDrops(count - 1) : -1;
    if (drops >= 0 && drops !== this.lastKernelDrops) {
      m.dropped.receive_buffer += kernelDropsSince(this.lastKernelDrops, drops);
      this.lastKernelDrops = drops;
    }
    return answers;
  }

  /** The kernel's drop count last seen on the native socket ({@link NativeSocket.kernelDrops}); 0 for a new socket. */
  private lastKernelDrops = 0;

  /**
   * Sends an asynchronous answer when it settles. Out of the batch loop: a
   * closure there would make V8 allocate a context for the query on every
   * iteration, answered synchronously or not.
   */
  private later(sock: NativeSocket, msg: Buffer, record: Buffer, r: Promise<Buffer | null>): void {
    r.then(
      (resp) => {
        if (resp === null || this.closed) return;
        const out = this.fit(msg, resp);
        if (out !== null) sock.send(out, record);
      },
      (err) => this.deps.logger.error({ err }, 'query handler rejected; packet dropped'),
    );
  }

  private listenDgram(): Promise<void> {
    const reusePort = this.options.reusePort === true && reusePortSupported;
    const socket = dgram.createSocket({
      type: this.family === 6 ? 'udp6' : 'udp4',
      reuseAddr: this.options.reuseAddr ?? false,
      ...(reusePort ? { reusePort: true } : {}),
      ipv6Only: this.options.ipv6Only ?? false,
      recvBufferSize: this.options.recvBufferSize,
      sendBufferSize: this.options.sendBufferSize,
      // Every address this socket sends to or binds is an IP literal (from
      // rinfo, or checked by net.isIP): answer the lookup synchronously
      // instead of going through dns.lookup, which defers each send by a
      // process.nextTick.
      lookup: literalLookup,
    });
    this.socket = socket;
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        socket.close();
        this.socket = null;
        reject(new ListenError(`udp ${this.address_}:${this.port}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.bind({ address: this.address_, port: this.port, exclusive: reusePort || !this.options.reuseAddr }, () => {
        socket.off('error', onError);
        socket.on('error', (err) => this.deps.logger.debug({ err }, 'udp socket error'));
        const a = socket.address();
        this.bound = { transport: 'udp', address: a.address, port: a.port, family: this.family };
        this.accepting = true;
        socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
        resolve();
      });
    });
  }

  address(): BoundAddress {
    if (this.bound === null) throw new ListenError('udp listener is not bound');
    return this.bound;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.accepting) {
      this.deps.metrics.dropped.stopping++;
      return;
    }
    const bound = this.bound!;
    const v6 = (rinfo.family as unknown) === 'IPv6' || (rinfo.family as unknown) === 6;
    const mapped = v6 && isV4Mapped(rinfo.address);
    const client = new UdpClient(mapped ? rinfo.address.slice(7) : rinfo.address, rinfo.port, v6 && !mapped ? 6 : 4, bound.address, bound.port);
    let r: Buffer | null | Promise<Buffer | null>;
    try {
      r = this.deps.handler.process(msg, client);
    } catch (err) {
      // process() never throws by contract; a bug there must not kill the server.
      this.deps.logger.error({ err }, 'query handler threw; packet dropped');
      return;
    }
    if (r === null) return;
    if (r instanceof Promise) {
      this.laterDgram(msg, rinfo, r);
    } else {
      this.send(msg, r, rinfo.port, rinfo.address);
    }
  }

  /** {@link later} for the node:dgram path (a closure in onMessage would cost a context per datagram). */
  private laterDgram(msg: Buffer, rinfo: dgram.RemoteInfo, r: Promise<Buffer | null>): void {
    r.then(
      (resp) => {
        if (resp !== null) this.send(msg, resp, rinfo.port, rinfo.address);
      },
      (err) => this.deps.logger.error({ err }, 'query handler rejected; packet dropped'),
    );
  }

  /** The response as it may leave over UDP to this client (TC=1 when too big), or null: dropped. */
  private fit(request: Buffer, response: Buffer): Buffer | null {
    if (response.length > 512) {
      const limit = udpResponseLimit(request, this.ceiling);
      if (response.length > limit) {
        try {
          return truncateForUdp(response, limit);
        } catch (err) {
          this.deps.logger.warn({ err }, 'could not truncate an oversize UDP response; dropped');
          this.deps.metrics.dropped.oversize++;
          return null;
        }
      }
    }
    return response;
  }

  private send(request: Buffer, response: Buffer, port: number, address: string): void {
    if (this.closed || this.socket === null) return;
    const out = this.fit(request, response);
    if (out === null) return;
    response = out;
    // No callback: Node then tries a synchronous send (uv_udp_try_send) and
    // skips the per-packet completion round trip through the event loop.
    // Failures surface as the socket's 'error' event (logged at debug).
    this.socket.send(response, port, address);
  }

  stopAccepting(): void {
    this.accepting = false;
  }

  close(): Promise<void> {
    this.accepting = false;
    if (this.nativeSocket !== null) {
      this.closed = true;
      this.nativeSocket.close();
      this.nativeSocket = null;
      return Promise.resolve();
    }
    if (this.closed || this.socket === null) {
      this.closed = true;
      return Promise.resolve();
    }
    this.closed = true;
    const socket = this.socket;
    this.socket = null;
    return new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/**
 * True for an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`), which a
 * dual-stack `::` socket reports for IPv4 clients. Transports report those
 * clients as plain IPv4 (family 4), so that address-based policy sees one
 * form.
 */
export function isV4Mapped(address: string): boolean {
  return address.length > 7 && address.charCodeAt(0) === 58 /* : */ && address.startsWith('::ffff:') && address.includes('.', 7);
}

/** `dgram` lookup for IP literals only (the bind address is checked with net.isIP; peers come from rinfo). */
function literalLookup(address: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}
