/**
 * DNS over HTTPS (RFC 8484) on `node:http2`, HTTP/1.1 allowed (ALPN `h2`,
 * `http/1.1`):
 *
 * - `GET <path>?dns=<base64url, no padding>` and `POST <path>` with
 *   `Content-Type: application/dns-message`; `<path>/<client-id>` names the
 *   client (`ClientInfo.clientId`: letters, digits, `.`, `_`, `-`, ≤ 64).
 * - `200` with `Cache-Control: max-age=<smallest TTL of the answer>` (of the
 *   authority section for a negative answer; 0 for errors), `400` for a bad
 *   `dns` parameter or a message that does not parse (QDCOUNT other than
 *   1, a question past the end), `403` for a query the chain dropped, `404`
 *   for another path, `405` for another method, `413` past 65 536 octets,
 *   `415` for another content type, `431` for an HTTP/1.1 request head
 *   past 128 KiB. Never a 500: every failure is a 4xx or a closed stream,
 *   never a crash.
 * - With `json: true`, `GET <path>?name=&type=` answers the JSON form
 *   (`application/dns-json`, as Cloudflare and Google serve it).
 * - `Forwarded` / `X-Forwarded-For` name the client only when the
 *   connection comes from `trustedProxies` (after PROXY v2, when on); a
 *   trusted proxy that names none leaves the client unknown (empty
 *   address), never the proxy's own address.
 * - Responses are padded (RFC 7830/8467); RFC 8484 §5.3 forbids
 *   edns-tcp-keepalive here, so it is not answered.
 *
 * The listening socket, the PROXY v2 preamble and the connection limits are
 * the stream listener's (`stream.ts`); sockets are handed to an
 * `Http2SecureServer` that never listens itself. Certificates reload with
 * `setSecureContext` (open connections keep theirs).
 *
 * HTTP/2 is served through node:http2's core API (`'stream'` events,
 * `stream.respond()` + `stream.end()`): no compatibility request/response
 * pair per query, constant header objects built once, and no per-request
 * closures on the synchronous (cache hit) path. The compatibility API
 * (`'request'`) serves HTTP/1.1 connections only. Both go through one
 * router, so statuses and headers are the same on either.
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { Readable } from 'node:stream';
import type tls from 'node:tls';
import { decode, encode, type ResourceRecord, typeFromString } from '../packet/index.js';
import type { Static } from '../plugin/options.js';
import type { HandshakeFailure } from '../pipeline/metrics.js';
import type { ClientInfo } from '../pipeline/types.js';
import { ipFamily } from '../wire/ip.js';
import { trySkipName } from '../wire/name.js';
import { CertificateFiles, CertifiedStreamServer, parseCertifiedOptions } from './certs.js';
import { addResponseOptions, HAS_PADDING, queryOptions, RESPONSE_PAD_BLOCK } from './edns-options.js';
import { AddressSet } from './proxy.js';
import { httpsListenSchema } from './schema.js';
import type { TrackedConnection } from './stream.js';
import { handshakeFailure } from './tls.js';
import type { HttpsListenOptions, TransportDeps } from './types.js';

/** A DoH listener's validated settings, defaults filled in. */
export type HttpsSettings = Static<typeof httpsListenSchema>;

/** Largest request body (and decoded `dns` parameter) accepted: RFC 8484 messages are at most 65 535 octets. */
export const DOH_MAX_BODY = 65_536;

/**
 * Largest HTTP/1.1 request head (request line + headers) read, and the
 * HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE` we announce: room for a GET whose
 * `dns` parameter is past {@link DOH_MAX_BODY} (87 382 base64url octets), so
 * that request gets its 413 rather than a reset. A longer HTTP/1.1 head is
 * answered 431. (HTTP/2 implementations, nghttp2 among them, refuse a single
 * header field over 64 KiB themselves: over HTTP/2 a GET carries at most
 * ~48 KiB of message; larger ones go by POST.)
 */
export const DOH_MAX_HEAD = 128 * 1024;

