/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): 2-byte length framing, pipelined
 * queries answered as soon as each is ready (so possibly out of order), idle
 * timeout, bounded connections, message size, per-connection concurrency and
 * write buffering.
 *
 * Hostile clients (RFC 7766 §6): a frame must complete within
 * `frameTimeoutMs` of its first byte, and partial frames are not activity
 * (they do not hold off the idle timeout), so trickling bytes keeps no
 * connection open; one client address holds at most
 * `maxConnectionsPerClient` connections; at `maxConnections` the
 * longest-idle connection is closed to admit the newcomer (as Knot and
 * unbound do) instead of the newcomer being refused, so a full table cannot
 * lock everyone else out.
 */
import net from 'node:net';
import { ConfigError, ListenError } from '../errors.js';
import { truncateForUdp } from '../packet/index.js';
import type { ClientInfo } from '../pipeline/types.js';
import { type BoundAddress, reusePortSupported, type TcpListenOptions, type TransportDeps, type TransportServer } from './types.js';
import { isV4Mapped } from './udp.js';
import { tcpListenSchema } from './schema.js';
import { parseOptions, type Static } from '../plugin/options.js';

/** Resolved TCP limits (every one configurable, see {@link TcpListenOptions}). */
/** A TCP listener's validated settings, defaults filled in. */
export type TcpLimits = Static<typeof tcpListenSchema>;

/** Checks TCP listener options and fills in defaults ({@link tcpListenSchema}). Throws `ConfigError` naming the field. */
export function tcpLimits(options: TcpListenOptions, path = 'listen'): TcpLimits {
  return parseOptions(tcpListenSchema, { ...options, transport: 'tcp' }, path);
}

/** A TCP listener. */
export class TcpServer implements TransportServer {
  /** The resolved limits of this listener. */
  readonly limits: TcpLimits;
  private readonly address_: string;
  private readonly port: number;
  private readonly family: 4 | 6;
  private server: net.Server | null = null;
  private bound: BoundAddress | null = null;
  /** @internal */ accepting = false;
  /**
   * Open connections, least recently active first (a connection moves to the
   * end when a frame completes or an answer is written): the first idle one
   * is the one evicted at `maxConnections`.
   * @internal
   */
  readonly connections = new Set<TcpConnection>();
  /** Open connections per client address. @internal */
  readonly perClient = new Map<string, number>();

  constructor(
    options: TcpListenOptions,
    /** @internal */ readonly deps: TransportDeps,
    path = 'listen',
  ) {
    this.limits = tcpLimits(options, path);
    const ipVersion = net.isIP(this.limits.address);
    if (ipVersion === 0) throw new ConfigError(`${path}.address`, 'must be an IPv4 or IPv6 address', this.limits.address);
    this.address_ = this.limits.address;
    this.family = ipVersion as 4 | 6;
    this.port = this.limits.port;
  }

  listen(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket));
    this.server = server;
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        this.server = null;
        reject(new ListenError(`tcp ${this.address_}:${this.port}: ${err.message}`, { cause: err }));
      };
      server.once('error', onError);
      server.listen({ host: this.address_, port: this.port, backlog: this.limits.backlog, ipv6Only: this.limits.ipv6Only, ...(this.limits.reusePort && reusePortSupported ? { reusePort: true, exclusive: true } : {}) }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.deps.logger.warn({ err }, 'tcp server error'));
        const a = server.address() as net.AddressInfo;
        this.bound = { transport: 'tcp', address: a.address, port: a.port, family: this.family };
        this.accepting = true;
        resolve();
      });
    });
  }

  address(): BoundAddress {
    if (this.bound === null) throw new ListenError('tcp listener is not bound');
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
    const client = clientInfo(socket);
    const perClient = this.perClient.get(client.address) ?? 0;
    if (this.limits.maxConnectionsPerClient > 0 && perClient >= this.limits.maxConnectionsPerClient) {
      this.deps.metrics.tcpClosed.clientLimit++;
      socket.destroy();
      return;
    }
    while (this.connections.size >= this.limits.maxConnections) this.evictOne();
    const conn = new TcpConnection(this, socket, client);
    this.connections.add(conn);
    this.perClient.set(client.address, perClient + 1);
    this.deps.metrics.tcpConnections++;
  }

  /**
   * Closes the longest-idle connection: the least recently active one
   * without a query in flight (or already closing), else the least recently
   * active of all.
   */
  private evictOne(): void {
    let victim: TcpConnection | undefined;
    for (const c of this.connections) {
      if (c.idle) {
        victim = c;
        break;
      }
      victim ??= c;
    }
    if (victim === undefined) return;
    this.deps.metrics.tcpClosed.evicted++;
    victim.destroy();
  }

  /** Forgets `conn` (once); it no longer counts against any limit. @internal */
  release(conn: TcpConnection): void {
    if (!this.connections.delete(conn)) return;
    this.deps.metrics.tcpConnections--;
    const n = (this.perClient.get(conn.client.address) ?? 1) - 1;
    if (n > 0) this.perClient.set(conn.client.address, n);
    else this.perClient.delete(conn.client.address);
  }

  /** Marks `conn` as the most recently active. @internal */
  touch(conn: TcpConnection): void {
    if (this.connections.delete(conn)) this.connections.add(conn);
  }

  stopAccepting(): void {
    this.accepting = false;
    if (this.server?.listening) this.server.close();
    for (const c of this.connections) c.stopReading();
  }

  /**
   * Ends every connection (flushing written answers), waits up to
   * `graceMs` for peers to close, destroys the rest and closes the server.
   */
  async close(graceMs = 250): Promise<void> {
    this.accepting = false;
    const server = this.server;
    this.server = null;
    if (server?.listening) server.close();
    if (this.connections.size > 0) {
      for (const c of this.connections) c.end();
      const until = Date.now() + graceMs;
      while (this.connections.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      for (const c of this.connections) c.destroy();
    }
  }
}

