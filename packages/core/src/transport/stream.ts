/**
 * What the stream listeners (TCP, DNS over TLS, DNS over HTTPS) share.
 *
 * {@link StreamServer}: the listening socket, the PROXY v2 preamble from
 * trusted sources, and the connection table with the hostile-client
 * protections: one client address holds at most `maxConnectionsPerClient`
 * connections; at `maxConnections` the longest-idle connection is closed to
 * admit the newcomer (as Knot and unbound do) instead of the newcomer being
 * refused, so a full table cannot lock everyone else out.
 *
 * {@link FramedConnection}: DNS over a byte stream (RFC 1035 §4.2.2,
 * RFC 7766), for TCP and for TLS (RFC 7858 is the same framing inside TLS):
 * 2-byte length framing, pipelined queries answered as soon as each is
 * ready (so possibly out of order), idle timeout, bounded message size,
 * per-connection concurrency and write buffering. A frame must complete
 * within `frameTimeoutMs` of its first byte, and partial frames are not
 * activity (they do not hold off the idle timeout), so trickling bytes keeps
 * no connection open. Answers written in one turn of the event loop leave in
 * one write (corked). Queries carrying edns-tcp-keepalive (RFC 7828) get our
 * idle timeout back; encrypted listeners pad (RFC 7830/8467).
 */
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import net from 'node:net';
import { ConfigError, ListenError } from '../errors.js';
import { truncateForUdp } from '../packet/index.js';
import type { ProxyRejectReason, StreamTransport, TcpCloseReason } from '../pipeline/metrics.js';
import type { ClientInfo } from '../pipeline/types.js';
import { ipToBytes } from '../wire/ip.js';
import { addResponseOptions, HAS_KEEPALIVE, HAS_PADDING, queryOptions, RESPONSE_PAD_BLOCK } from './edns-options.js';
import { AddressSet, readProxyPreamble } from './proxy.js';
import { type BoundAddress, reusePortSupported, type TransportDeps, type TransportServer } from './types.js';
import { isV4Mapped } from './udp.js';

/** Settings every stream listener has (validated by its schema). */
export interface StreamSettings {
  readonly address: string;
  readonly port: number;
  readonly backlog: number;
  readonly ipv6Only: boolean;
  readonly reusePort: boolean;
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
  readonly proxyProtocol?: { readonly trusted: readonly string[]; readonly timeoutMs: number };
}

/** A connection as the table sees it. */
export interface TrackedConnection {
  readonly client: ClientInfo;
  /** No query in flight (or already closing): a candidate for eviction. */
  readonly idle: boolean;
  /** Closes now; it stops counting against the limits at once. */
  destroy(): void;
  /** Stops reading and ends our side (written answers are flushed first). */
  end(): void;
  /** No more queries: answer the pending ones, then close. */
  stopReading(): void;
}

/** Who is at the other end of `socket` (IPv4-mapped addresses reported as IPv4). */
export function socketClient(socket: net.Socket, transport: ClientInfo['transport']): ClientInfo {
  const remote = socket.remoteAddress ?? '';
  const mapped = socket.remoteFamily === 'IPv6' && isV4Mapped(remote);
  const family = socket.remoteFamily === 'IPv6' && !mapped ? 6 : 4;
  return {
    address: mapped ? remote.slice(7) : remote,
    port: socket.remotePort ?? 0,
    family,
    transport,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
  };
}

/** The listening side and connection table of a stream transport. */
export abstract class StreamServer<C extends TrackedConnection = TrackedConnection> implements TransportServer {
  private readonly address_: string;
  private readonly port: number;
  private readonly family: 4 | 6;
  private server: net.Server | null = null;
  private bound: BoundAddress | null = null;
  /** @internal */ accepting = false;
  /**
   * Open connections, least recently active first (a connection moves to the
   * end when it is active): the first idle one is the one evicted at
   * `maxConnections`.
   * @internal
   */
  readonly connections = new Set<C>();
  /** Open connections per client address. @internal */
  readonly perClient = new Map<string, number>();
  /** Connections still sending their PROXY header. @internal */
  private readonly preamble = new Set<net.Socket>();
  private readonly proxyTrusted: AddressSet | null;
  /** This transport's `heimdall_connections_closed_total{transport}` counters (in core's metrics). @internal */
  readonly closedCounts: Record<TcpCloseReason, number>;
  /** This transport's `heimdall_proxy_protocol_rejected_total{transport}` counters. */
  private readonly proxyCounts: Record<ProxyRejectReason, number>;

