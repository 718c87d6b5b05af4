/**
 * Encoding of plain-object messages, with name compression.
 */
import { Buffer } from 'node:buffer';
import { DEFAULT_UDP_PAYLOAD_SIZE, type EdnsInit } from './edns.js';
import { writeOptions } from './edns-codec.js';
import { PacketError } from './errors.js';
import type { MessageInit, ResourceRecordInit } from './message.js';
import { writeRdata } from './rdata/index.js';
import { RecordType } from './types.js';
import { badValue, isUint, type Writer, writer } from './writer.js';

/** Largest DNS message (the TCP length prefix is 16 bits). */
export const MAX_MESSAGE_SIZE = 65535;

let scratch: Buffer | undefined;
const NONE: readonly never[] = [];

function count(list: readonly unknown[] | undefined, what: string, extra = 0): number {
  if (list === undefined) return extra;
  if (!Array.isArray(list)) badValue(what, list);
  const n = list.length + extra;
  if (n > 0xffff) badValue(`${what} count`, n);
  return n;
}

function writeRecord(w: Writer, r: ResourceRecordInit): void {
  if (r === null || typeof r !== 'object') badValue('record', r);
  w.name(r.name, true);
  const type = r.type;
  w.u16(type, 'record type');
  const klass = r.class ?? 1;
  w.u16(klass, 'record class');
  w.u32(r.ttl ?? 0, 'record TTL');
  if (w.pos + 2 > w.cap) w.overflow();
  const at = (w.pos += 2);
  writeRdata(w, type, r.data, klass);
  const len = w.pos - at;
  if (len > 0xffff) throw new PacketError('INVALID_VALUE', at - w.start, `RDATA longer than 65535 octets (type ${type})`);
  w.buf[at - 2] = len >>> 8;
  w.buf[at - 1] = len & 0xff;
}

function writeOpt(w: Writer, e: EdnsInit, rcode: number): void {
  if (e === null || typeof e !== 'object') badValue('edns', e);
  if (w.pos + 11 > w.cap) w.overflow();
  const b = w.buf;
  b[w.pos++] = 0; // root owner
  b[w.pos++] = 0;
  b[w.pos++] = RecordType.OPT;
  w.u16(e.udpPayloadSize ?? DEFAULT_UDP_PAYLOAD_SIZE, 'EDNS UDP payload size');
  w.u8(rcode > 15 ? rcode >>> 4 : (e.extendedRcode ?? 0), 'EDNS extended rcode');
  w.u8(e.version ?? 0, 'EDNS version');
  const flags = e.flags ?? 0;
  if (!isUint(flags, 0x7fff)) badValue('EDNS flags (15 bits)', flags);
  w.u16(flags | (e.dnssecOk ? 0x8000 : 0), 'EDNS flags');
  if (w.pos + 2 > w.cap) w.overflow();
  const at = (w.pos += 2);
  if (e.options !== undefined) {
    if (!Array.isArray(e.options)) badValue('EDNS options', e.options);
    writeOptions(w, e.options);
  }
  const len = w.pos - at;
  if (len > 0xffff) badValue('OPT RDATA length', len);
  w.buf[at - 2] = len >>> 8;
  w.buf[at - 1] = len & 0xff;
}

function writeMessage(w: Writer, m: MessageInit): void {
  if (m === null || typeof m !== 'object') badValue('message', m);
  const rcode = m.rcode ?? 0;
  if (!isUint(rcode, 0xfff)) badValue('rcode', rcode);
  const edns = m.edns;
  if (rcode > 15 && edns === undefined) badValue('rcode above 15 without EDNS', rcode);
  const opcode = m.opcode ?? 0;
  if (!isUint(opcode, 15)) badValue('opcode', opcode);
  const qs = m.questions ?? NONE;
  const an = m.answers ?? NONE;
  const ns = m.authorities ?? NONE;
  const ar = m.additionals ?? NONE;
  const qd = count(m.questions, 'questions');
  const anc = count(m.answers, 'answers');
  const nsc = count(m.authorities, 'authorities');
  const arc = count(m.additionals, 'additionals', edns !== undefined ? 1 : 0);
  w.u16(m.id ?? 0, 'id');
  if (w.pos + 10 > w.cap) w.overflow();
  const b = w.buf;
  let p = w.pos;
  b[p++] = (m.qr ? 0x80 : 0) | (opcode << 3) | (m.aa ? 0x04 : 0) | (m.tc ? 0x02 : 0) | (m.rd ? 0x01 : 0);
  b[p++] = (m.ra ? 0x80 : 0) | (m.z ? 0x40 : 0) | (m.ad ? 0x20 : 0) | (m.cd ? 0x10 : 0) | (rcode & 0xf);
  b[p++] = qd >>> 8;
  b[p++] = qd & 0xff;
  b[p++] = anc >>> 8;
  b[p++] = anc & 0xff;
  b[p++] = nsc >>> 8;
  b[p++] = nsc & 0xff;
  b[p++] = arc >>> 8;
  b[p++] = arc & 0xff;
  w.pos = p;
  for (let i = 0; i < qs.length; i++) {
    const q = qs[i];
    if (q === null || typeof q !== 'object') badValue('question', q);
    w.name(q.name, true);
    w.u16(q.type, 'question type');
    w.u16(q.class ?? 1, 'question class');
  }
  for (let i = 0; i < an.length; i++) writeRecord(w, an[i]);
  for (let i = 0; i < ns.length; i++) writeRecord(w, ns[i]);
  for (let i = 0; i < ar.length; i++) {
    if (edns !== undefined && ar[i] !== null && typeof ar[i] === 'object' && ar[i].type === RecordType.OPT) {
      badValue('OPT record in additionals together with edns (give one or the other)', 'OPT');
    }
    writeRecord(w, ar[i]);
  }
  if (edns !== undefined) writeOpt(w, edns, rcode);
}

