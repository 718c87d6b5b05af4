/**
 * What the forwarder changes between the client's query and the upstream's
 * reply (RFC 6891, RFC 7871, RFC 7873).
 *
 * Upstream queries are rebuilt, not copied: header (ID, opcode, RD, AD, CD
 * kept; QR/AA/TC/RA/Z/rcode cleared), the question verbatim, and one OPT of
 * our own advertising 1232 bytes (the DNS Flag Day 2020 size) with the
 * client's DO bit. Hop-by-hop options of the client (cookies, keepalive,
 * padding) are not forwarded; the client-subnet option follows the policy.
 *
 * Replies get the client's question bytes back (letter case as asked), lose
 * the OPT record when the client sent none, and lose hop-by-hop options
 * (COOKIE, TCP_KEEPALIVE, PADDING) and a client-subnet option the client did
 * not send. The full reply is returned: truncation to the client's UDP size
 * is the server transport's job.
 */
import net from 'node:net';
import { type ClientInfo, MessageReader } from '@heimdall/core';
import { UpstreamError } from './errors.js';

const OPT = 41;
const OPT_ECS = 8;
const OPT_COOKIE = 10;
const OPT_KEEPALIVE = 11;
const OPT_PADDING = 12;

/** Client-subnet (RFC 7871) policy for upstream queries. */
export type ClientSubnetPolicy =
  /** Never send ECS upstream (default; best for privacy and cache sharing). */
  | { mode: 'strip' }
  /** Forward the client's own ECS option unchanged (scope reset to 0). */
  | { mode: 'forward' }
  /**
   * Send ECS derived from the client's address cut to `ipv4Prefix` /
   * `ipv6Prefix` bits, or the fixed `address` when configured. A client's own
   * ECS with source prefix 0 (opt-out, RFC 7871 §7.1.2) is honoured.
   */
  | { mode: 'set'; ipv4Prefix: number; ipv6Prefix: number; address?: SubnetAddress };

/** A subnet ready for the wire: family 1 (IPv4) or 2 (IPv6), prefix length, and the prefix bytes (host bits zero). */
export interface SubnetAddress {
  family: 1 | 2;
  prefix: number;
  bytes: Buffer;
}

/** The upstream query built from a client query, plus what the reply fix-up needs to know. */
export interface PreparedQuery {
  /** Wire query to send upstream (same ID as the client's). */
  query: Buffer;
  /** Offset after the question (same in query and reply). */
  qEnd: number;
  /** The client query carried an OPT record. */
  clientEdns: boolean;
  /** The client query carried an ECS option. */
  clientEcs: boolean;
}