const DNS_MESSAGE = 'application/dns-message';
const DNS_JSON = 'application/dns-json';
const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const NO_ERROR = http2.constants.NGHTTP2_NO_ERROR;
/** The connection of a TLS socket and of an HTTP/2 session. */
const kConnection = Symbol('heimdall.dohConnection');
/** The body being read of a POST request (on its HTTP/2 stream or HTTP/1.1 request). */
const kBody = Symbol('heimdall.dohBody');

type H2Stream = http2.ServerHttp2Stream;
/** Where a response goes: an HTTP/2 stream (core API) or an HTTP/1.1 response. */
type Target = H2Stream | http.ServerResponse;
type Tagged<T> = T & { [kConnection]?: HttpsConnection };
type BodySource = Readable & { [kBody]?: PostBody };

const isH2 = (t: Target): t is H2Stream => typeof (t as H2Stream).respond === 'function';
const ignore = (): void => {};

/** A fixed response (errors): status, body, and its HTTP/2 and HTTP/1.1 header objects, built once. */
interface Fixed {
  readonly status: number;
  readonly body: Buffer;
  readonly h2: Readonly<http2.OutgoingHttpHeaders>;
  readonly h1: Readonly<http.OutgoingHttpHeaders>;
}

function fixed(status: number, text: string, extra: Record<string, string> = {}): Fixed {
  const body = Buffer.from(text);
  const h1 = Object.freeze({ 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-store', ...extra });
  return Object.freeze({ status, body, h1, h2: Object.freeze({ ':status': status, ...h1 }) });
}

const NOT_FOUND = fixed(404, 'not found\n');
const NOT_ALLOWED = fixed(405, 'method not allowed\n', { allow: 'GET, POST' });
const EXPECTATION_FAILED = fixed(417, 'expectation failed\n');
const MISSING_DNS = fixed(400, 'missing dns parameter\n');
const BAD_DNS = fixed(400, 'bad dns parameter (base64url without padding)\n');
const DNS_TOO_LARGE = fixed(413, 'dns parameter too large\n');
const BAD_MEDIA_TYPE = fixed(415, `content type must be ${DNS_MESSAGE}\n`);
const BODY_TOO_LARGE = fixed(413, 'request body too large\n');
const NOT_A_QUERY = fixed(400, 'not a DNS query\n');
const QUERY_FAILED = fixed(400, 'query failed\n');
const DROPPED = fixed(403, 'query dropped\n');
const BAD_TYPE = fixed(400, 'bad type parameter\n');
const BAD_NAME = fixed(400, 'bad name parameter\n');
const UNDECODABLE = fixed(400, 'answer could not be decoded\n');
const BAD_REQUEST = fixed(400, 'bad request\n');
const BAD_MESSAGE = fixed(400, 'malformed DNS message (one question expected)\n');

/** Raw HTTP/1.1 answers to a request the parser refused (`clientError`): no request/response pair exists. */
function rawReply(status: number, reason: string): Buffer {
  const body = `${reason.toLowerCase()}\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
  );
}
const RAW_HEAD_TOO_LARGE = rawReply(431, 'Request Header Fields Too Large');
const RAW_TIMEOUT = rawReply(408, 'Request Timeout');
const RAW_BAD_REQUEST = rawReply(400, 'Bad Request');

/**
 * Whether `msg` is a DNS query we can parse (RFC 8484 §4.2.1: otherwise
 * 400): a header with QR=0, QDCOUNT 1, and its question (name, type,
 * class) inside the message.
 */
export function isParsableQuery(msg: Buffer): boolean {
  if (msg.length < 12 || (msg[2]! & 0x80) !== 0 || msg[4] !== 0 || msg[5] !== 1) return false;
  const end = trySkipName(msg, 12);
  return end > 0 && end + 4 <= msg.length;
}
const CONTINUE = Object.freeze({ ':status': 100 });
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });
const NO_TRAILERS = Object.freeze({});

/**
 * Ends a response with an empty trailer block. Used after a POST body was
 * read to its end: node:http2 then destroys the stream as soon as both
 * sides have ended, before our DATA write completes, and that late
 * completion builds an ERR_STREAM_DESTROYED error (a stack trace per
 * query, a fifth of the server's CPU in the profile). Holding the end of
 * the stream for the trailers lets the write complete first, as the
 * compatibility API does.
 */
function sendNoTrailers(this: H2Stream): void {
  try {
    this.sendTrailers(NO_TRAILERS);
  } catch {
    // The stream went away meanwhile.
  }
}

/** `max-age=<n>` strings, made once per value below an hour. */
const maxAgeText: string[] = [];
function maxAge(age: number): string {
  if (age >= 3600) return `max-age=${age}`;
  return (maxAgeText[age] ??= `max-age=${age}`);
}

/** The state of a POST body being read; its handlers are shared functions (no closures per request). */
class PostBody {
  chunks: Buffer[] = [];
  size = 0;
  done = false;

  constructor(
    readonly server: HttpsServer,
    readonly target: Target,
    readonly client: ClientInfo,
    readonly conn: HttpsConnection | undefined,
  ) {}

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.conn?.finish();
  }
}

function onBodyData(this: BodySource, chunk: Buffer): void {
  const b = this[kBody];
  if (b === undefined || b.done) return;
  b.size += chunk.length;
  if (b.size > DOH_MAX_BODY) {
    b.finish();
    b.chunks = [];
    b.server.reply(b.target, BODY_TOO_LARGE);
    return;
  }
  b.chunks.push(chunk);
}

function onBodyEnd(this: BodySource): void {
  const b = this[kBody];
  if (b === undefined || b.done) return;
  b.finish();
  const msg = b.chunks.length === 1 ? b.chunks[0]! : Buffer.concat(b.chunks, b.size);
  b.chunks = [];
  b.server.answer(msg, b.target, b.client, b.conn);
}

function onBodyClose(this: BodySource): void {
  this[kBody]?.finish();
}

/** A DNS-over-HTTPS listener. */
export class HttpsServer extends CertifiedStreamServer<HttpsConnection> {
  readonly settings: HttpsSettings;
  readonly certificates: CertificateFiles;
  private readonly h2: http2.Http2SecureServer;
  private readonly path: string;
  private readonly proxies: AddressSet;
  /** Open connections by `address|port` of the peer, to find a TLS socket's connection. */
  private readonly byPeer = new Map<string, HttpsConnection>();
  /** `heimdall_doh_responses_total{status}` (index = status). */
  private readonly statusCounts: number[];
  /** `heimdall_tls_handshake_failures_total{transport="https"}`. */
  private readonly failures: Record<HandshakeFailure, number>;

  constructor(options: HttpsListenOptions, deps: TransportDeps, path = 'listen') {
    const { settings, files } = parseCertifiedOptions(httpsListenSchema, 'https', options, path, 'an https listener');
    super('https', settings, deps, path);
    this.settings = settings;
    this.statusCounts = deps.metrics.dohResponses;
    this.failures = deps.metrics.tlsHandshakeFailures.https;
    this.path = settings.path.length > 1 && settings.path.endsWith('/') ? settings.path.slice(0, -1) : settings.path;
    this.proxies = new AddressSet(settings.trustedProxies, `${path}.trustedProxies`);
    this.certificates = new CertificateFiles(files.cert, files.key, files.fields, deps.logger, (pair) => {
      this.h2.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
    });
    const pair = this.certificates.pair;
    const h2 = http2.createSecureServer({
      cert: pair.cert,
      key: pair.key,
      minVersion: 'TLSv1.2',
      allowHTTP1: true,
      handshakeTimeout: settings.handshakeTimeoutMs,
      settings: { maxConcurrentStreams: settings.maxConcurrentStreams, maxHeaderListSize: DOH_MAX_HEAD },
    });
    this.h2 = h2;
    // HTTP/1.1 connections: node:http reads `maxHeaderSize` off the server (default 16 KiB, which reset a long GET).
    (h2 as unknown as { maxHeaderSize: number }).maxHeaderSize = DOH_MAX_HEAD;
    // node:http2 installs its compatibility layer (a request/response pair
    // per stream) when a 'request' listener is added; its only 'newListener'
    // listener does that. Dropping it keeps HTTP/2 on the core API
    // (onStream) while 'request' still serves HTTP/1.1 connections.
    h2.removeAllListeners('newListener');
    h2.on('stream', this.onStream);
    h2.on('request', this.onHttp1Request);
    // Before node:http2's own listener (which creates the session): the session event then finds the connection.
    h2.prependListener('secureConnection', (s: Tagged<tls.TLSSocket>) => {
      const conn = this.byPeer.get(`${s.remoteAddress}|${s.remotePort}`);
      if (conn === undefined) return;
      s[kConnection] = conn;
      conn.secured(s);
    });
    h2.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      this.failures[handshakeFailure(err)]++;
      s.destroy();
    });
    h2.on('session', (session: Tagged<http2.ServerHttp2Session>) => {
      session.on('error', ignore);
      const conn = (session.socket as Tagged<tls.TLSSocket>)[kConnection];
      if (conn === undefined) return;
      session[kConnection] = conn;
      conn.session = session;
    });
    h2.on('sessionError', ignore);
    h2.on('clientError', this.onClientError);
    h2.on('unknownProtocol', (s: tls.TLSSocket) => s.destroy());
    // Idle connections are closed by HttpsConnection's own timer.
    h2.setTimeout(0);
  }

  protected open(socket: net.Socket, client: ClientInfo): HttpsConnection {
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    const conn = new HttpsConnection(this, socket, client, () => {
      if (this.byPeer.get(key) === conn) this.byPeer.delete(key);
    });
    this.byPeer.set(key, conn);
    this.h2.emit('connection', socket);
    return conn;
  }

  /**
   * An HTTP/1.1 request the parser refused: 431 for a head past
   * {@link DOH_MAX_HEAD}, 408 for a request that came too slowly, else 400;
   * then the connection closes (what follows cannot be framed; the peer
   * gets a second to read the answer). A peer that went away is just
   * closed.
   */
  private readonly onClientError = (err: Error & { code?: string }, s: net.Socket): void => {
    const code = err.code ?? '';
    if (!s.writable || (s as net.Socket & { _httpMessage?: unknown })._httpMessage || code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE') {
      // Nothing can be written, the peer is gone, or a response is already under way on this connection.
      s.destroy();
      return;
    }
    const [status, raw] =
      code === 'HPE_HEADER_OVERFLOW' ? [431, RAW_HEAD_TOO_LARGE] : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, RAW_TIMEOUT] : [400, RAW_BAD_REQUEST];
    this.statusCounts[status]!++;
    s.end(raw);
    const t = setTimeout(() => s.destroy(), 1000);
    t.unref();
    s.once('close', () => clearTimeout(t));
  };

  /** An HTTP/2 request (core API). */
  private readonly onStream = (stream: H2Stream, headers: http2.IncomingHttpHeaders): void => {
    stream.on('error', ignore);
    const conn = (stream.session as Tagged<http2.ServerHttp2Session> | undefined)?.[kConnection];
    try {
      if (headers.expect !== undefined) {
        if (headers.expect !== '100-continue') {
          this.reply(stream, EXPECTATION_FAILED);
          return;
        }
        stream.additionalHeaders(CONTINUE);
      }
      const method = headers[':method'] ?? '';
      this.route(stream, stream, method, headers[':path'], headers, conn ?? null, stream);
    } catch (err) {
      this.deps.logger.warn({ err }, 'DoH request failed');
      this.reply(stream, BAD_REQUEST);
    }
  };

  /** An HTTP/1.1 request (compatibility API; HTTP/2 never comes here). */
  private readonly onHttp1Request = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    req.on('error', ignore);
    res.on('error', ignore);
    const conn = (req.socket as Tagged<net.Socket>)[kConnection];
    try {
      this.route(res, req, req.method ?? '', req.url, req.headers, conn ?? null, null);
    } catch (err) {
      this.deps.logger.warn({ err }, 'DoH request failed');
      this.reply(res, BAD_REQUEST);
    }
  };

  /**
   * Routes one request. `source` is where its body comes from (the stream
   * itself on HTTP/2); `h2` the HTTP/2 stream (null on HTTP/1.1), to find
   * the peer when no connection is known.
   */
  private route(
    t: Target,
    source: BodySource,
    method: string,
    url: string | undefined,
    headers: http.IncomingHttpHeaders,
    conn: HttpsConnection | null,
    h2: H2Stream | null,
  ): void {
    if (url === undefined) {
      // HTTP/2 CONNECT (no :path).
      this.reply(t, NOT_ALLOWED);
      return;
    }
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    let clientId: string | undefined;
    if (p !== this.path) {
      if (!p.startsWith(this.path) || p.charCodeAt(this.path.length) !== 47 /* / */) {
        this.reply(t, NOT_FOUND);
        return;
      }
      clientId = p.slice(this.path.length + 1);
      if (!CLIENT_ID.test(clientId)) {
        this.reply(t, NOT_FOUND);
        return;
      }
    }
    if (method !== 'GET' && method !== 'POST') {
      this.reply(t, NOT_ALLOWED);
      return;
    }
    const client = this.clientOf(headers, conn, clientId, t, h2);
    const c = conn ?? undefined;
    if (method === 'GET') {
      const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
      const dns = params.get('dns');
      if (dns === null) {
        if (this.settings.json && params.has('name')) {
          this.json(params, t, client, c);
          return;
        }
        this.reply(t, MISSING_DNS);
        return;
      }
      if (dns.length === 0 || !BASE64URL.test(dns)) {
        this.reply(t, BAD_DNS);
        return;
      }
      if (Math.floor((dns.length * 3) / 4) > DOH_MAX_BODY) {
        this.reply(t, DNS_TOO_LARGE);
        return;
      }
      this.answer(Buffer.from(dns, 'base64url'), t, client, c);
      return;
    }
    const type = headers['content-type'];
    if (type !== DNS_MESSAGE) {
      const mediaType = typeof type === 'string' ? type.split(';', 1)[0]!.trim().toLowerCase() : '';
      if (mediaType !== DNS_MESSAGE) {
        this.reply(t, BAD_MEDIA_TYPE);
        return;
      }
    }
    const declared = headers['content-length'];
    if (declared !== undefined && Number(declared) > DOH_MAX_BODY) {
      this.reply(t, BODY_TOO_LARGE);
      return;
    }
    c?.begin();
    source[kBody] = new PostBody(this, t, client, c);
    source.on('data', onBodyData);
    source.on('end', onBodyEnd);
    source.on('close', onBodyClose);
  }

  /**
   * The client of a request: the connection's, or the one a trusted proxy
   * names; with its client id. A trusted proxy that names no usable client
   * (no `Forwarded`/`X-Forwarded-For`, `for=_hidden`, `unknown`) makes the
   * client unknown (empty address): never the proxy's own (often loopback)
   * address, which would pass the default local-only acl for every
   * client on the internet. An unknown client matches only acl rules for
   * every client (`*`), so the default acl refuses it.
   */
  private clientOf(headers: http.IncomingHttpHeaders, conn: HttpsConnection | null, clientId: string | undefined, t: Target, h2: H2Stream | null): ClientInfo {
    let client = conn?.client ?? socketInfo(h2 !== null ? h2.session?.socket : (t as http.ServerResponse).socket);
    if (this.proxies.size > 0 && this.proxies.has(client.address)) {
      const named = forwardedClient(headers.forwarded, headers['x-forwarded-for'], this.proxies);
      if (named === null) client = { ...client, address: '', port: 0 };
      else if (named !== client.address) client = { ...client, address: named, port: 0, family: named.includes(':') ? 6 : 4 };
    }
    return clientId === undefined ? client : { ...client, clientId };
  }

  /** Answers a DNS message (GET parameter or POST body). @internal */
  answer(msg: Buffer, t: Target, client: ClientInfo, conn: HttpsConnection | undefined): void {
    // A query: a header, QR=0 (a response sent to us could start a loop).
    if (msg.length < 12 || (msg[2]! & 0x80) !== 0) {
      this.reply(t, NOT_A_QUERY);
      return;
    }
    // One question that parses (RFC 8484 §4.2.1: a message the server cannot parse is a 400, not a FORMERR in a 200).
    if (!isParsableQuery(msg)) {
      this.reply(t, BAD_MESSAGE);
      return;
    }
    const r = this.process(msg, client, t);
    if (r instanceof Promise) this.settle(r, t, conn, (resp) => this.send(msg, resp, t), true);
    else if (r !== undefined) this.send(msg, r, t);
  }

  /** Runs the chain on a query; a throw is logged and answered 400 (`undefined` then). */
  private process(query: Buffer, client: ClientInfo, t: Target): Buffer | null | Promise<Buffer | null> | undefined {
    try {
      return this.deps.handler.process(query, client);
    } catch (err) {
      this.deps.logger.error({ err }, 'query handler threw; DoH query refused');
      this.reply(t, QUERY_FAILED);
      return undefined;
    }
  }

  /** Waits for an asynchronous answer with the connection busy; a rejection is answered 400 (and logged when `log`). */
  private settle(r: Promise<Buffer | null>, t: Target, conn: HttpsConnection | undefined, done: (resp: Buffer | null) => void, log: boolean): void {
    conn?.begin();
    r.then(
      (resp) => {
        conn?.finish();
        done(resp);
      },
      (err) => {
        conn?.finish();
        if (log) this.deps.logger.error({ err }, 'query handler rejected; DoH query refused');
        this.reply(t, QUERY_FAILED);
      },
    );
  }

  private send(query: Buffer, response: Buffer | null, t: Target): void {
    if (response === null) {
      this.reply(t, DROPPED);
      return;
    }
    const padding = this.settings.padding;
    if (padding !== 'off' && (query[10] !== 0 || query[11] !== 0)) {
      const bits = queryOptions(query);
      if (bits !== 0 && (padding === 'always' || (bits & HAS_PADDING) !== 0)) response = addResponseOptions(response, -1, RESPONSE_PAD_BLOCK);
    }
    this.ok(t, DNS_MESSAGE, response, response.length, cacheAge(response));
  }

  /** Sends a 200 unless the request is gone or answered. */
  private ok(t: Target, contentType: string, body: Buffer | string, length: number, age: number): void {
    try {
      if (isH2(t)) {
        if (t.destroyed || t.closed || t.headersSent) return;
        const headers = { ':status': 200, 'content-type': contentType, 'content-length': length, 'cache-control': maxAge(age) };
        if (t.readableEnded) {
          // A POST whose body we read (see sendNoTrailers).
          t.on('wantTrailers', sendNoTrailers);
          t.respond(headers, WAIT_FOR_TRAILERS);
        } else t.respond(headers);
        t.end(body);
      } else {
        if (t.headersSent || t.writableEnded || t.destroyed) return;
        t.writeHead(200, { 'content-type': contentType, 'content-length': length, 'cache-control': maxAge(age) });
        t.end(body);
      }
      this.statusCounts[200]!++;
    } catch {
      // The stream went away meanwhile.
    }
  }

  /**
   * Sends a fixed (error) response unless one is already under way. On
   * HTTP/2, a request body not read to its end is then refused with
   * RST_STREAM(NO_ERROR) after the response (RFC 9113 §8.1), so the client
   * stops sending it. @internal
   */
  reply(t: Target, r: Fixed): void {
    try {
      if (isH2(t)) {
        if (t.destroyed || t.closed || t.headersSent) return;
        if (t.writableEnded) {
          t.respond(r.h2, { endStream: true }); // HEAD: no body
        } else {
          t.respond(r.h2);
          t.end(r.body);
        }
        if (!t.endAfterHeaders && !t.readableEnded) t.close(NO_ERROR);
      } else {
        if (t.headersSent || t.writableEnded || t.destroyed) return;
        t.writeHead(r.status, { ...r.h1 });
        t.end(r.body);
      }
      this.statusCounts[r.status]!++;
    } catch {
      // The stream went away meanwhile.
    }
  }

  /** The JSON API: `?name=&type=` (type a mnemonic or number, default A), `cd`, `do`. */
  private json(params: URLSearchParams, t: Target, client: ClientInfo, conn: HttpsConnection | undefined): void {
    const name = params.get('name')!;
    const typeText = params.get('type') ?? 'A';
    const type = /^\d{1,5}$/.test(typeText) ? Number(typeText) : typeFromString(typeText.toUpperCase());
    if (type === undefined || type > 65_535) {
      this.reply(t, BAD_TYPE);
      return;
    }
    const flag = (v: string | null) => v !== null && v !== '0' && v.toLowerCase() !== 'false';
    let query: Buffer;
    try {
      query = encode({
        id: 0,
        rd: true,
        cd: flag(params.get('cd')),
        questions: [{ name, type }],
        edns: { udpPayloadSize: 1232, dnssecOk: flag(params.get('do')) },
      });
    } catch {
      this.reply(t, BAD_NAME);
      return;
    }
    const done = (resp: Buffer | null) => {
      if (resp === null) {
        this.reply(t, DROPPED);
        return;
      }
      let body: string;
      try {
        body = JSON.stringify(toJson(resp));
      } catch {
        this.reply(t, UNDECODABLE);
        return;
      }
      this.ok(t, DNS_JSON, body, Buffer.byteLength(body), cacheAge(resp));
    };
    const r = this.process(query, client, t);
    if (r instanceof Promise) this.settle(r, t, conn, done, false);
    else if (r !== undefined) done(r);
  }
}

/** One DoH connection as the listener's table sees it: in-flight requests, idle timer. */
export class HttpsConnection implements TrackedConnection {
  private inFlight = 0;
  private lastActive = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private secure: tls.TLSSocket | null = null;
  /** The HTTP/2 session (absent for HTTP/1.1). */
  session: http2.ServerHttp2Session | null = null;

  constructor(
    private readonly server: HttpsServer,
    private readonly raw: net.Socket,
    readonly client: ClientInfo,
    private readonly forget: () => void,
  ) {
    raw.once('close', () => {
      this.closed = true;
      this.clearTimer();
      this.forget();
      server.release(this);
    });
    this.arm(server.settings.handshakeTimeoutMs + server.settings.idleTimeoutMs);
  }

  get idle(): boolean {
    return this.closed || this.inFlight === 0;
  }

  /** The TLS handshake completed. */
  secured(s: tls.TLSSocket): void {
    this.secure = s;
  }

  begin(): void {
    this.inFlight++;
    this.lastActive = performance.now();
    this.server.touch(this);
  }

  finish(): void {
    this.inFlight--;
    this.lastActive = performance.now();
    this.server.touch(this);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.onTimer(), ms);
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = null;
    if (this.closed) return;
    const idleMs = this.server.settings.idleTimeoutMs;
    const quiet = performance.now() - this.lastActive;
    if (this.secure === null) {
      // No handshake by now (the TLS layer's own timeout should have fired first).
      this.destroy();
      return;
    }
    if (this.inFlight === 0 && quiet >= idleMs) {
      this.stopReading();
      return;
    }
    this.arm(Math.max(1, Math.ceil(idleMs - (this.inFlight === 0 ? quiet : 0))));
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  destroy(): void {
    this.closed = true;
    this.clearTimer();
    this.raw.destroy();
    this.server.release(this);
  }

  end(): void {
    this.stopReading();
  }

  /** Graceful close: GOAWAY for HTTP/2 (streams in progress finish), else end the socket; destroyed if it lingers. */
  stopReading(): void {
    if (this.raw.destroyed) return;
    try {
      if (this.session !== null && !this.session.closed) this.session.close();
      else if (this.secure !== null) this.secure.end();
      else this.raw.destroy();
    } catch {
      this.raw.destroy();
    }
    const t = setTimeout(() => this.raw.destroy(), 2000);
    t.unref();
    this.raw.once('close', () => clearTimeout(t));
  }
}

function socketInfo(s: net.Socket | null | undefined): ClientInfo {
  const address = s?.remoteAddress ?? '';
  const v4 = address.startsWith('::ffff:') && address.includes('.');
  return { address: v4 ? address.slice(7) : address, port: s?.remotePort ?? 0, family: address.includes(':') && !v4 ? 6 : 4, transport: 'https' };
}

/**
 * The address a trusted proxy chain names: from `Forwarded` (RFC 7239
 * `for=`) when present, else `X-Forwarded-For`; read right to left, skipping
 * our trusted proxies; the first other address is the client. Null when the
 * headers name none (or an obfuscated/unknown node).
 */
export function forwardedClient(forwarded: string | string[] | undefined, xff: string | string[] | undefined, trusted: AddressSet): string | null {
  let hops: string[] = [];
  if (forwarded !== undefined) {
    const text = Array.isArray(forwarded) ? forwarded.join(',') : forwarded;
    for (const element of text.split(',')) {
      for (const pair of element.split(';')) {
        const eq = pair.indexOf('=');
        if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
        let v = pair.slice(eq + 1).trim();
        if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
        hops.push(v);
      }
    }
  } else if (xff !== undefined) {
    hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((s) => s.trim());
  }
  for (let i = hops.length - 1; i >= 0; i--) {
    const address = hostOf(hops[i]!);
    if (address === null) return null;
    if (!trusted.has(address) || i === 0) return address;
  }
  return null;
}

/** `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:80`, `2001:db8::1` → the address; null otherwise. */
function hostOf(v: string): string | null {
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    const a = end > 0 ? v.slice(1, end) : '';
    return ipFamily(a) === 6 ? a : null;
  }
  if (ipFamily(v) !== 0) return v.startsWith('::ffff:') && v.includes('.') ? v.slice(7) : v;
  const colon = v.lastIndexOf(':');
  if (colon > 0 && v.indexOf(':') === colon && ipFamily(v.slice(0, colon)) === 4) return v.slice(0, colon);
  return null;
}

/**
 * `Cache-Control: max-age` of a response (RFC 8484 §5.1): the smallest TTL of
 * its answer section, else of its authority section (negative answers,
 * RFC 2308), 0 for errors other than NXDOMAIN and for answers without
 * records. Never throws.
 */
export function cacheAge(response: Buffer): number {
  if (response.length < 12) return 0;
  const rcode = response[3]! & 0x0f;
  if (rcode !== 0 && rcode !== 3) return 0;
  const an = response.readUInt16BE(6);
  const ns = response.readUInt16BE(8);
  let p = 12;
  for (let i = response.readUInt16BE(4); i > 0; i--) {
    p = trySkipName(response, p);
    if (p < 0) return 0;
    p += 4;
  }
  let min = -1;
  for (let i = 0; i < an + ns; i++) {
    if (i === an && min >= 0) break; // answers found: the authority section does not count
    const name = trySkipName(response, p);
    if (name < 0 || name + 10 > response.length) return 0;
    const ttl = response.readUInt32BE(name + 4);
    if (min < 0 || ttl < min) min = ttl;
    p = name + 10 + response.readUInt16BE(name + 8);
  }
  return min < 0 ? 0 : Math.min(min, 0x7fffffff);
}

/** The JSON API's form of a response (Cloudflare/Google `application/dns-json`). */
function toJson(response: Buffer): Record<string, unknown> {
  const m = decode(response);
  const rr = (r: ResourceRecord) => ({ name: r.name, type: r.type, TTL: r.ttl, data: rdataText(r.data) });
  const out: Record<string, unknown> = {
    Status: m.rcode,
    TC: m.tc,
    RD: m.rd,
    RA: m.ra,
    AD: m.ad,
    CD: m.cd,
    Question: m.questions.map((q) => ({ name: q.name, type: q.type })),
  };
  if (m.answers.length > 0) out.Answer = m.answers.map(rr);
  if (m.authorities.length > 0) out.Authority = m.authorities.map(rr);
  return out;
}

function rdataText(data: unknown): string {
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data)) return data.toString('hex');
  if (Array.isArray(data)) return data.map((d) => JSON.stringify(Buffer.isBuffer(d) ? d.toString('latin1') : String(d))).join(' ');
  if (typeof data === 'object' && data !== null) {
    return Object.values(data)
      .map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : Array.isArray(v) ? v.join(' ') : String(v)))
      .join(' ');
  }
  return String(data);
}