// Encoded messages are carved out of 16 KiB slabs; a new slab is started when
// less than 2 KiB is left.
const SLAB_SIZE = 16384;
const SLAB_MIN_FREE = 2048;
let slab: Buffer = Buffer.alloc(0);
let slabUsed = 0;

function encodeViaScratch(message: MessageInit): Buffer {
  const w = writer;
  const s = scratchBuffer();
  w.reset(s, 0, MAX_MESSAGE_SIZE);
  writeMessage(w, message);
  const n = w.pos;
  w.buf = EMPTY;
  const out = Buffer.allocUnsafe(n);
  s.copy(out, 0, 0, n);
  return out;
}

function scratchBuffer(): Buffer {
  return (scratch ??= Buffer.allocUnsafeSlow(MAX_MESSAGE_SIZE));
}

const EMPTY = Buffer.alloc(0);

/**
 * Encodes a message to wire format, compressing names where RFC 1035 and
 * RFC 3597 §4 allow it (owner names, and names in NS/CNAME/SOA/PTR/MX/…
 * RDATA; never in SRV, RRSIG, NSEC, SVCB, DNAME… RDATA).
 *
 * - Without `buf`: returns a Buffer of exactly `encodingLength(message)` bytes.
 *   Like `Buffer.allocUnsafe`, small results are views into a shared 16 KiB
 *   slab: their `.buffer` holds other messages too.
 * - With `buf` (and `offset`, default 0): writes in place and returns the
 *   view `buf.subarray(offset, offset + length)` (no copy). Compression
 *   pointers are relative to `offset`.
 *
 * Cost: one pass over the message into a reused scratch buffer (or the
 * caller's), one Map of name suffixes reused across calls.
 *
 * @throws PacketError `INVALID_VALUE` (a bad field), `BUFFER_TOO_SMALL`, `MESSAGE_TOO_LARGE`,
 *   name errors (`INVALID_NAME`, `LABEL_TOO_LONG`, `NAME_TOO_LONG`).
 * @example
 * const bytes = encode({ id: 1, rd: true, questions: [{ name: 'example.com', type: RecordType.A }] });
 */
export function encode(message: MessageInit, buf?: Buffer | Uint8Array, offset = 0): Buffer {
  const w = writer;
  if (buf === undefined) {
    // Write straight into a shared slab and hand out the written part (like
    // Buffer.allocUnsafe's pool): no copy. A message too big for what is
    // left of the slab is written to the scratch buffer and copied instead.
    if (slab.length - slabUsed < SLAB_MIN_FREE) {
      slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      slabUsed = 0;
    }
    const start = slabUsed;
    w.reset(slab, start, slab.length);
    try {
      writeMessage(w, message);
    } catch (e) {
      w.buf = EMPTY;
      if (!(e instanceof PacketError) || e.code !== 'BUFFER_TOO_SMALL') throw e;
      return encodeViaScratch(message);
    }
    const end = w.pos;
    w.buf = EMPTY;
    slabUsed = (end + 7) & ~7;
    return slab.subarray(start, end);
  }
  if (!(buf instanceof Uint8Array)) badValue('output buffer', buf);
  const target = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (!isUint(offset, target.length)) badValue('offset', offset);
  w.reset(target, offset, Math.min(target.length, offset + MAX_MESSAGE_SIZE));
  writeMessage(w, message);
  const end = w.pos;
  w.buf = EMPTY;
  return target.subarray(offset, end);
}

/**
 * Exact number of bytes `encode(message)` produces, compression included.
 * Cost: a full encode into the scratch buffer (no allocation).
 *
 * @throws PacketError like {@link encode}.
 */
export function encodingLength(message: MessageInit): number {
  const w = writer;
  w.reset(scratchBuffer(), 0, MAX_MESSAGE_SIZE);
  writeMessage(w, message);
  w.buf = EMPTY;
  return w.pos;
}
