/**
 * DNS over HTTPS (RFC 8484) on `node:http2`, HTTP/1.1 allowed (ALPN `h2`,
 * `http/1.1`):
 *
 * - `GET <path>?dns=<base64url, no padding>` and `POST <path>` with
 *   `Content-Type: application/dns-message`; `<path>/<client-id>` names the
 *   client (`ClientInfo.clientId`: letters, digits, `.`, `_`, `-`, ≤ 64).
 * - `200` with `Cache-Control: max-age=<smallest TTL of the answer>` (of the
 *   authority section for a negative answer; 0 for errors), `400` for a bad
 *   `dns` parameter or message, `403` for a query the chain dropped, `404`
 *   for another path, `405` for another method, `413` past 65 536 octets,
 *   `415` for another content type. Never a 500: every failure is a 4xx or
 *   a closed stream, never a crash.
 * - With `json: true`, `GET <path>?name=&type=` answers the JSON form
 *   (`application/dns-json`, as Cloudflare and Google serve it).
 * - `Forwarded` / `X-Forwarded-For` name the client only when the
 *   connection comes from `trustedProxies` (after PROXY v2, when on).
 * - Responses are padded (RFC 7830/8467); RFC 8484 §5.3 forbids
 *   edns-tcp-keepalive here, so it is not answered.
 *
 * The listening socket, the PROXY v2 preamble and the connection limits are
 * the stream listener's (`stream.ts`); sockets are handed to an
 * `Http2SecureServer` that never listens itself. Certificates reload with
 * `setSecureContext` (open connections keep theirs).
 */
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import { ConfigError } from '../errors.js';
import { decode, encode, type ResourceRecord, typeFromString } from '../packet/index.js';
import { parseOptions, type Static } from '../plugin/options.js';
import type { ClientInfo } from '../pipeline/types.js';
import { ipFamily } from '../wire/ip.js';
import { trySkipName } from '../wire/name.js';
import { CertificateFiles } from './certs.js';
import { addResponseOptions, HAS_PADDING, queryOptions, RESPONSE_PAD_BLOCK } from './edns-options.js';
import { AddressSet } from './proxy.js';
import { httpsListenSchema } from './schema.js';
import { StreamServer, type TrackedConnection } from './stream.js';
import type { HttpsListenOptions, TransportDeps } from './types.js';

/** A DoH listener's validated settings, defaults filled in. */
export type HttpsSettings = Static<typeof httpsListenSchema>;

/** Largest request body (and decoded `dns` parameter) accepted: RFC 8484 messages are at most 65 535 octets. */
export const DOH_MAX_BODY = 65_536;

const DNS_MESSAGE = 'application/dns-message';
const DNS_JSON = 'application/dns-json';
const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const kConnection = Symbol('heimdall.dohConnection');

type Req = http2.Http2ServerRequest;
type Res = http2.Http2ServerResponse;

/** A DNS-over-HTTPS listener. */
export class HttpsServer extends StreamServer<HttpsConnection> {
  readonly settings: HttpsSettings;
  readonly certificates: CertificateFiles;
  private readonly h2: http2.Http2SecureServer;
  private readonly path: string;
  private readonly proxies: AddressSet;
  /** Open connections by `address|port` of the peer, to find a TLS socket's connection. */
  private readonly byPeer = new Map<string, HttpsConnection>();

