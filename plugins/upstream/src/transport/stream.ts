import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import type { Clock, ClockTimer } from '@heimdall/core';
import { systemClock } from '@heimdall/core/pipeline';
import { UpstreamError } from '../errors.js';
import { randomId } from '../random.js';
import { getId, isResponse, questionEnd, sameQuestion, setId } from '../wire.js';
import { arm, type Queueable, refusal, settle } from './request.js';
import type { ExchangeOptions, Transport, TransportEvents } from './types.js';

/** Options of {@link StreamTransport}. */
export interface StreamTransportOptions {
  /** `tcp` (RFC 7766) or `tls` (DNS over TLS, RFC 7858). */
  protocol: 'tcp' | 'tls';
  /** Server IP address or host name (no brackets). */
  host: string;
  port: number;
  /** Label for errors and metrics. Default `tcp://host:port` / `tls://host:port`. */
  url?: string;
  clock?: Clock;
  events?: TransportEvents;
  /** TLS only: server name sent in SNI and checked against the certificate. Default: `host` when it is a name. */
  servername?: string;
  /** TLS only: trusted CA certificates (PEM). Default: Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** TLS only: verify the certificate. Default true; turning it off is for tests only. */
  rejectUnauthorized?: boolean;
  /** Connections kept to this server. Default 2 (1–64). */
  maxConnections?: number;
  /** Queries pipelined on one connection at once. Default 128 (1–4096). */
  maxInFlight?: number;
  /** Queries waiting for room on a connection; beyond it an exchange fails with `QUEUE_FULL`. Default 1024. */
  maxQueue?: number;
  /** An unused connection is closed after this many ms. Default 10 000. */
  idleTimeout?: number;
  /** TCP connect + TLS handshake must finish within this many ms. Default 2000. */
  connectTimeout?: number;
}

interface Request extends Queueable {
  readonly query: Buffer;
  readonly deadline: number;
  conn: Conn | null;
  id: number;
  sent: Buffer | null;
  retried: boolean;
}

class Conn {
  readonly pending = new Map<number, Request>();
  answered = 0;
  closing = false;
  closed = false;
  leftover: Buffer | null = null;
  idleTimer: ClockTimer | undefined;
  connectTimer: ClockTimer | undefined;
  lastError: Error | undefined;
  constructor(readonly socket: net.Socket) {}
}

/**
 * DNS over a byte stream — TCP (RFC 7766) or TLS (RFC 7858) — to one server,
 * with connection reuse and pipelining.
 *
 * Up to `maxConnections` connections are kept open and shared by all
 * queries; each carries up to `maxInFlight` queries at once, matched to
 * replies by ID. Every query gets a random ID unique on its connection (the
 * caller's ID is restored on the reply), so pipelined replies may come back
 * in any order (RFC 7766 §6.2.1.1). Queries beyond the in-flight bound wait
 * in a bounded queue. A connection closes after `idleTimeout` without
 * queries. When a connection that had already answered is reset (typically
 * the server closing an idle connection as we write to it), its pending
 * queries are re-sent once on a new connection.
 */
export class StreamTransport implements Transport {
  readonly protocol: 'tcp' | 'tls';
  readonly url: string;
  readonly #o: StreamTransportOptions;
  readonly #clock: Clock;
  readonly #events: TransportEvents;
  readonly #maxConnections: number;
  readonly #maxInFlight: number;
  readonly #maxQueue: number;
  readonly #idleTimeout: number;
  readonly #connectTimeout: number;
  readonly #conns: Conn[] = [];
  readonly #queue: Request[] = [];
  #tlsSession: Buffer | undefined;
  #closed = false;
  /** Connections opened since creation (for tests and stats). */
  connectionsOpened = 0;
  /** TLS connections that resumed a previous session (abbreviated handshake). */
  sessionsResumed = 0;

