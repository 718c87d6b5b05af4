import { describe, expect, it } from 'vitest';
import { decode } from './decode.js';
import { encode } from './encode.js';
import type { ResourceRecordInit } from './message.js';
import { MessageReader } from './reader.js';
import { truncateForUdp } from './truncate.js';
import { RecordType } from './types.js';

const a = (i: number): ResourceRecordInit => ({ name: 'www.example.com', type: RecordType.A, ttl: 60, data: `192.0.2.${i}` });

describe('truncateForUdp', () => {
  const big = encode({
    id: 7,
    qr: true,
    questions: [{ name: 'www.example.com', type: RecordType.A }],
    answers: Array.from({ length: 40 }, (_, i) => a(i)),
    authorities: [{ name: 'example.com', type: RecordType.NS, ttl: 60, data: 'ns.example.com' }],
    additionals: [{ name: 'ns.example.com', type: RecordType.A, ttl: 60, data: '192.0.2.53' }],
    edns: { udpPayloadSize: 512, dnssecOk: true },
  });

  it('returns the same buffer when it fits', () => {
    expect(truncateForUdp(big, big.length)).toBe(big);
  });

  it('drops whole records from the end, sets TC, keeps the OPT record', () => {
    const t = truncateForUdp(big, 512);
    expect(t.length).toBeLessThanOrEqual(512);
    const m = decode(t);
    expect(m.tc).toBe(true);
    expect(m.id).toBe(7);
    expect(m.questions).toEqual(decode(big).questions);
    expect(m.answers.length).toBeGreaterThan(0);
    expect(m.answers).toEqual(decode(big).answers.slice(0, m.answers.length));
    expect(m.authorities).toEqual([]);
    expect(m.edns).toEqual(decode(big).edns);
    expect(new MessageReader(t).dnssecOk).toBe(true);
  });

  it('does not set TC when only additional records are dropped (RFC 2181 §9)', () => {
    const msg = encode({
      qr: true,
      questions: [{ name: 'example.com', type: RecordType.NS }],
      answers: [{ name: 'example.com', type: RecordType.NS, data: 'ns.example.com' }],
      additionals: Array.from({ length: 10 }, (_, i) => ({ name: 'ns.example.com', type: RecordType.AAAA, data: `2001:db8::${i + 1}` })),
      edns: {},
    });
    const t = truncateForUdp(msg, msg.length - 1);
    const m = decode(t);
    expect(m.tc).toBe(false);
    expect(m.answers.length).toBe(1);
    expect(m.additionals.length).toBe(9);
    expect(m.edns).toBeDefined();
  });

  it('moves an OPT record that sat between additional records to the end of what is kept', () => {
    // OPT in the middle of the additional section (legal on the wire).
    const rrs = encode({ additionals: [a(1), a(2), a(3)] });
    const opt = encode({ edns: { udpPayloadSize: 1400 } }).subarray(12);
    const views = [...new MessageReader(rrs).records()];
    const cut = views[0].end;
    const msg = Buffer.concat([rrs.subarray(0, cut), opt, rrs.subarray(cut)]);
    msg.writeUInt16BE(4, 10);
    expect(decode(msg).additionals.length).toBe(3);
    const t = truncateForUdp(msg, msg.length - 1);
    const m = decode(t);
    expect(m.edns?.udpPayloadSize).toBe(1400);
    expect(m.additionals.length).toBe(2);
  });

  it('keeps header and question even when they alone exceed the size; drops OPT if it cannot fit', () => {
    const t = truncateForUdp(big, 20);
    const m = decode(t);
    expect(m.questions.length).toBe(1);
    expect(m.answers).toEqual([]);
    expect(m.edns).toBeUndefined();
    expect(m.tc).toBe(true);
  });

  it('rejects a bad size and accepts a Uint8Array', () => {
    for (const size of [Number.NaN, -1, 1.5, '512' as never]) {
      expect(() => truncateForUdp(big, size)).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
    }
    const t = truncateForUdp(new Uint8Array(big), 512);
    expect(decode(t).tc).toBe(true);
  });

  it('handles messages without OPT', () => {
    const plain = encode({ qr: true, questions: [{ name: 'x', type: 1 }], answers: Array.from({ length: 50 }, (_, i) => a(i)) });
    const t = truncateForUdp(plain, 512);
    expect(t.length).toBeLessThanOrEqual(512);
    expect(decode(t).tc).toBe(true);
    expect(decode(t).edns).toBeUndefined();
  });
});