/** Parses an IP text to bytes (IPv4 → 4, IPv6 → 16, IPv4-mapped IPv6 → 4), or null. */
export function ipToBytes(text: string): Buffer | null {
  const family = net.isIP(text);
  if (family === 4) return Buffer.from(text.split('.').map(Number));
  if (family !== 6) return null;
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const out = Buffer.alloc(16);
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    s = `${s.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':').map((x) => Number.parseInt(x, 16));
  tail = rest === undefined || rest === '' ? [] : rest.split(':').map((x) => Number.parseInt(x, 16));
  const groups = rest === undefined ? h : [...h, ...new Array(8 - h.length - tail.length).fill(0), ...tail];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i] ?? 0, i * 2);
  // ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket.
  if (out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff) return Buffer.from(out.subarray(12));
  return out;
}

/** `bytes` cut to `prefix` bits: ceil(prefix/8) bytes, trailing host bits zeroed (RFC 7871 §6). */
export function subnetOf(bytes: Buffer, prefix: number): SubnetAddress {
  const n = Math.ceil(prefix / 8);
  const out = Buffer.alloc(n);
  bytes.copy(out, 0, 0, n);
  const rem = prefix % 8;
  if (rem !== 0) out[n - 1]! &= (0xff << (8 - rem)) & 0xff;
  return { family: bytes.length === 4 ? 1 : 2, prefix, bytes: out };
}

/** Parses `"192.0.2.0/24"` / `"2001:db8::/56"` (host bits are zeroed). Throws a message on bad input. */
export function parseSubnet(text: string): SubnetAddress {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(String(text).trim());
  const bytes = m ? ipToBytes(m[1]!) : null;
  if (m === null || bytes === null) throw new Error(`"${text}" is not an address/prefix such as 192.0.2.0/24`);
  const prefix = Number(m[2]);
  if (prefix > bytes.length * 8) throw new Error(`prefix /${prefix} is too long for ${m[1]}`);
  return subnetOf(bytes, prefix);
}

function ecsOption(s: SubnetAddress): Buffer {
  const b = Buffer.allocUnsafe(8 + s.bytes.length);
  b.writeUInt16BE(OPT_ECS, 0);
  b.writeUInt16BE(4 + s.bytes.length, 2);
  b.writeUInt16BE(s.family, 4);
  b[6] = s.prefix;
  b[7] = 0; // SCOPE PREFIX-LENGTH is 0 in queries
  s.bytes.copy(b, 8);
  return b;
}

/** The client's ECS option if well-formed (RFC 7871 §6), else null (not forwarded). */
function validEcs(data: Buffer): SubnetAddress | null {
  if (data.length < 4) return null;
  const family = data.readUInt16BE(0);
  const prefix = data[2]!;
  const max = family === 1 ? 32 : family === 2 ? 128 : -1;
  if (max < 0 || prefix > max || data.length - 4 !== Math.ceil(prefix / 8)) return null;
  return subnetOf(Buffer.concat([data.subarray(4), Buffer.alloc(16)]).subarray(0, max / 8), prefix);
}

/**
 * Builds the upstream query for a client query.
 *
 * @param request the client's query bytes (not modified)
 * @param reader a view of `request`
 * @throws {UpstreamError} `BAD_QUERY` when there is not exactly one question or the OPT record is malformed
 */
export function prepareQuery(request: Buffer, reader: MessageReader, policy: ClientSubnetPolicy, payloadSize: number, client?: ClientInfo): PreparedQuery {
  let qEnd: number;
  let opt: number;
  try {
    if (reader.qdcount !== 1) throw new Error(`${reader.qdcount} questions`);
    qEnd = reader.questionEnd;
    opt = reader.optOffset;
  } catch (e) {
    throw new UpstreamError('BAD_QUERY', `cannot forward this query: ${(e as Error).message}`, undefined, { cause: e });
  }
  let dnssecOk = false;
  let clientEcs: Buffer | null = null;
  if (opt >= 0) {
    dnssecOk = (request[opt + 7]! & 0x80) !== 0;
    const end = opt + 11 + request.readUInt16BE(opt + 9);
    for (let p = opt + 11; p + 4 <= end; ) {
      const code = request.readUInt16BE(p);
      const len = request.readUInt16BE(p + 2);
      if (code === OPT_ECS && p + 4 + len <= end) clientEcs = request.subarray(p + 4, p + 4 + len);
      p += 4 + len;
    }
  }
  let ecs: Buffer | null = null;
  if (policy.mode === 'forward') {
    const s = clientEcs && validEcs(clientEcs);
    if (s) ecs = ecsOption(s);
  } else if (policy.mode === 'set') {
    const own = clientEcs && validEcs(clientEcs);
    if (own && own.prefix === 0) ecs = ecsOption(own);
    else if (policy.address) ecs = ecsOption(policy.address);
    else if (client && client.transport !== 'internal') {
      const bytes = ipToBytes(client.address);
      if (bytes) ecs = ecsOption(subnetOf(bytes, bytes.length === 4 ? policy.ipv4Prefix : policy.ipv6Prefix));
    }
  }
  const optLen = 11 + (ecs ? ecs.length : 0);
  const out = Buffer.allocUnsafe(qEnd + optLen);
  request.copy(out, 0, 0, qEnd);
  // Header: keep ID, opcode, RD (byte 2: 0x78 | 0x01) and AD, CD (byte 3: 0x30).
  out[2] = request[2]! & 0x79;
  out[3] = request[3]! & 0x30;
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6); // ANCOUNT, NSCOUNT
  out.writeUInt16BE(1, 10); // ARCOUNT: our OPT
  let p = qEnd;
  out[p++] = 0; // root owner
  out.writeUInt16BE(OPT, p);
  out.writeUInt16BE(payloadSize, p + 2);
  out[p + 4] = 0; // extended rcode
  out[p + 5] = 0; // version
  out[p + 6] = dnssecOk ? 0x80 : 0;
  out[p + 7] = 0;
  out.writeUInt16BE(ecs ? ecs.length : 0, p + 8);
  if (ecs) ecs.copy(out, p + 10);
  return { query: out, qEnd, clientEdns: opt >= 0, clientEcs: clientEcs !== null };
}

/**
 * Fixes up an upstream reply (a buffer the caller owns, with the client's ID
 * already) for the client: question letter case as the client sent it, OPT
 * removed if the client had none, hop-by-hop options removed. Returns
 * `reply` itself when only the question bytes changed, else a new buffer.
 *
 * @throws {UpstreamError} `BAD_RESPONSE` when the reply's records are malformed
 */
export function finishReply(reply: Buffer, request: Buffer, prep: PreparedQuery, keepEcs: boolean): Buffer {
  request.copy(reply, 12, 12, prep.qEnd - 4);
  let opt: number;
  try {
    opt = new MessageReader(reply).optOffset;
  } catch (e) {
    throw new UpstreamError('BAD_RESPONSE', `malformed reply: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (opt < 0) return reply;
  const rdLen = reply.readUInt16BE(opt + 9);
  const end = opt + 11 + rdLen;
  if (end > reply.length) throw new UpstreamError('BAD_RESPONSE', 'malformed reply: OPT RDATA overruns the message');
  if (!prep.clientEdns) {
    const out = Buffer.allocUnsafe(reply.length - (end - opt));
    reply.copy(out, 0, 0, opt);
    reply.copy(out, opt, end);
    out.writeUInt16BE(reply.readUInt16BE(10) - 1, 10);
    return out;
  }
  let drop = 0;
  for (let p = opt + 11; p + 4 <= end; ) {
    const code = reply.readUInt16BE(p);
    const len = reply.readUInt16BE(p + 2);
    if (p + 4 + len > end) throw new UpstreamError('BAD_RESPONSE', 'malformed reply: EDNS option overruns the OPT record');
    if (dropOption(code, keepEcs)) drop += 4 + len;
    p += 4 + len;
  }
  if (drop === 0) return reply;
  const out = Buffer.allocUnsafe(reply.length - drop);
  reply.copy(out, 0, 0, opt + 11);
  let w = opt + 11;
  for (let p = opt + 11; p + 4 <= end; ) {
    const code = reply.readUInt16BE(p);
    const len = reply.readUInt16BE(p + 2);
    if (!dropOption(code, keepEcs)) w += reply.copy(out, w, p, Math.min(p + 4 + len, end));
    p += 4 + len;
  }
  out.writeUInt16BE(rdLen - drop, opt + 9);
  reply.copy(out, w, end);
  return out;
}

function dropOption(code: number, keepEcs: boolean): boolean {
  return code === OPT_COOKIE || code === OPT_KEEPALIVE || code === OPT_PADDING || (code === OPT_ECS && !keepEcs);
}
