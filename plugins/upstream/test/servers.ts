/**
 * Minimal loopback DNS servers for the transport tests (UDP, TCP, TLS, DoH),
 * scriptable per query. Answers are built with dns-packet so that the code
 * under test is checked against an independent encoder.
 */
import dgram from 'node:dgram';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import dnsPacket from 'dns-packet';
import { generate } from 'selfsigned';

export type Decoded = dnsPacket.Packet;

/** A reply to `query` with one A record (address) unless overridden. */
export function answer(
  query: Buffer,
  opts: { address?: string; rcode?: string; tc?: boolean; id?: number; name?: string; ttl?: number; pad?: number } = {},
): Buffer {
  const q = dnsPacket.decode(query);
  const question = q.questions![0]!;
  const name = opts.name ?? question.name;
  const answers: dnsPacket.Answer[] = [];
  if ((opts.rcode ?? 'NOERROR') === 'NOERROR' && question.type === 'A') {
    answers.push({ type: 'A', name, ttl: opts.ttl ?? 60, data: opts.address ?? '192.0.2.1' });
    for (let i = 0; i < (opts.pad ?? 0); i++) answers.push({ type: 'A', name, ttl: 60, data: `198.51.${(i >> 8) & 255}.${i & 255}` });
  }
  let flags = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE;
  if (opts.tc) flags |= dnsPacket.TRUNCATED_RESPONSE;
  const rcodes: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
  flags |= rcodes[opts.rcode ?? 'NOERROR'] ?? 0;
  return dnsPacket.encode({
    type: 'response',
    id: opts.id ?? q.id,
    flags,
    questions: [{ ...question, name }],
    answers,
    additionals: q.additionals?.some((a) => a.type === 'OPT') ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as any] : [],
  });
}

/** A query for `name`/`type` with the given ID. */
export function makeQuery(name: string, type: dnsPacket.RecordType = 'A', id = 4242, edns = false): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [] } as any] : [],
  });
}

export type UdpHandler = (msg: Buffer, rinfo: dgram.RemoteInfo, reply: (b: Buffer) => void, socket: dgram.Socket) => void;

export interface TestServer {
  port: number;
  close(): Promise<void>;
  /** Queries received. */
  queries: Buffer[];
  /** Stream servers: connections accepted. */
  connections: number;
}

export async function udpServer(handler: UdpHandler, family: 4 | 6 = 4): Promise<TestServer & { socket: dgram.Socket }> {
  const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  const queries: Buffer[] = [];
  socket.on('message', (msg, rinfo) => {
    queries.push(msg);
    handler(msg, rinfo, (b) => socket.send(b, rinfo.port, rinfo.address), socket);
  });
  await new Promise<void>((r) => socket.bind(0, family === 6 ? '::1' : '127.0.0.1', () => r()));
  return {
    socket,
    port: socket.address().port,
    queries,
    connections: 0,
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

export type StreamHandler = (query: Buffer, write: (b: Buffer) => void, socket: net.Socket) => void;

function framed(socket: net.Socket, handler: StreamHandler, queries: Buffer[]): void {
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < len + 2) break;
      const q = buf.subarray(2, 2 + len);
      buf = buf.subarray(2 + len);
      queries.push(Buffer.from(q));
      handler(
        Buffer.from(q),
        (b) => {
          if (socket.destroyed) return;
          const f = Buffer.alloc(b.length + 2);
          f.writeUInt16BE(b.length);
          b.copy(f, 2);
          socket.write(f);
        },
        socket,
      );
    }
  });
  socket.on('error', () => {});
}

export async function tcpServer(handler: StreamHandler, tlsOptions?: { key: string; cert: string }): Promise<TestServer & { sockets: Set<net.Socket> }> {
  const queries: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const onConn = (socket: net.Socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    framed(socket, handler, queries);
  };
  const server = tlsOptions ? tls.createServer({ key: tlsOptions.key, cert: tlsOptions.cert, ALPNProtocols: ['dot'] }, onConn) : net.createServer(onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    queries,
    sockets,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export type DohHandler = (query: Buffer, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

export async function dohServer(
  handler: DohHandler,
  cert: { key: string; cert: string },
  settings: http2.Settings = {},
): Promise<TestServer & { sessions: number; requests: { method: string; path: string }[]; dropSessions(): Promise<void> }> {
  const queries: Buffer[] = [];
  const requests: { method: string; path: string }[] = [];
  const state = { sessions: 0 };
  const server = http2.createSecureServer({ key: cert.key, cert: cert.cert, settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    state.sessions++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const method = String(headers[':method']);
    const path = String(headers[':path']);
    requests.push({ method, path });
    stream.on('error', () => {});
    if (method === 'GET') {
      const q = new URL(path, 'https://x').searchParams.get('dns') ?? '';
      const buf = Buffer.from(q, 'base64url');
      queries.push(buf);
      handler(buf, stream, headers);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const buf = Buffer.concat(chunks);
      queries.push(buf);
      handler(buf, stream, headers);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    queries,
    requests,
    get connections() {
      return state.sessions;
    },
    get sessions() {
      return state.sessions;
    },
    async dropSessions() {
      for (const s of sessions) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Sends a DNS reply on an HTTP/2 stream the way RFC 8484 servers do. */
export function dohReply(stream: http2.ServerHttp2Stream, body: Buffer, status = 200, type = 'application/dns-message'): void {
  if (stream.destroyed) return;
  stream.respond({ ':status': status, 'content-type': type, 'content-length': body.length });
  stream.end(body);
}

let certCache: Promise<{ key: string; cert: string }> | undefined;
/** A self-signed certificate for `dns.test` and 127.0.0.1 (made once per test file). */
export function testCert(): Promise<{ key: string; cert: string }> {
  certCache ??= generate([{ name: 'commonName', value: 'dns.test' }], {
    keyType: 'ec',
    curve: 'P-256',
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'dns.test' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  }).then((r) => ({ key: r.private, cert: r.cert }));
  return certCache;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
