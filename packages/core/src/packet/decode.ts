/**
 * Full decoding of a message into plain objects.
 */
import { Buffer } from 'node:buffer';
import type { Edns } from './edns.js';
import { decodeOptions } from './edns-codec.js';
import { PacketError, truncated } from './errors.js';
import type { Message, Question, ResourceRecord } from './message.js';
import { NameCursor, readName } from './name.js';
import { decodeRdataAt } from './rdata/index.js';
import { RecordType } from './types.js';
import { formatIPv4 } from '../wire/ip.js';

// Names decoded so far in this message, by offset: a record name that is a
// single pointer to one of them (the usual 0xC00C) reuses the string.
// Scratch for the decode in progress (decoding is synchronous); the count of
// valid slots lives in the per-decode state.
const MEMO = 8;
const memoOffset = new Int32Array(MEMO);
const memoName: string[] = new Array(MEMO).fill('');

/** Per-decode state: the name cursor (end of the last name, expansion budget) and the memo fill. */
class DecodeState extends NameCursor {
  memoCount = 0;

  /** Starts a new message of `length` octets. */
  begin(length: number): void {
    this.reset(length);
    this.memoCount = 0;
  }
}

// One state object, reset per message: decoding is synchronous and calls no
// user code, so no two decodes overlap; it is passed explicitly to every
// reader (no result travels through it between calls).
const state = new DecodeState(0);

/** The name at `pos`; `st.end` is set to the offset after it. */
function nameAt(buf: Buffer, pos: number, st: DecodeState): string {
  const b = buf[pos];
  if (b >= 0xc0 && pos + 1 < buf.length) {
    const target = ((b & 0x3f) << 8) | buf[pos + 1];
    for (let i = 0; i < st.memoCount; i++) {
      if (memoOffset[i] === target) {
        st.end = pos + 2;
        return memoName[i];
      }
    }
  }
  const s = readName(buf, pos, st);
  if (st.memoCount < MEMO) {
    memoOffset[st.memoCount] = pos;
    memoName[st.memoCount++] = s;
  }
  return s;
}

/** @internal Wraps a Uint8Array as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  if (bytes instanceof Uint8Array) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new PacketError('INVALID_VALUE', -1, 'a message must be a Buffer or Uint8Array');
}

/**
 * Decodes a whole message. EDNS is lifted out of the additional section into
 * `message.edns`, and `rcode` is the full (extended) rcode. Binary fields are
 * copied, so the result does not alias `buf`. Trailing octets after the last
 * record are ignored. A TTL with the top bit set reads as 0 (RFC 2181 §8).
 * Work is linear in the message length: each name follows at most 127
 * pointers and all names together expand to at most `nameBudget(length)`
 * octets (else `POINTER_LIMIT`).
 *
 * Cost: one object per question/record plus its RDATA; for the hot path use
 * {@link MessageReader}, which decodes nothing until asked.
 *
 * @throws PacketError for any malformed input (and nothing else), including
 *   more than one question (`BAD_QUESTION`) and an OPT record outside the
 *   additional section (`BAD_OPT`).
 */
export function decode(bytes: Buffer | Uint8Array): Message {
  const buf = asBuffer(bytes);
  const len = buf.length;
  if (len < 12) throw truncated(len, 'the header');
  const flags = (buf[2] << 8) | buf[3];
  const qd = (buf[4] << 8) | buf[5];
  const an = (buf[6] << 8) | buf[7];
  const ns = (buf[8] << 8) | buf[9];
  const ar = (buf[10] << 8) | buf[11];
  // RFC 9619: a message has at most one question (QDCOUNT > 1 is FORMERR).
  if (qd > 1) throw new PacketError('BAD_QUESTION', 4, `QDCOUNT ${qd}: more than one question`);
  const st = state;
  st.begin(len);
  let pos = 12;
  const questions: Question[] = [];
  for (let i = 0; i < qd; i++) {
    const name = nameAt(buf, pos, st);
    pos = st.end;
    if (pos + 4 > len) throw truncated(pos, 'a question');
    questions.push({ name, type: (buf[pos] << 8) | buf[pos + 1], class: (buf[pos + 2] << 8) | buf[pos + 3] });
    pos += 4;
  }
  const answers: ResourceRecord[] = [];
  const authorities: ResourceRecord[] = [];
  const additionals: ResourceRecord[] = [];
  let edns: Edns | undefined;
  const total = an + ns + ar;
  for (let i = 0; i < total; i++) {
    const nameStart = pos;
    const name = nameAt(buf, pos, st);
    pos = st.end;
    if (pos + 10 > len) throw truncated(pos, 'a record header');
    const type = (buf[pos] << 8) | buf[pos + 1];
    const klass = (buf[pos + 2] << 8) | buf[pos + 3];
    // RFC 2181 §8: a TTL with the top bit set is treated as 0 (the OPT "TTL" is flags, read below).
    const ttl = buf[pos + 4] >= 0x80 ? 0 : buf[pos + 4] * 0x1000000 + ((buf[pos + 5] << 16) | (buf[pos + 6] << 8) | buf[pos + 7]);
    const rdlen = (buf[pos + 8] << 8) | buf[pos + 9];
    const rdata = pos + 10;
    pos = rdata + rdlen;
    if (pos > len) throw truncated(rdata, 'RDATA');
    if (type === RecordType.OPT) {
      if (i < an + ns) throw new PacketError('BAD_OPT', rdata - 10, 'OPT record outside the additional section');
      if (buf[nameStart] !== 0) throw new PacketError('BAD_OPT', nameStart, 'OPT record with a non-root owner name');
      if (edns !== undefined) throw new PacketError('DUPLICATE_OPT', rdata - 10, 'more than one OPT record');
      edns = {
        udpPayloadSize: klass,
        extendedRcode: buf[rdata - 6],
        version: buf[rdata - 5],
        dnssecOk: (buf[rdata - 4] & 0x80) !== 0,
        flags: ((buf[rdata - 4] & 0x7f) << 8) | buf[rdata - 3],
        options: rdlen === 0 ? [] : decodeOptions(buf, rdata, pos),
      };
      continue;
    }
    // The commonest record (A in class IN) skips the table dispatch.
    const data = type === RecordType.A && klass === 1 && rdlen === 4 ? formatIPv4(buf, rdata) : decodeRdataAt(buf, type, klass, rdata, rdlen, st);
    const rr: ResourceRecord = { name, type, class: klass, ttl, data };
    if (i < an) answers.push(rr);
    else if (i < an + ns) authorities.push(rr);
    else additionals.push(rr);
  }
  const message: Message = {
    id: (buf[0] << 8) | buf[1],
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >>> 11) & 0xf,
    aa: (flags & 0x400) !== 0,
    tc: (flags & 0x200) !== 0,
    rd: (flags & 0x100) !== 0,
    ra: (flags & 0x80) !== 0,
    z: (flags & 0x40) !== 0,
    ad: (flags & 0x20) !== 0,
    cd: (flags & 0x10) !== 0,
    rcode: (flags & 0xf) | (edns !== undefined ? edns.extendedRcode << 4 : 0),
    questions,
    answers,
    authorities,
    additionals,
    // Always present (undefined without OPT) so every decoded message has one shape.
    edns,
  };
  return message;
}