  constructor(options: StreamTransportOptions) {
    this.#o = options;
    this.protocol = options.protocol;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.url = options.url ?? `${options.protocol}://${host}:${options.port}`;
    this.#clock = options.clock ?? systemClock;
    this.#events = options.events ?? {};
    this.#maxConnections = options.maxConnections ?? 2;
    this.#maxInFlight = options.maxInFlight ?? 128;
    this.#maxQueue = options.maxQueue ?? 1024;
    this.#idleTimeout = options.idleTimeout ?? 10_000;
    this.#connectTimeout = options.connectTimeout ?? 2000;
  }

  exchange(query: Buffer, options: ExchangeOptions): Promise<Buffer> {
    const qEnd = questionEnd(query);
    const refused = refusal(this.#closed, query, qEnd, options, this.url, 65535);
    if (refused !== null) return Promise.reject(refused);
    return new Promise<Buffer>((resolve, reject) => {
      const req: Request = {
        query,
        origId: getId(query),
        qEnd,
        deadline: options.deadline,
        resolve,
        reject,
        conn: null,
        id: 0,
        sent: null,
        queued: false,
        retried: false,
        done: false,
        timer: undefined,
        signal: undefined,
        onAbort: undefined,
      };
      arm(req, options, this.#clock, this.url, (err) => this.#fail(req, err));
      this.#dispatch(req);
    });
  }

  #dispatch(req: Request): void {
    let conn: Conn | undefined;
    for (const c of this.#conns) {
      if (!c.closing && c.pending.size < this.#maxInFlight) {
        conn = c;
        break;
      }
    }
    if (conn === undefined && this.#conns.length < this.#maxConnections) conn = this.#open();
    if (conn === undefined) {
      if (this.#queue.length >= this.#maxQueue) {
        this.#fail(req, new UpstreamError('QUEUE_FULL', `more than ${this.#maxQueue} queries waiting for a connection`, this.url));
        return;
      }
      req.queued = true;
      this.#queue.push(req);
      return;
    }
    this.#send(conn, req);
  }

  #send(conn: Conn, req: Request): void {
    let id = randomId();
    while (conn.pending.has(id)) id = randomId();
    const frame = Buffer.allocUnsafe(req.query.length + 2);
    frame.writeUInt16BE(req.query.length, 0);
    req.query.copy(frame, 2);
    frame[2] = id >>> 8;
    frame[3] = id & 0xff;
    req.conn = conn;
    req.id = id;
    req.sent = frame.subarray(2);
    conn.pending.set(id, req);
    if (conn.idleTimer !== undefined) {
      this.#clock.clearTimeout(conn.idleTimer);
      conn.idleTimer = undefined;
    }
    conn.socket.write(frame);
  }

  #open(): Conn {
    const o = this.#o;
    let socket: net.Socket;
    if (o.protocol === 'tls') {
      const servername = o.servername ?? (net.isIP(o.host) ? undefined : o.host);
      socket = tls.connect({
        host: o.host,
        port: o.port,
        servername,
        ca: o.ca,
        rejectUnauthorized: o.rejectUnauthorized ?? true,
        ALPNProtocols: ['dot'],
        session: this.#tlsSession,
        // Node checks against `servername` when given, else against `host`; an
        // explicit `checkServerIdentity: undefined` trips an internal assertion.
        ...(servername ? { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(servername, cert) } : {}),
      });
      socket.on('session', (s: Buffer) => {
        this.#tlsSession = s;
      });
    } else {
      socket = net.connect({ host: o.host, port: o.port, noDelay: true });
    }
    this.connectionsOpened++;
    const conn = new Conn(socket);
    this.#conns.push(conn);
    socket.unref();
    conn.connectTimer = this.#clock.setTimeout(() => {
      conn.connectTimer = undefined;
      socket.destroy(new Error(`${o.protocol === 'tls' ? 'TLS handshake' : 'TCP connect'} not done within ${this.#connectTimeout} ms`));
    }, this.#connectTimeout);
    socket.once(o.protocol === 'tls' ? 'secureConnect' : 'connect', () => {
      if (conn.connectTimer !== undefined) this.#clock.clearTimeout(conn.connectTimer);
      conn.connectTimer = undefined;
      if (o.protocol === 'tls') {
        socket.setNoDelay(true);
        if ((socket as tls.TLSSocket).isSessionReused()) this.sessionsResumed++;
      }
    });
    socket.on('data', (chunk: Buffer) => this.#onData(conn, chunk));
    socket.on('error', (err) => {
      conn.lastError = err;
    });
    socket.on('close', () => this.#onClose(conn));
    return conn;
  }

  #onData(conn: Conn, chunk: Buffer): void {
    let data = conn.leftover === null ? chunk : Buffer.concat([conn.leftover, chunk]);
    let off = 0;
    while (data.length - off >= 2) {
      const len = data.readUInt16BE(off);
      if (data.length - off - 2 < len) break;
      const frame = data.subarray(off + 2, off + 2 + len);
      off += 2 + len;
      if (len < 12) {
        this.#events.onSpoof?.('malformed');
        conn.lastError = new Error(`malformed frame of ${len} bytes`);
        conn.socket.destroy();
        return;
      }
      const req = conn.pending.get(getId(frame));
      // An unknown ID on a stream is a late reply to a query that timed out or
      // was aborted (TCP is not spoofable off-path): ignore it.
      if (req === undefined) continue;
      if (!isResponse(frame) || !sameQuestion(req.sent!, req.qEnd, frame)) {
        this.#events.onSpoof?.('question');
        continue;
      }
      const reply = Buffer.from(frame);
      setId(reply, req.origId);
      conn.answered++;
      this.#finish(req);
      req.resolve(reply);
    }
    if (off === data.length) conn.leftover = null;
    else {
      if (off > 0) data = data.subarray(off);
      conn.leftover = data;
    }
  }