/** Who is at the other end of `socket` (IPv4-mapped addresses reported as IPv4). */
function clientInfo(socket: net.Socket): ClientInfo {
  const remote = socket.remoteAddress ?? '';
  const mapped = socket.remoteFamily === 'IPv6' && isV4Mapped(remote);
  const family = socket.remoteFamily === 'IPv6' && !mapped ? 6 : 4;
  return {
    address: mapped ? remote.slice(7) : remote,
    port: socket.remotePort ?? 0,
    family,
    transport: 'tcp',
    localAddress: socket.localAddress,
    localPort: socket.localPort,
  };
}

/** One client connection: frames in, responses out, limits enforced. */
class TcpConnection {
  private buffer: Buffer | null = null;
  private inFlight = 0;
  private queries = 0;
  private readEnded = false;
  private reading = true;
  private closed = false;
  private paused = false;
  private forced = false;
  /** When the last frame completed or the last answer was written (or the connection was accepted). */
  private lastActive = performance.now();
  /** When the first byte of the pending partial frame arrived; 0 when no partial frame is pending. */
  private frameStart = 0;
  /** The one timer of this connection (idle and frame deadlines), and when it fires. */
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Number.POSITIVE_INFINITY;

  constructor(
    private readonly server: TcpServer,
    private readonly socket: net.Socket,
    /** @internal */ readonly client: ClientInfo,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => {
      server.deps.logger.debug({ err, client: this.client.address }, 'tcp connection error');
      this.destroy();
    });
    socket.on('close', () => this.onClose());
    this.arm();
  }

  /** No query in flight (or already closing): a candidate for eviction. */
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
      this.server.deps.metrics.tcpClosed.frameTimeout++;
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
          if (resp !== null) this.write(resp);
          this.afterResponse();
        },
        (err) => {
          this.inFlight--;
          this.server.deps.logger.error({ err }, 'query handler rejected; query dropped');
          this.afterResponse();
        },
      );
    } else {
      this.write(r);
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

  private write(response: Buffer): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    if (response.length > 65535) response = truncateForUdp(response, 65535);
    const out = Buffer.allocUnsafe(response.length + 2);
    out.writeUInt16BE(response.length, 0);
    response.copy(out, 2);
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

  /** No more queries from this connection: answer the pending ones, then close. */
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
    this.socket.end();
    // A peer that never closes its side must not hold the socket forever.
    const t = setTimeout(() => this.socket.destroy(), Math.min(this.server.limits.idleTimeoutMs, 2000));
    t.unref();
    this.socket.once('close', () => clearTimeout(t));
  }

  /** Stops reading and ends our side now (written answers are flushed first); destroyed later if the peer lingers. */
  end(): void {
    this.reading = false;
    this.buffer = null;
    if (this.closed) return;
    this.forced = true;
    this.maybeFinish();
  }

  /** Closes the connection now; it stops counting against the limits at once. */
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