  protected constructor(
    /** The transport clients see in `ClientInfo.transport`. */
    readonly kind: StreamTransport,
    private readonly streamSettings: StreamSettings,
    /** @internal */ readonly deps: TransportDeps,
    path: string,
  ) {
    const ipVersion = net.isIP(streamSettings.address);
    if (ipVersion === 0) throw new ConfigError(`${path}.address`, 'must be an IPv4 or IPv6 address', streamSettings.address);
    this.address_ = streamSettings.address;
    this.family = ipVersion as 4 | 6;
    this.port = streamSettings.port;
    this.proxyTrusted = streamSettings.proxyProtocol ? new AddressSet(streamSettings.proxyProtocol.trusted, `${path}.proxyProtocol.trusted`) : null;
    this.closedCounts = deps.metrics.connectionsClosed[kind];
    this.proxyCounts = deps.metrics.proxyRejected[kind];
  }

  /** Starts serving a connection that passed the limits. */
  protected abstract open(socket: net.Socket, client: ClientInfo): C;

  /** Extra work before binding (certificates). */
  protected prepare(): Promise<void> {
    return Promise.resolve();
  }

  async listen(): Promise<void> {
    await this.prepare();
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket));
    this.server = server;
    const s = this.streamSettings;
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        this.server = null;
        this.closed();
        reject(new ListenError(`${this.kind} ${this.address_}:${this.port}: ${err.message}`, { cause: err }));
      };
      server.once('error', onError);
      server.listen(
        {
          host: this.address_,
          port: this.port,
          backlog: s.backlog,
          ipv6Only: s.ipv6Only,
          ...(s.reusePort && reusePortSupported ? { reusePort: true, exclusive: true } : {}),
        },
        () => {
          server.off('error', onError);
          server.on('error', (err) => this.deps.logger.warn({ err }, `${this.kind} server error`));
          const a = server.address() as net.AddressInfo;
          this.bound = { transport: this.kind, address: a.address, port: a.port, family: this.family };
          this.accepting = true;
          resolve();
        },
      );
    });
  }

  address(): BoundAddress {
    if (this.bound === null) throw new ListenError(`${this.kind} listener is not bound`);
    return this.bound;
  }

  /** Number of open connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => {});
    if (!this.accepting) {
      this.deps.metrics.dropped.overload++;
      socket.destroy();
      return;
    }
    const peer = socketClient(socket, this.kind);
    if (this.proxyTrusted === null) {
      this.admit(socket, peer);
      return;
    }
    // PROXY v2: trusted sources must send a header; others must not.
    if (this.preamble.size >= this.streamSettings.maxConnections) {
      this.deps.metrics.dropped.overload++;
      socket.destroy();
      return;
    }
    const trusted = this.proxyTrusted.has(peer.address);
    this.preamble.add(socket);
    readProxyPreamble(socket, trusted, this.streamSettings.proxyProtocol!.timeoutMs, (r) => {
      this.preamble.delete(socket);
      if (!r.ok) {
        this.proxyCounts[r.reason === 'untrusted-header' ? 'untrustedHeader' : r.reason]++;
        this.deps.logger.debug({ client: peer.address, reason: r.reason, detail: r.detail }, `${this.kind}: PROXY header refused; connection closed`);
        socket.destroy();
        return;
      }
      if (!this.accepting || socket.destroyed) {
        socket.destroy();
        return;
      }
      const src = r.header?.source;
      const client: ClientInfo = src === undefined ? peer : { ...peer, address: src.address, port: src.port, family: src.family };
      this.admit(socket, client);
      // The connection reads on (a TLS wrapper resumes the socket itself).
      if (this.kind === 'tcp') socket.resume();
    });
  }

  private admit(socket: net.Socket, client: ClientInfo): void {
    const key = clientLimitKey(client);
    const perClient = this.perClient.get(key) ?? 0;
    if (this.streamSettings.maxConnectionsPerClient > 0 && perClient >= this.streamSettings.maxConnectionsPerClient) {
      this.closedCounts.clientLimit++;
      socket.destroy();
      return;
    }
    while (this.connections.size >= this.streamSettings.maxConnections) if (!this.evictOne()) break;
    this.perClient.set(key, perClient + 1);
    this.deps.metrics.connections[this.kind]++;
    const conn = this.open(socket, client);
    this.connections.add(conn);
  }

  /**
   * Closes the longest-idle connection: the least recently active one
   * without a query in flight (or already closing), else the least recently
   * active of all.
   */
  private evictOne(): boolean {
    let victim: C | undefined;
    for (const c of this.connections) {
      if (c.idle) {
        victim = c;
        break;
      }
      victim ??= c;
    }
    if (victim === undefined) return false;
    this.closedCounts.evicted++;
    victim.destroy();
    this.release(victim);
    return true;
  }

  /** Forgets `conn` (once); it no longer counts against any limit. @internal */
  release(conn: C): void {
    if (!this.connections.delete(conn)) return;
    this.deps.metrics.connections[this.kind]--;
    const key = clientLimitKey(conn.client);
    const n = (this.perClient.get(key) ?? 1) - 1;
    if (n > 0) this.perClient.set(key, n);
    else this.perClient.delete(key);
  }

  /** Marks `conn` as the most recently active. @internal */
  touch(conn: C): void {
    if (this.connections.delete(conn)) this.connections.add(conn);
  }

  stopAccepting(): void {
    this.accepting = false;
    if (this.server?.listening) this.server.close();
    for (const s of this.preamble) s.destroy();
    for (const c of this.connections) c.stopReading();
  }

  /** Hook: the listener is gone for good (stop watching files). */
  protected closed(): void {}

  /**
   * Ends every connection (flushing written answers), waits up to
   * `graceMs` for peers to close, destroys the rest and closes the server.
   */
  async close(graceMs = 250): Promise<void> {
    this.accepting = false;
    const server = this.server;
    this.server = null;
    this.closed();
    if (server?.listening) server.close();
    for (const s of this.preamble) s.destroy();
    if (this.connections.size > 0) {
      for (const c of this.connections) c.end();
      const until = Date.now() + graceMs;
      while (this.connections.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      for (const c of this.connections) c.destroy();
    }
  }
}

