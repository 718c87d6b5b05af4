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
 * Replies are made ours by {@link forwardReply}: our header bits, the
 * client's question bytes, our own OPT. The full reply is returned:
 * truncation to the client's UDP size is the server transport's job.
 */
import { Buffer } from 'node:buffer';
import type { ClientInfo } from '@heimdall/core';
import { MessageReader, OptionCode, RecordType } from '@heimdall/core/packet';
import { ipToBytes } from '@heimdall/core/wire';
import { UpstreamError } from './errors.js';

const OPT = RecordType.OPT;
const OPT_ECS = OptionCode.CLIENT_SUBNET;
const OPT_EDE = OptionCode.EDE;

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

/**
 * One forwarded query: the upstream query built from the client's, and what
 * {@link forwardReply} needs to make an upstream reply ours. One object per
 * query (fixed shape).
 */
export interface PreparedQuery {
  /** Wire query to send upstream (same ID as the client's). */
  readonly query: Buffer;
  /** The client's query (its question bytes, RD/CD/AD bits, EDNS). */
  readonly request: Buffer;
  /** Offset after the question (same in query and reply). */
  readonly qEnd: number;
  /** The client query carried an OPT record. */
  readonly clientEdns: boolean;
  /** The client set DO. */
  readonly clientDo: boolean;
  /** Keep an upstream ECS option in the reply (policy `forward` and the client sent ECS). */
  readonly keepEcs: boolean;
  /** UDP payload size written in the reply's OPT (the resolver's own, RFC 6891 §6.2.3). */
  readonly replyPayload: number;
  /** Set when a reply is chosen: URL of the upstream that sent it. */
  upstream: string;
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
export function prepareQuery(
  request: Buffer,
  reader: MessageReader,
  policy: ClientSubnetPolicy,
  payloadSize: number,
  replyPayload: number,
  client?: ClientInfo,
): PreparedQuery {
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
  // Header: keep ID, opcode, RD (byte 2: 0x78 | 0x01) and CD (byte 3: 0x10);
  // AD=1 always (RFC 6840 §5.7: we understand AD), so a validating upstream
  // says what it validated whoever asked first, and a cached or shared answer
  // keeps it for the clients that want it (core clears it for the others).
  out[2] = request[2]! & 0x79;
  out[3] = (request[3]! & 0x10) | 0x20;
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
  return {
    query: out,
    request,
    qEnd,
    clientEdns: opt >= 0,
    clientDo: dnssecOk,
    keepEcs: policy.mode === 'forward' && clientEcs !== null,
    replyPayload,
    upstream: '',
  };
}

/**
 * Makes an upstream reply ours, on the wire bytes (no decode): every
 * forwarded answer goes through here.
 *
 * - Header: the client's ID (set by the transport), opcode, RD and CD; QR=1,
 *   RA=1 (RFC 1035 §4.1.1: we offer recursion), AA=0 (a forwarder never
 *   claims authority), Z=0, TC, RCODE and AD as the upstream sent them. The
 *   reply keeps the upstream's AD so that the cache and dedup store it for
 *   every client; core clears it in the response of a client that asked with
 *   neither AD nor DO (RFC 6840 §5.8).
 * - Question: the client's bytes (its letter case, 0x20 randomisation).
 * - OPT is hop-by-hop (RFC 6891 §6.1.1): the upstream's is replaced by ours —
 *   our payload size, version 0, the client's DO, the upstream's extended
 *   rcode, keeping only its EDE options (and ECS under `clientSubnet:
 *   forward` when the client sent one); NSID, cookies, padding, keepalive
 *   are dropped. No OPT at all when the client sent none; one of ours when
 *   the client sent one and the upstream did not.
 *
 * Returns `reply` itself (patched in place: the transports hand over a
 * buffer the caller owns) unless the size changes.
 *
 * @throws {UpstreamError} `BAD_RESPONSE` when the reply's records are malformed
 */
export function forwardReply(reply: Buffer, p: PreparedQuery): Buffer {
  const req = p.request;
  const qEnd = p.qEnd;
  let opt: number;
  try {
    // Walks every record (bounds, names, OPT placement): a malformed reply throws here.
    opt = new MessageReader(reply).optOffset;
  } catch (e) {
    throw new UpstreamError('BAD_RESPONSE', `malformed reply: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (reply.length < qEnd) throw new UpstreamError('BAD_RESPONSE', 'malformed reply: shorter than its question');
  req.copy(reply, 12, 12, qEnd - 4);
  const r3 = reply[3]!;
  const h2 = 0x80 | (req[2]! & 0x79) | (reply[2]! & 0x02);
  const h3 = 0x80 | (r3 & 0x20) | (req[3]! & 0x10) | (r3 & 0x0f);
  if (opt < 0) {
    if (!p.clientEdns) {
      reply[2] = h2;
      reply[3] = h3;
      return reply;
    }
    const out = Buffer.allocUnsafe(reply.length + 11);
    reply.copy(out, 0, 0, reply.length);
    out[2] = h2;
    out[3] = h3;
    out.writeUInt16BE(reply.readUInt16BE(10) + 1, 10);
    writeOptHeader(out, reply.length, p.replyPayload, 0, p.clientDo, 0);
    return out;
  }
  const rdLen = reply.readUInt16BE(opt + 9);
  const end = opt + 11 + rdLen;
  if (end > reply.length) throw new UpstreamError('BAD_RESPONSE', 'malformed reply: OPT RDATA overruns the message');
  const extRcode = reply[opt + 5]!;
  if (!p.clientEdns) {
    const out = Buffer.allocUnsafe(reply.length - (end - opt));
    reply.copy(out, 0, 0, opt);
    reply.copy(out, opt, end);
    out[2] = h2;
    out[3] = h3;
    out.writeUInt16BE(reply.readUInt16BE(10) - 1, 10);
    return out;
  }
  let kept = 0;
  for (let q = opt + 11; q < end; ) {
    if (q + 4 > end) throw new UpstreamError('BAD_RESPONSE', 'malformed reply: truncated EDNS option');
    const code = reply.readUInt16BE(q);
    const len = reply.readUInt16BE(q + 2);
    if (q + 4 + len > end) throw new UpstreamError('BAD_RESPONSE', 'malformed reply: EDNS option overruns the OPT record');
    if (code === OPT_EDE || (code === OPT_ECS && p.keepEcs)) kept += 4 + len;
    q += 4 + len;
  }
  if (kept === rdLen) {
    // Same size: patch the header and the OPT's payload, version and flags in place.
    reply[2] = h2;
    reply[3] = h3;
    reply[opt + 3] = p.replyPayload >>> 8;
    reply[opt + 4] = p.replyPayload & 0xff;
    reply[opt + 6] = 0;
    reply[opt + 7] = p.clientDo ? 0x80 : 0;
    reply[opt + 8] = 0;
    return reply;
  }
  const out = Buffer.allocUnsafe(reply.length - (rdLen - kept));
  reply.copy(out, 0, 0, opt);
  out[2] = h2;
  out[3] = h3;
  writeOptHeader(out, opt, p.replyPayload, extRcode, p.clientDo, kept);
  let w = opt + 11;
  for (let q = opt + 11; q < end; ) {
    const code = reply.readUInt16BE(q);
    const len = reply.readUInt16BE(q + 2);
    if (code === OPT_EDE || (code === OPT_ECS && p.keepEcs)) w += reply.copy(out, w, q, q + 4 + len);
    q += 4 + len;
  }
  reply.copy(out, w, end);
  return out;
}

/** Root owner, type OPT, payload size, extended rcode, version 0, DO, Z=0, RDLENGTH. */
function writeOptHeader(out: Buffer, at: number, payload: number, extRcode: number, dnssecOk: boolean, rdLen: number): void {
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = OPT;
  out[at + 3] = payload >>> 8;
  out[at + 4] = payload & 0xff;
  out[at + 5] = extRcode;
  out[at + 6] = 0;
  out[at + 7] = dnssecOk ? 0x80 : 0;
  out[at + 8] = 0;
  out[at + 9] = rdLen >>> 8;
  out[at + 10] = rdLen & 0xff;
}