  #onClose(conn: Conn): void {
    conn.closed = true;
    conn.closing = true;
    if (conn.connectTimer !== undefined) this.#clock.clearTimeout(conn.connectTimer);
    if (conn.idleTimer !== undefined) this.#clock.clearTimeout(conn.idleTimer);
    const i = this.#conns.indexOf(conn);
    if (i >= 0) this.#conns.splice(i, 1);
    const reason = conn.lastError ? ((conn.lastError as NodeJS.ErrnoException).code ?? conn.lastError.message) : 'connection closed by server';
    const requests = [...conn.pending.values()];
    conn.pending.clear();
    for (const req of requests) {
      req.conn = null;
      if (!this.#closed && conn.answered > 0 && !req.retried && req.deadline > this.#clock.now()) {
        req.retried = true;
        this.#dispatch(req);
      } else {
        this.#fail(req, new UpstreamError('NETWORK', reason, this.url, { cause: conn.lastError }));
      }
    }
    this.#drain();
  }

  #drain(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      let room = false;
      for (const c of this.#conns) if (!c.closing && c.pending.size < this.#maxInFlight) room = true;
      if (!room && this.#conns.length >= this.#maxConnections) return;
      const req = this.#queue.shift()!;
      req.queued = false;
      this.#dispatch(req);
    }
  }

  #fail(req: Request, err: Error): void {
    if (req.done) return;
    this.#finish(req);
    req.reject(err);
  }

  #finish(req: Request): void {
    settle(req, this.#clock, this.#queue);
    const conn = req.conn;
    if (conn !== null) {
      req.conn = null;
      conn.pending.delete(req.id);
      if (this.#queue.length > 0) this.#drain();
      if (conn.pending.size === 0 && !conn.closing && conn.idleTimer === undefined) {
        conn.idleTimer = this.#clock.setTimeout(() => {
          conn.idleTimer = undefined;
          if (conn.pending.size === 0) {
            conn.closing = true;
            conn.socket.end();
            conn.socket.destroySoon?.();
          }
        }, this.#idleTimeout);
        // An idle connection must not keep the process alive.
        (conn.idleTimer as NodeJS.Timeout).unref?.();
      }
    }
  }

  /** Connections currently open. */
  get openConnections(): number {
    return this.#conns.length;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = new UpstreamError('CLOSED', 'transport closed', this.url);
    for (const req of [...this.#queue]) this.#fail(req, err);
    const conns = [...this.#conns];
    for (const conn of conns) {
      for (const req of [...conn.pending.values()]) this.#fail(req, err);
      conn.closing = true;
      conn.socket.destroy();
    }
  }
}
