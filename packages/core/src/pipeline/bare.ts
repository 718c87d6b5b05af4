/**
 * Replies built without running the chain, for queries the pipeline cannot
 * hand to middleware: NOTIMP for another opcode, FORMERR for QDCOUNT ≠ 1 or
 * an unparseable message.
 */
import { Buffer } from 'node:buffer';
import { skipName } from '../packet/name.js';

const OPT = 41;

/** End of an uncompressed name at `at` (≤ 255 octets, labels ≤ 63), or -1. */
function plainNameEnd(buf: Buffer, at: number): number {
  let p = at;
  for (;;) {
    if (p >= buf.length) return -1;
    const n = buf[p]!;
    if (n === 0) return p + 1 - at > 255 ? -1 : p + 1;
    if (n > 63) return -1;
    p += 1 + n;
  }
}

/**
 * A header-only reply (ID, opcode and RD echoed, QR set, RA per settings, CD
 * echoed), with the question echoed when there is exactly one and it parses,
 * and our OPT record (our payload size, DO echoed, version 0, extended rcode)
 * when the query carried one (RFC 6891 §7: a responder that understands EDNS
 * includes OPT in its reply).
 */
export function bareResponse(request: Buffer, rcode: number, env: { readonly ednsPayloadSize: number; readonly recursionAvailable: boolean }): Buffer {
  const len = request.length;
  const qd = request.readUInt16BE(4);
  const an = request.readUInt16BE(6);
  const ns = request.readUInt16BE(8);
  const ar = request.readUInt16BE(10);
  let qEnd = 12;
  let optDo = -1; // -1: no OPT seen; 0/1: the DO bit
  try {
    let p = 12;
    // Echo only a plain (uncompressed) single question: a pointer there can
    // only point into the header or forward, which no client can decode.
    const plain = qd === 1 ? plainNameEnd(request, 12) : -1;
    if (plain >= 0 && plain + 4 <= len) qEnd = plain + 4;
    for (let i = 0; i < qd; i++) {
      p = skipName(request, p) + 4;
      if (p > len) throw new RangeError('truncated question');
    }
    const total = an + ns + ar;
    for (let i = 0; i < total; i++) {
      const owner = p;
      p = skipName(request, p);
      if (p + 10 > len) throw new RangeError('truncated record');
      const type = request.readUInt16BE(p);
      const rdlen = request.readUInt16BE(p + 8);
      if (i >= an + ns && type === OPT && request[owner] === 0) optDo = request[p + 6]! & 0x80 ? 1 : 0;
      p += 10 + rdlen;
      if (p > len) throw new RangeError('truncated rdata');
    }
  } catch {
    // Keep the question if it parsed; no OPT unless the whole message walked.
    optDo = -1;
  }
  const out = Buffer.alloc(qEnd + (optDo < 0 ? 0 : 11));
  request.copy(out, 0, 0, qEnd);
  out[2] = 0x80 | (request[2]! & 0x79);
  out[3] = (env.recursionAvailable ? 0x80 : 0) | (request[3]! & 0x10) | (rcode & 0xf);
  out.writeUInt16BE(qEnd > 12 ? 1 : 0, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(optDo < 0 ? 0 : 1, 10);
  if (optDo >= 0) {
    const o = qEnd;
    out[o] = 0;
    out.writeUInt16BE(OPT, o + 1);
    out.writeUInt16BE(env.ednsPayloadSize, o + 3);
    out[o + 5] = (rcode >> 4) & 0xff;
    out[o + 6] = 0;
    out[o + 7] = optDo ? 0x80 : 0;
    out[o + 8] = 0;
    out.writeUInt16BE(0, o + 9);
  }
  return out;
}