  constructor(options: HttpsListenOptions, deps: TransportDeps, path = 'listen') {
    const settings = parseOptions(httpsListenSchema, { ...options, transport: 'https' }, path);
    if (settings.cert === undefined) throw new ConfigError(`${path}.cert`, 'is required for an https listener (PEM certificate file)');
    if (settings.key === undefined) throw new ConfigError(`${path}.key`, 'is required for an https listener (PEM private key file)');
    super('https', settings, deps, path);
    this.settings = settings;
    this.path = settings.path.length > 1 && settings.path.endsWith('/') ? settings.path.slice(0, -1) : settings.path;
    this.proxies = new AddressSet(settings.trustedProxies, `${path}.trustedProxies`);
    this.certificates = new CertificateFiles(settings.cert, settings.key, path, deps.logger, (pair) => {
      this.h2.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
    });
    const pair = this.certificates.pair;
    this.h2 = http2.createSecureServer(
      {
        cert: pair.cert,
        key: pair.key,
        minVersion: 'TLSv1.2',
        allowHTTP1: true,
        handshakeTimeout: settings.handshakeTimeoutMs,
        settings: { maxConcurrentStreams: settings.maxConcurrentStreams },
      },
      (req, res) => this.onRequest(req, res),
    );
    const h2 = this.h2;
    h2.on('secureConnection', (s: tls.TLSSocket) => {
      const conn = this.byPeer.get(`${s.remoteAddress}|${s.remotePort}`);
      if (conn === undefined) return;
      (s as unknown as Record<symbol, unknown>)[kConnection] = conn;
      conn.secured(s);
    });
    h2.on('tlsClientError', (_err: Error, s: tls.TLSSocket) => {
      this.stats.handshakeFailed++;
      s.destroy();
    });
    h2.on('session', (session: http2.ServerHttp2Session) => {
      session.on('error', () => {});
      const conn = (session.socket as unknown as Record<symbol, HttpsConnection | undefined>)[kConnection];
      if (conn !== undefined) conn.session = session;
    });
    h2.on('sessionError', () => {});
    h2.on('clientError', (_err: Error, s: net.Socket) => s.destroy());
    h2.on('unknownProtocol', (s: tls.TLSSocket) => s.destroy());
    // Idle connections are closed by HttpsConnection's own timer.
    h2.setTimeout(0);
  }

  protected override prepare(): Promise<void> {
    this.certificates.watch();
    return Promise.resolve();
  }

  protected override closed(): void {
    this.certificates.close();
  }

