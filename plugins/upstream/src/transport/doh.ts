import { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { Clock, ClockTimer } from '@heimdall/core';
import { systemClock } from '@heimdall/core/pipeline';
import { UpstreamError } from '../errors.js';
import { getId, isResponse, questionEnd, sameQuestion, setId } from '../wire.js';
import { arm, type Queueable, refusal, settle } from './request.js';
import type { ExchangeOptions, Transport, TransportEvents } from './types.js';

/** Options of {@link DohTransport}. */
export interface DohTransportOptions {
  /** Address to connect to: IP or host name (no brackets). */
  host: string;
  port: number;
  /** Request path, e.g. `/dns-query` (may carry a query string). */
  path: string;
  /** TLS server name and HTTP `:authority`. Default: `host`. */
  servername?: string;
  /** `POST` (default; body is the query) or `GET` (`?dns=` base64url). RFC 8484 §4.1. */
  method?: 'POST' | 'GET';
  /** Label for errors and metrics. */
  url?: string;
  clock?: Clock;
  events?: TransportEvents;
  /** Trusted CA certificates (PEM). Default: Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Verify the certificate. Default true. */
  rejectUnauthorized?: boolean;
  /** The HTTP/2 session is closed after this many ms without streams. Default 30 000. */
  idleTimeout?: number;
  /** TCP connect + TLS handshake must finish within this many ms. Default 2000. */
  connectTimeout?: number;
  /** Largest response body accepted, in bytes. Default 65 535 (the DNS message maximum). */
  maxResponseSize?: number;
  /** Streams open at once, further capped by the server's SETTINGS_MAX_CONCURRENT_STREAMS. Default 100 (1–1000). */
  maxStreams?: number;
  /** Queries waiting for a stream; beyond it an exchange fails with `QUEUE_FULL`. Default 1024. */
  maxQueue?: number;
}

const CONTENT_TYPE = 'application/dns-message';
/** RST_STREAM code REFUSED_STREAM: the server did not process the stream, a retry is safe (RFC 9113 §8.7). */
const REFUSED_STREAM = http2.constants.NGHTTP2_REFUSED_STREAM;

interface Request extends Queueable {
  readonly body: Buffer;
  stream: http2.ClientHttp2Stream | null;
  retried: boolean;
}

interface Session {
  readonly h2: http2.ClientHttp2Session;
  /** The server's SETTINGS arrived: its stream limit is known. */
  ready: boolean;
  active: number;
}

/**
 * DNS over HTTPS (RFC 8484) to one server over one reused HTTP/2 session;
 * each query is its own stream. Streams in flight are capped by
 * `maxStreams` and the server's SETTINGS_MAX_CONCURRENT_STREAMS (queries
 * wait for the server's SETTINGS before the first stream, then queue in a
 * bounded queue); a stream the server refuses (REFUSED_STREAM) is retried
 * once. Queries are sent with ID 0 for HTTP cacheability (§4.1) — the
 * caller's ID is restored on the reply. The reply must be status 200, type
 * `application/dns-message`, at most `maxResponseSize` bytes, and carry the
 * query's question. A session that fails, receives GOAWAY or idles out is
 * dropped and the next query opens a new one.
 */
export class DohTransport implements Transport {
  readonly protocol = 'https' as const;
  readonly url: string;
  readonly #o: DohTransportOptions;
  readonly #clock: Clock;
  readonly #authority: string;
  readonly #method: 'POST' | 'GET';
  readonly #maxResponse: number;
  readonly #maxStreams: number;
  readonly #maxQueue: number;
  #session: Session | null = null;
  readonly #sessions = new Set<Session>();
  readonly #queue: Request[] = [];
  readonly #inflight = new Set<Request>();
  #closed = false;
  /** Sessions opened since creation (for tests and stats). */
  sessionsOpened = 0;

  constructor(options: DohTransportOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#method = options.method ?? 'POST';
    this.#maxResponse = options.maxResponseSize ?? 65535;
    this.#maxStreams = options.maxStreams ?? 100;
    this.#maxQueue = options.maxQueue ?? 1024;
    const name = options.servername ?? options.host;
    const hostPart = name.includes(':') ? `[${name}]` : name;
    this.#authority = options.port === 443 ? `https://${hostPart}` : `https://${hostPart}:${options.port}`;
    this.url = options.url ?? `${this.#authority}${options.path}`;
  }

  #getSession(): Session {
    const s = this.#session;
    if (s !== null && !s.h2.closed && !s.h2.destroyed) return s;
    const o = this.#o;
    const servername = o.servername ?? (net.isIP(o.host) ? undefined : o.host);
    const h2 = http2.connect(this.#authority, {
      createConnection: () =>
        tls.connect({
          host: o.host,
          port: o.port,
          servername,
          ca: o.ca,
          rejectUnauthorized: o.rejectUnauthorized ?? true,
          ALPNProtocols: ['h2'],
          // Node checks against `servername` when given, else against `host`; an
          // explicit `checkServerIdentity: undefined` trips an internal assertion.
          ...(servername ? { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(servername, cert) } : {}),
        }),
    });
    const session: Session = { h2, ready: false, active: 0 };
    this.sessionsOpened++;
    this.#session = session;
    this.#sessions.add(session);
    let lastError: Error | undefined;
    const forget = () => {
      if (this.#session === session) this.#session = null;
    };
    const connectTimeout = o.connectTimeout ?? 2000;
    let connectTimer: ClockTimer | undefined = this.#clock.setTimeout(() => {
      connectTimer = undefined;
      h2.destroy(new Error(`TLS handshake not done within ${connectTimeout} ms`));
    }, connectTimeout);
    h2.once('remoteSettings', () => {
      if (connectTimer !== undefined) this.#clock.clearTimeout(connectTimer);
      connectTimer = undefined;
      session.ready = true;
      this.#drain();
    });
    h2.on('error', (err) => {
      lastError = err;
      forget();
    });
    h2.on('goaway', forget);
    h2.once('close', () => {
      if (connectTimer !== undefined) this.#clock.clearTimeout(connectTimer);
      forget();
      this.#sessions.delete(session);
      if (!session.ready) {
        // Never got going (refused, handshake or certificate failure): fail the
        // waiting queries rather than opening session after session for them.
        const reason = lastError ? ((lastError as NodeJS.ErrnoException).code ?? lastError.message) : 'session closed before SETTINGS';
        const err = new UpstreamError('NETWORK', reason, this.url, { cause: lastError });
        for (const req of [...this.#queue]) this.#fail(req, err);
      } else this.#drain();
    });
    h2.setTimeout(o.idleTimeout ?? 30_000, () => {
      forget();
      h2.close();
    });
    h2.unref();
    return session;
  }

  /** Streams the session may open now. */
  #room(s: Session): boolean {
    if (!s.ready) return false;
    const remote = s.h2.remoteSettings.maxConcurrentStreams ?? this.#maxStreams;
    return s.active < Math.min(this.#maxStreams, remote);
  }

  exchange(query: Buffer, options: ExchangeOptions): Promise<Buffer> {
    const qEnd = questionEnd(query);
    const refused = refusal(this.#closed, query, qEnd, options, this.url);
    if (refused !== null) return Promise.reject(refused);
    const body = Buffer.allocUnsafe(query.length);
    query.copy(body);
    setId(body, 0);
    return new Promise<Buffer>((resolve, reject) => {
      const req: Request = {
        body,
        qEnd,
        origId: getId(query),
        resolve,
        reject,
        timer: undefined,
        signal: undefined,
        onAbort: undefined,
        stream: null,
        queued: false,
        retried: false,
        done: false,
      };
      arm(req, options, this.#clock, this.url, (err) => this.#fail(req, err));
      this.#dispatch(req);
    });
  }

  #dispatch(req: Request): void {
    if (req.done) return;
    let session: Session;
    try {
      session = this.#getSession();
    } catch (err) {
      this.#fail(req, new UpstreamError('NETWORK', `cannot open session: ${(err as Error).message}`, this.url, { cause: err }));
      return;
    }
    if (this.#room(session)) this.#start(session, req);
    else if (this.#queue.length >= this.#maxQueue)
      this.#fail(req, new UpstreamError('QUEUE_FULL', `more than ${this.#maxQueue} queries waiting for a stream`, this.url));
    else {
      req.queued = true;
      this.#queue.push(req);
    }
  }

  #drain(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const s = this.#getSession();
      if (!this.#room(s)) return;
      const req = this.#queue.shift()!;
      req.queued = false;
      this.#start(s, req);
    }
  }

  #start(session: Session, req: Request): void {
    let stream: http2.ClientHttp2Stream;
    const path = this.#o.path;
    try {
      const headers: http2.OutgoingHttpHeaders =
        this.#method === 'POST'
          ? { ':method': 'POST', ':path': path, 'content-type': CONTENT_TYPE, accept: CONTENT_TYPE, 'content-length': req.body.length }
          : { ':method': 'GET', ':path': `${path}${path.includes('?') ? '&' : '?'}dns=${req.body.toString('base64url')}`, accept: CONTENT_TYPE };
      stream = session.h2.request(headers, { endStream: this.#method === 'GET' });
    } catch (err) {
      // e.g. ERR_HTTP2_OUT_OF_STREAMS on a session that has used all stream IDs.
      if (this.#session === session) this.#session = null;
      this.#fail(
        req,
        new UpstreamError('NETWORK', `request failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, this.url, { cause: err }),
      );
      return;
    }
    session.active++;
    req.stream = stream;
    this.#inflight.add(req);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      session.active--;
      this.#inflight.delete(req);
      if (req.stream === stream) req.stream = null;
      if (this.#queue.length > 0) this.#drain();
    };
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('response', (h) => {
      const status = Number(h[':status']);
      const type = String(h['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase();
      if (status !== 200) this.#fail(req, new UpstreamError('BAD_RESPONSE', `HTTP status ${status}`, this.url));
      else if (type !== CONTENT_TYPE)
        this.#fail(req, new UpstreamError('BAD_RESPONSE', `content-type ${type || '(none)'}, expected ${CONTENT_TYPE}`, this.url));
    });
    stream.on('data', (chunk: Buffer) => {
      if (req.done || req.stream !== stream) return;
      size += chunk.length;
      if (size > this.#maxResponse) this.#fail(req, new UpstreamError('BAD_RESPONSE', `response body over ${this.#maxResponse} bytes`, this.url));
      else chunks.push(chunk);
    });
    stream.on('end', () => {
      if (req.done || req.stream !== stream) return;
      const reply = chunks.length === 1 ? Buffer.from(chunks[0]!) : Buffer.concat(chunks, size);
      if (reply.length < 12 || !isResponse(reply) || getId(reply) !== 0 || !sameQuestion(req.body, req.qEnd, reply)) {
        this.#fail(req, new UpstreamError('BAD_RESPONSE', 'reply is not a response to the query (ID, QR or question differ)', this.url));
        return;
      }
      release();
      this.#finish(req);
      setId(reply, req.origId);
      req.resolve(reply);
    });
    stream.on('error', () => {
      // Reported on 'close' with the RST code.
    });
    stream.on('close', () => {
      release();
      if (req.done) return;
      if (stream.rstCode === REFUSED_STREAM && !req.retried && !this.#closed) {
        // Not processed by the server (over its stream limit): safe to send again.
        req.retried = true;
        this.#dispatch(req);
        return;
      }
      this.#fail(req, new UpstreamError('NETWORK', `stream closed (code ${stream.rstCode ?? 'none'}) before a reply`, this.url));
    });
    if (this.#method === 'POST') stream.end(req.body);
  }

  #fail(req: Request, err: Error): void {
    if (req.done) return;
    const stream = req.stream;
    this.#finish(req);
    if (stream !== null && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    req.reject(err);
  }

  #finish(req: Request): void {
    settle(req, this.#clock, this.#queue);
  }

  /** 1 while the transport holds a session it would reuse, else 0 (it opens one on the next exchange). */
  get openSessions(): number {
    const s = this.#session;
    return s !== null && !s.h2.closed && !s.h2.destroyed ? 1 : 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = new UpstreamError('CLOSED', 'transport closed', this.url);
    for (const req of [...this.#queue, ...this.#inflight]) this.#fail(req, err);
    for (const s of this.#sessions) s.h2.destroy();
    this.#sessions.clear();
    this.#session = null;
  }
}
