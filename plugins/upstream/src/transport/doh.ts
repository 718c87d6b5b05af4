import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { type Clock, type ClockTimer, systemClock } from '@heimdall/core';
import { UpstreamError } from '../errors.js';
import { getId, isResponse, questionEnd, sameQuestion, setId } from '../wire.js';
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
}

const CONTENT_TYPE = 'application/dns-message';

/**
 * DNS over HTTPS (RFC 8484) to one server over one reused HTTP/2 session;
 * each query is its own stream, so any number are multiplexed (bounded by the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS). Queries are sent with ID 0 for
 * HTTP cacheability (§4.1) — the caller's ID is restored on the reply. The
 * reply must be status 200, type `application/dns-message`, at most
 * `maxResponseSize` bytes, and carry the query's question. A session that
 * fails, receives GOAWAY or idles out is dropped and the next query opens a
 * new one.
 */
export class DohTransport implements Transport {
  readonly protocol = 'https' as const;
  readonly url: string;
  readonly #o: DohTransportOptions;
  readonly #clock: Clock;
  readonly #authority: string;
  readonly #method: 'POST' | 'GET';
  readonly #maxResponse: number;
  #session: http2.ClientHttp2Session | null = null;
  readonly #sessions = new Set<http2.ClientHttp2Session>();
  readonly #streams = new Set<{ fail(err: Error): void }>();
  #closed = false;
  /** Sessions opened since creation (for tests and stats). */
  sessionsOpened = 0;

  constructor(options: DohTransportOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#method = options.method ?? 'POST';
    this.#maxResponse = options.maxResponseSize ?? 65535;
    const name = options.servername ?? options.host;
    const hostPart = name.includes(':') ? `[${name}]` : name;
    this.#authority = options.port === 443 ? `https://${hostPart}` : `https://${hostPart}:${options.port}`;
    this.url = options.url ?? `${this.#authority}${options.path}`;
  }

  #getSession(): http2.ClientHttp2Session {
    const s = this.#session;
    if (s !== null && !s.closed && !s.destroyed) return s;
    const o = this.#o;
    const servername = o.servername ?? (net.isIP(o.host) ? undefined : o.host);
    const session = http2.connect(this.#authority, {
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
    this.sessionsOpened++;
    this.#session = session;
    this.#sessions.add(session);
    const forget = () => {
      if (this.#session === session) this.#session = null;
    };
    const connectTimeout = o.connectTimeout ?? 2000;
    let connectTimer: ClockTimer | undefined = this.#clock.setTimeout(() => {
      connectTimer = undefined;
      session.destroy(new Error(`TLS handshake not done within ${connectTimeout} ms`));
    }, connectTimeout);
    session.once('connect', () => {
      if (connectTimer !== undefined) this.#clock.clearTimeout(connectTimer);
      connectTimer = undefined;
    });
    session.on('error', forget);
    session.on('goaway', forget);
    session.once('close', () => {
      if (connectTimer !== undefined) this.#clock.clearTimeout(connectTimer);
      forget();
      this.#sessions.delete(session);
    });
    session.setTimeout(o.idleTimeout ?? 30_000, () => {
      forget();
      session.close();
    });
    session.unref();
    return session;
  }

  exchange(query: Buffer, options: ExchangeOptions): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new UpstreamError('CLOSED', 'transport closed', this.url));
    const qEnd = questionEnd(query);
    if (qEnd < 0) return Promise.reject(new UpstreamError('BAD_QUERY', 'query has no valid single question', this.url));
    if (options.signal?.aborted) return Promise.reject(new UpstreamError('ABORTED', 'aborted', this.url));
    const origId = getId(query);
    const body = Buffer.allocUnsafe(query.length);
    query.copy(body);
    setId(body, 0);
    return new Promise<Buffer>((resolve, reject) => {
      let session: http2.ClientHttp2Session;
      let stream: http2.ClientHttp2Stream;
      try {
        session = this.#getSession();
        const headers: http2.OutgoingHttpHeaders =
          this.#method === 'POST'
            ? { ':method': 'POST', ':path': this.#o.path, 'content-type': CONTENT_TYPE, accept: CONTENT_TYPE, 'content-length': body.length }
            : { ':method': 'GET', ':path': `${this.#o.path}${this.#o.path.includes('?') ? '&' : '?'}dns=${body.toString('base64url')}`, accept: CONTENT_TYPE };
        stream = session.request(headers, { endStream: this.#method === 'GET' });
      } catch (err) {
        // e.g. ERR_HTTP2_OUT_OF_STREAMS on a session that has used all stream IDs.
        this.#session = null;
        reject(new UpstreamError('NETWORK', `request failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, this.url, { cause: err }));
        return;
      }
      let done = false;
      const chunks: Buffer[] = [];
      let size = 0;
      let status = 0;
      const wait = Math.max(0, options.deadline - this.#clock.now());
      const entry = {
        fail: (err: Error) => {
          if (done) return;
          finish();
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(err);
        },
      };
      const timer = this.#clock.setTimeout(() => entry.fail(new UpstreamError('TIMEOUT', `no reply within ${Math.round(wait)} ms`, this.url)), wait);
      const onAbort = () => entry.fail(new UpstreamError('ABORTED', 'aborted', this.url));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#streams.add(entry);
      const finish = () => {
        done = true;
        this.#clock.clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#streams.delete(entry);
      };
      stream.on('response', (h) => {
        status = Number(h[':status']);
        const type = String(h['content-type'] ?? '')
          .split(';')[0]!
          .trim()
          .toLowerCase();
        if (status !== 200) entry.fail(new UpstreamError('BAD_RESPONSE', `HTTP status ${status}`, this.url));
        else if (type !== CONTENT_TYPE) entry.fail(new UpstreamError('BAD_RESPONSE', `content-type ${type || '(none)'}, expected ${CONTENT_TYPE}`, this.url));
      });
      stream.on('data', (chunk: Buffer) => {
        if (done) return;
        size += chunk.length;
        if (size > this.#maxResponse) entry.fail(new UpstreamError('BAD_RESPONSE', `response body over ${this.#maxResponse} bytes`, this.url));
        else chunks.push(chunk);
      });
      stream.on('end', () => {
        if (done) return;
        const reply = chunks.length === 1 ? Buffer.from(chunks[0]!) : Buffer.concat(chunks, size);
        if (reply.length < 12 || !isResponse(reply) || getId(reply) !== 0 || !sameQuestion(body, qEnd, reply)) {
          entry.fail(new UpstreamError('BAD_RESPONSE', 'reply is not a response to the query (ID, QR or question differ)', this.url));
          return;
        }
        finish();
        setId(reply, origId);
        resolve(reply);
      });
      stream.on('error', (err) => {
        entry.fail(new UpstreamError('NETWORK', `${(err as NodeJS.ErrnoException).code ?? err.message}`, this.url, { cause: err }));
      });
      stream.on('close', () => {
        if (!done) entry.fail(new UpstreamError('NETWORK', `stream closed (code ${stream.rstCode ?? 'none'}) before a reply`, this.url));
      });
      if (this.#method === 'POST') stream.end(body);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = new UpstreamError('CLOSED', 'transport closed', this.url);
    for (const s of [...this.#streams]) s.fail(err);
    for (const s of this.#sessions) s.destroy();
    this.#sessions.clear();
    this.#session = null;
  }
}