  async reloadCertificates(): Promise<void> {
    await this.certificates.reload();
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

  private onRequest(req: Req, res: Res): void {
    req.on('error', () => {});
    res.on('error', () => {});
    const conn = (req.socket as unknown as Record<symbol, HttpsConnection | undefined>)[kConnection];
    try {
      this.route(req, res, conn);
    } catch (err) {
      this.deps.logger.warn({ err }, 'DoH request failed');
      reply(res, 400, 'bad request\n');
    }
  }

  private route(req: Req, res: Res, conn: HttpsConnection | undefined): void {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    let clientId: string | undefined;
    if (p !== this.path) {
      if (!p.startsWith(this.path) || p.charCodeAt(this.path.length) !== 47 /* / */) {
        reply(res, 404, 'not found\n');
        return;
      }
      clientId = p.slice(this.path.length + 1);
      if (!CLIENT_ID.test(clientId)) {
        reply(res, 404, 'not found\n');
        return;
      }
    }
    const method = req.method;
    if (method !== 'GET' && method !== 'POST') {
      res.setHeader('allow', 'GET, POST');
      reply(res, 405, 'method not allowed\n');
      return;
    }
    const client = this.clientOf(req, conn, clientId);
    if (method === 'GET') {
      const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
      const dns = params.get('dns');
      if (dns === null) {
        if (this.settings.json && params.has('name')) {
          this.json(params, res, client, conn);
          return;
        }
        reply(res, 400, 'missing dns parameter\n');
        return;
      }
      if (dns.length === 0 || !BASE64URL.test(dns)) {
        reply(res, 400, 'bad dns parameter (base64url without padding)\n');
        return;
      }
      if (Math.floor((dns.length * 3) / 4) > DOH_MAX_BODY) {
        reply(res, 413, 'dns parameter too large\n');
        return;
      }
      this.answer(Buffer.from(dns, 'base64url'), res, client, conn);
      return;
    }
    const type = req.headers['content-type'];
    const mediaType = typeof type === 'string' ? type.split(';', 1)[0]!.trim().toLowerCase() : '';
    if (mediaType !== DNS_MESSAGE) {
      reply(res, 415, `content type must be ${DNS_MESSAGE}\n`);
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > DOH_MAX_BODY) {
      reply(res, 413, 'request body too large\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    conn?.begin();
    const finish = () => {
      if (done) return;
      done = true;
      conn?.finish();
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > DOH_MAX_BODY) {
        finish();
        reply(res, 413, 'request body too large\n');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      finish();
      this.answer(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), res, client, conn);
    });
    req.on('close', finish);
  }

  /** The client of a request: the connection's, or the one a trusted proxy names; with its client id. */
  private clientOf(req: Req, conn: HttpsConnection | undefined, clientId: string | undefined): ClientInfo {
    let client = conn?.client ?? socketInfo(req.socket);
    if (this.proxies.size > 0 && this.proxies.has(client.address)) {
      const named = forwardedClient(req.headers.forwarded, req.headers['x-forwarded-for'], this.proxies);
      if (named !== null && named !== client.address) client = { ...client, address: named, port: 0, family: named.includes(':') ? 6 : 4 };
    }
    return clientId === undefined ? client : { ...client, clientId };
  }

  private answer(msg: Buffer, res: Res, client: ClientInfo, conn: HttpsConnection | undefined): void {
    // A query: a header, QR=0 (a response sent to us could start a loop).
    if (msg.length < 12 || (msg[2]! & 0x80) !== 0) {
      reply(res, 400, 'not a DNS query\n');
      return;
    }
    let r: Buffer | null | Promise<Buffer | null>;
    try {
      r = this.deps.handler.process(msg, client);
    } catch (err) {
      this.deps.logger.error({ err }, 'query handler threw; DoH query refused');
      reply(res, 400, 'query failed\n');
      return;
    }
    if (r instanceof Promise) {
      conn?.begin();
      r.then(
        (resp) => {
          conn?.finish();
          this.send(msg, resp, res);
        },
        (err) => {
          conn?.finish();
          this.deps.logger.error({ err }, 'query handler rejected; DoH query refused');
          reply(res, 400, 'query failed\n');
        },
      );
    } else this.send(msg, r, res);
  }

  private send(query: Buffer, response: Buffer | null, res: Res): void {
    if (response === null) {
      reply(res, 403, 'query dropped\n');
      return;
    }
    const padding = this.settings.padding;
    if (padding !== 'off' && (query[10] !== 0 || query[11] !== 0)) {
      const bits = queryOptions(query);
      if (bits !== 0 && (padding === 'always' || (bits & HAS_PADDING) !== 0)) response = addResponseOptions(response, -1, RESPONSE_PAD_BLOCK);
    }
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(200, {
      'content-type': DNS_MESSAGE,
      'content-length': response.length,
      'cache-control': `max-age=${cacheAge(response)}`,
    });
    res.end(response);
  }

  /** The JSON API: `?name=&type=` (type a mnemonic or number, default A), `cd`, `do`. */
  private json(params: URLSearchParams, res: Res, client: ClientInfo, conn: HttpsConnection | undefined): void {
    const name = params.get('name')!;
    const typeText = params.get('type') ?? 'A';
    const type = /^\d{1,5}$/.test(typeText) ? Number(typeText) : typeFromString(typeText.toUpperCase());
    if (type === undefined || type > 65_535) {
      reply(res, 400, 'bad type parameter\n');
      return;
    }
    const flag = (v: string | null) => v !== null && v !== '0' && v.toLowerCase() !== 'false';
    let query: Buffer;
    try {
      query = encode({ id: 0, rd: true, cd: flag(params.get('cd')), questions: [{ name, type }], edns: { udpPayloadSize: 1232, dnssecOk: flag(params.get('do')) } });
    } catch {
      reply(res, 400, 'bad name parameter\n');
      return;
    }
    const done = (resp: Buffer | null) => {
      if (resp === null) {
        reply(res, 403, 'query dropped\n');
        return;
      }
      let body: string;
      try {
        body = JSON.stringify(toJson(resp));
      } catch {
        reply(res, 400, 'answer could not be decoded\n');
        return;
      }
      if (res.writableEnded || res.destroyed) return;
      res.writeHead(200, { 'content-type': DNS_JSON, 'content-length': Buffer.byteLength(body), 'cache-control': `max-age=${cacheAge(resp)}` });
      res.end(body);
    };
    const r = this.deps.handler.process(query, client);
    if (r instanceof Promise) {
      conn?.begin();
      r.then(
        (resp) => {
          conn?.finish();
          done(resp);
        },
        () => {
          conn?.finish();
          reply(res, 400, 'query failed\n');
        },
      );
    } else done(r);
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

function socketInfo(s: net.Socket): ClientInfo {
  const address = s.remoteAddress ?? '';
  const v4 = address.startsWith('::ffff:') && address.includes('.');
  return { address: v4 ? address.slice(7) : address, port: s.remotePort ?? 0, family: address.includes(':') && !v4 ? 6 : 4, transport: 'https' };
}

/** Sends a short text error (or any non-200) unless the response is already under way. */
function reply(res: Res, status: number, text: string): void {
  try {
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  } catch {
    // The stream went away meanwhile.
  }
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
