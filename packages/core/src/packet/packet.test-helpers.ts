/**
 * @internal Helpers shared by the codec tests (not exported from the package).
 */
import { expect } from 'vitest';
import { decode } from './decode.js';
import { encode, encodingLength } from './encode.js';
import type { Message, MessageInit, ResourceRecordInit } from './message.js';

/** Fills in the defaults `decode` reports, so a `MessageInit` can be compared with a decoded `Message`. */
export function normalize(m: MessageInit): Message {
  const rec = (r: ResourceRecordInit) => ({ name: r.name, type: r.type, class: r.class ?? 1, ttl: r.ttl ?? 0, data: r.data });
  const out: Message = {
    id: m.id ?? 0,
    qr: m.qr ?? false,
    opcode: m.opcode ?? 0,
    aa: m.aa ?? false,
    tc: m.tc ?? false,
    rd: m.rd ?? false,
    ra: m.ra ?? false,
    z: m.z ?? false,
    ad: m.ad ?? false,
    cd: m.cd ?? false,
    rcode: m.rcode ?? 0,
    questions: (m.questions ?? []).map((q) => ({ name: q.name, type: q.type, class: q.class ?? 1 })),
    answers: (m.answers ?? []).map(rec),
    authorities: (m.authorities ?? []).map(rec),
    additionals: (m.additionals ?? []).map(rec),
  };
  if (m.edns) {
    const rcode = m.rcode ?? 0;
    out.edns = {
      udpPayloadSize: m.edns.udpPayloadSize ?? 1232,
      extendedRcode: rcode > 15 ? rcode >>> 4 : (m.edns.extendedRcode ?? 0),
      version: m.edns.version ?? 0,
      dnssecOk: m.edns.dnssecOk ?? false,
      flags: m.edns.flags ?? 0,
      options: m.edns.options ?? [],
    };
    out.rcode = (rcode & 0xf) | (out.edns.extendedRcode << 4);
  }
  return out;
}

/**
 * The round-trip check used for every record type: encode, decode and
 * compare (with `expected` when the decoded form differs from the input);
 * `encodingLength` equals the bytes written; encoding at an offset into a
 * caller's buffer gives the same bytes and leaves the rest untouched.
 * Returns the wire bytes.
 */
export function roundTrip(m: MessageInit, expected: Message = normalize(m)): Buffer {
  const bytes = encode(m);
  expect(encodingLength(m)).toBe(bytes.length);
  expect(decode(bytes)).toEqual(expected);
  const offset = 7;
  const buf = Buffer.alloc(offset + bytes.length + 5, 0xaa);
  const view = encode(m, buf, offset);
  expect(view.length).toBe(bytes.length);
  expect(view.byteOffset).toBe(buf.byteOffset + offset);
  expect(Buffer.compare(buf.subarray(offset, offset + bytes.length), bytes)).toBe(0);
  expect(buf.subarray(0, offset).every((b) => b === 0xaa)).toBe(true);
  expect(buf.subarray(offset + bytes.length).every((b) => b === 0xaa)).toBe(true);
  expect(decode(view)).toEqual(expected);
  return bytes;
}

/** One-record response around `record`, for per-type round trips. */
export function withRecord(record: ResourceRecordInit): MessageInit {
  return {
    id: 42,
    qr: true,
    rd: true,
    ra: true,
    questions: [{ name: record.name, type: record.type }],
    answers: [record],
  };
}

/** Hex (whitespace and comments allowed) to bytes. */
export function hex(text: string): Buffer {
  return Buffer.from(
    text
      .split('\n')
      .map((l) => l.replace(/#.*$/, ''))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
}