/** The limits a framed (TCP, TLS) connection enforces. */
export interface FramedLimits {
  readonly idleTimeoutMs: number;
  readonly frameTimeoutMs: number;
  readonly maxMessageSize: number;
  readonly maxInFlightPerConnection: number;
  readonly maxQueriesPerConnection: number;
  readonly maxWriteBuffer: number;
}

/** What a framed connection needs from its listener. */
export interface FramedHost {
  readonly limits: FramedLimits;
  readonly deps: TransportDeps;
  /** The listener's `heimdall_connections_closed_total{transport}` counters. */
  readonly closedCounts: Record<TcpCloseReason, number>;
  /** Padding policy of the listener (`off` for TCP). */
  readonly padding: 'always' | 'query' | 'off';
  release(conn: FramedConnection): void;
  touch(conn: FramedConnection): void;
}

/** One client connection speaking length-prefixed DNS: frames in, responses out, limits enforced. */
export class FramedConnection implements TrackedConnection {
  private buffer: Buffer | null = null;
  private inFlight = 0;
  private queries = 0;
  private readEnded = false;
  private reading = true;
  private closed = false;
  private paused = false;
  private forced = false;
  private corked = false;
  /** When the last frame completed or the last answer was written (or the connection was accepted). */
  private lastActive = performance.now();
  /** When the first byte of the pending partial frame arrived; 0 when no partial frame is pending. */
  private frameStart = 0;
  /** The one timer of this connection (idle and frame deadlines), and when it fires. */
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Number.POSITIVE_INFINITY;
  /** RFC 7828 TIMEOUT we announce: the idle timeout in units of 100 ms. */
  private readonly keepaliveUnits: number;
  private readonly uncork = () => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(
    private readonly server: FramedHost,
    private readonly socket: net.Socket,
    readonly client: ClientInfo,
  ) {
    this.keepaliveUnits = Math.min(65_535, Math.floor(server.limits.idleTimeoutMs / 100));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => {
      server.deps.logger.debug({ err, client: this.client.address }, `${client.transport} connection error`);
      this.destroy();
    });
    socket.on('close', () => this.onClose());
    this.arm();
  }

  get idle(): boolean {
    return this.closed || this.inFlight === 0;
  }

  /** The earliest deadline that applies now (idle, frame), or +Infinity. */
  private deadline(): number {
    if (this.closed) return Number.POSITIVE_INFINITY;
    const limits = this.server.limits;
    let due = this.frameStart > 0 ? this.frameStart + limits.frameTimeoutMs : Number.POSITIVE_INFINITY;
    // RFC 7766 §6.2.3: idle means no outstanding query. Partial frames do not count as activity.
    if (this.inFlight === 0) due = Math.min(due, this.lastActive + limits.idleTimeoutMs);
    return due;
  }

  /**
   * Makes sure the timer fires no later than the current deadline. A timer
   * that fires early re-checks and re-arms, so activity costs no timer work.
   */
  private arm(): void {
    const due = this.deadline();
    if (due === Number.POSITIVE_INFINITY || (this.timer !== null && this.timerDue <= due)) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.ceil(due - performance.now())));
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = null;
    this.timerDue = Number.POSITIVE_INFINITY;
    if (this.closed) return;
    const now = performance.now();
    const limits = this.server.limits;
    if (this.frameStart > 0 && now >= this.frameStart + limits.frameTimeoutMs) {
      // A frame that does not complete in time (slow-loris): the stream cannot be resynchronised.
      this.server.closedCounts.frameTimeout++;
      this.destroy();
      return;
    }
    if (this.inFlight === 0 && now >= this.lastActive + limits.idleTimeoutMs) {
      this.stopReading();
      return;
    }
    this.arm();
  }

  /** A frame completed or an answer went out. */
  private active(): void {
    this.lastActive = performance.now();
    this.server.touch(this);
  }

  private onData(chunk: Buffer): void {
    if (!this.reading) return;
    this.buffer = this.buffer === null || this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.drainFrames();
  }

  /** Processes every complete frame in the buffer, within the concurrency limit. */
  private drainFrames(): void {
    const limits = this.server.limits;
    let buf = this.buffer;
    while (buf !== null && buf.length >= 2 && this.reading && !this.closed) {
      if (this.inFlight >= limits.maxInFlightPerConnection) {
        this.pause();
        break;
      }
      const len = buf.readUInt16BE(0);
      if (len < 12 || len > limits.maxMessageSize) {
        // Not DNS, or bigger than we accept: there is no way to resync a stream.
        this.server.deps.metrics.dropped[len < 12 ? 'malformed' : 'oversize']++;
        this.destroy();
        return;
      }
      if (buf.length < 2 + len) break;
      const msg = buf.subarray(2, 2 + len);
      buf = buf.length === 2 + len ? null : buf.subarray(2 + len);
      this.buffer = buf;
      this.frameStart = 0;
      this.active();
      this.queries++;
      this.dispatch(msg);
      if (limits.maxQueriesPerConnection > 0 && this.queries >= limits.maxQueriesPerConnection) {
        this.stopReading();
      }
    }
    this.buffer = buf;
    if (this.closed) return;
    // The frame deadline runs while a partial frame waits for more bytes from
    // the client (not while we hold complete frames at the concurrency limit).
    const waiting = buf !== null && buf.length > 0 && this.reading && !this.paused && !this.readEnded;
    if (!waiting) this.frameStart = 0;
    else if (this.frameStart === 0) this.frameStart = performance.now();
    this.arm();
  }

  private dispatch(msg: Buffer): void {
    let r: Buffer | null | Promise<Buffer | null>;
    try {
      r = this.server.deps.handler.process(msg, this.client);
    } catch (err) {
      // process() never throws by contract; a bug there must not kill the server.
      this.server.deps.logger.error({ err }, 'query handler threw; query dropped');
      return;
    }
    if (r === null) return;
    if (r instanceof Promise) {
      this.inFlight++;
      r.then(
        (resp) => {
          this.inFlight--;
          if (resp !== null) this.write(resp, msg);
          this.afterResponse();
        },
        (err) => {
          this.inFlight--;
          this.server.deps.logger.error({ err }, 'query handler rejected; query dropped');
          this.afterResponse();
        },
      );
    } else {
      this.write(r, msg);
    }
  }

  private afterResponse(): void {
    if (this.closed) return;
    if (this.paused && this.inFlight < this.server.limits.maxInFlightPerConnection) {
      this.paused = false;
      if (!this.readEnded) this.socket.resume();
      this.drainFrames();
    }
    this.maybeFinish();
    this.arm();
  }

  private write(response: Buffer, query: Buffer): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    // EDNS options of our own (keepalive, padding) when the query has an OPT record.
    if (query[10] !== 0 || query[11] !== 0) {
      const bits = queryOptions(query);
      if (bits !== 0) {
        const padding = this.server.padding;
        const pad = padding === 'always' || (padding === 'query' && (bits & HAS_PADDING) !== 0) ? RESPONSE_PAD_BLOCK : 0;
        response = addResponseOptions(response, (bits & HAS_KEEPALIVE) !== 0 ? this.keepaliveUnits : -1, pad);
      }
    }
    if (response.length > 65535) response = truncateForUdp(response, 65535);
    const out = Buffer.allocUnsafe(response.length + 2);
    out.writeUInt16BE(response.length, 0);
    response.copy(out, 2);
    if (!this.corked) {
      // Every answer of this turn of the event loop leaves in one write (one TLS record, one syscall).
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(out);
    if (this.socket.writableLength > this.server.limits.maxWriteBuffer) {
      // The client does not read its answers: stop serving it.
      this.server.deps.metrics.dropped.overload++;
      this.destroy();
      return;
    }
    this.active();
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  stopReading(): void {
    if (!this.reading) return;
    this.reading = false;
    this.buffer = null;
    this.maybeFinish();
  }

  private onEnd(): void {
    // Half-close (RFC 7766 §6.2.4 allows a client to send FIN after its
    // queries): answer every complete query received, then close our side.
    this.readEnded = true;
    this.drainFrames();
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.closed || (this.inFlight > 0 && !this.forced)) return;
    if (this.reading && !this.readEnded) return;
    this.closed = true;
    this.buffer = null;
    if (this.corked) this.uncork();
    this.socket.end();
    // A peer that never closes its side must not hold the socket forever.
    const t = setTimeout(() => this.socket.destroy(), Math.min(this.server.limits.idleTimeoutMs, 2000));
    t.unref();
    this.socket.once('close', () => clearTimeout(t));
  }

  end(): void {
    this.reading = false;
    this.buffer = null;
    if (this.closed) return;
    this.forced = true;
    this.maybeFinish();
  }

  destroy(): void {
    this.closed = true;
    this.reading = false;
    this.buffer = null;
    this.clearTimer();
    this.server.release(this);
    this.socket.destroy();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Number.POSITIVE_INFINITY;
  }

  private onClose(): void {
    this.closed = true;
    this.clearTimer();
    this.server.release(this);
  }
}

/**
 * What `maxConnectionsPerClient` counts by: the IPv4 address, or the /64 of
 * an IPv6 address — one host usually holds a whole /64 (SLAAC, privacy
 * addresses), so counting exact IPv6 addresses would let it open the cap
 * again from every address it picks. @internal
 */
export function clientLimitKey(client: ClientInfo): string {
  if (client.family !== 6) return client.address;
  const b = ipToBytes(client.address);
  if (b === null || b.length !== 16) return client.address;
  return `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}:${((b[4]! << 8) | b[5]!).toString(16)}:${((b[6]! << 8) | b[7]!).toString(16)}::/64`;
}
