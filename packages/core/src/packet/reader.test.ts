import { describe, expect, it } from 'vitest';
import { encode } from './encode.js';
import { PacketError } from './errors.js';
import { OptionCode } from './optioncodes.js';
import { hex } from './packet.test-helpers.js';
import { MessageReader } from './reader.js';
import { RecordType } from './types.js';

// dig +norec www.example.com A (33 bytes, no EDNS)
const QUERY = hex('abcd 0100 0001 0000 0000 0000 03777777 076578616d706c65 03636f6d 00 0001 0001');

describe('MessageReader', () => {
  it('reads header fields and flags', () => {
    const r = new MessageReader(QUERY);
    expect(QUERY.length).toBe(33);
    expect(r.id).toBe(0xabcd);
    expect([r.qr, r.opcode, r.aa, r.tc, r.rd, r.ra, r.z, r.ad, r.cd, r.rcode]).toEqual([false, 0, false, false, true, false, false, false, false, 0]);
    expect([r.qdcount, r.ancount, r.nscount, r.arcount]).toEqual([1, 0, 0, 0]);
    const all = Buffer.from(QUERY);
    all[2] = 0xff;
    all[3] = 0xff;
    const f = new MessageReader(all);
    expect([f.qr, f.opcode, f.aa, f.tc, f.rd, f.ra, f.z, f.ad, f.cd, f.rcode]).toEqual([true, 15, true, true, true, true, true, true, true, 15]);
  });

  it('reads the question lazily', () => {
    const r = new MessageReader(QUERY);
    expect(r.qname).toBe('www.example.com');
    expect(r.qtype).toBe(RecordType.A);
    expect(r.qclass).toBe(1);
    expect(r.questionEnd).toBe(33);
    expect(r.questionNameOffset).toBe(12);
  });

  it('validates the whole question name, pointers included, on first question access', () => {
    const selfPointer = hex('0000 0100 0001 0000 0000 0000 01 61 c00c 0001 0001');
    const r = new MessageReader(selfPointer);
    expect(() => r.questionEnd).toThrow(expect.objectContaining({ code: 'POINTER_LOOP' }));
    const ok = hex('0377 7777 0001 0000 0000 0000 01 61 c000 0001 0001');
    const good = new MessageReader(ok);
    expect(good.questionEnd).toBe(ok.length);
    expect(good.qname).toBe('a.www');
  });

  it('only validates the header in the constructor', () => {
    expect(() => new MessageReader(Buffer.alloc(11))).toThrow(PacketError);
    const r = new MessageReader(QUERY.subarray(0, 20));
    expect(r.id).toBe(0xabcd);
    expect(() => r.qtype).toThrow(PacketError);
  });

  it('builds a lowercased cache key from the wire bytes', () => {
    const upper = Buffer.from(QUERY);
    upper.write('WwW', 13, 'latin1');
    const a = new MessageReader(QUERY).cacheKey();
    const b = new MessageReader(upper).cacheKey();
    expect(a).toBe(b);
    expect(a).toBe('\x03www\x07example\x03com\x00\x00\x01\x00\x01');
    const aaaa = Buffer.from(QUERY);
    aaaa[32 - 2] = 0;
    aaaa[32 - 1] = 28;
    expect(new MessageReader(aaaa).cacheKey()).not.toBe(a);
    expect(new MessageReader(hex('0000 0000 0000 0000 0000 0000')).cacheKey()).toBe('');
  });

  it('keeps QTYPE/QCLASS octets out of the lowercasing (HTTPS=65 is not TYPE97)', () => {
    const https = encode({ questions: [{ name: 'a.example', type: 65 }] });
    const t97 = encode({ questions: [{ name: 'a.example', type: 97 }] });
    expect(new MessageReader(https).cacheKey()).not.toBe(new MessageReader(t97).cacheKey());
    const chClass = encode({ questions: [{ name: 'A.example', type: 1, class: 0x4141 }] });
    expect(new MessageReader(chClass).cacheKey().endsWith('\x00\x01AA')).toBe(true);
  });

  it('gives a compressed question name the same key as the plain one', () => {
    const plain = encode({ questions: [{ name: 'www.www', type: 1 }] });
    const compressed = hex('0000 0100 0001 0000 0000 0000 03 575757 c00c 0001 0001');
    // c00c points at the name itself: a loop, rejected.
    expect(() => new MessageReader(compressed).cacheKey()).toThrow(PacketError);
    // A pointer into the header is legal on the wire (it points backwards) and is followed.
    const viaHeader = hex('0377 7777 0001 0000 0000 0000 03 575757 c000 0001 0001');
    const r = new MessageReader(viaHeader);
    expect(r.qname).toBe('WWW.www');
    const k = r.cacheKey();
    expect(k).toBe(new MessageReader(plain).cacheKey());
    expect(new MessageReader(viaHeader).cacheKey()).toBe(k);
  });

  it('iterates records with offsets and decodes on demand', () => {
    const bytes = encode({
      id: 1,
      qr: true,
      questions: [{ name: 'www.example.com', type: RecordType.A }],
      answers: [
        { name: 'www.example.com', type: RecordType.CNAME, ttl: 60, data: 'web.example.com' },
        { name: 'web.example.com', type: RecordType.A, ttl: 30, data: '192.0.2.1' },
      ],
      authorities: [
        {
          name: 'example.com',
          type: RecordType.SOA,
          ttl: 900,
          data: { mname: 'ns.example.com', rname: 'hostmaster.example.com', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5 },
        },
      ],
      edns: { udpPayloadSize: 4096, dnssecOk: true, options: [{ code: OptionCode.COOKIE, client: Buffer.alloc(8, 1) }] },
    });
    const r = new MessageReader(bytes);
    const views = [...r.records()];
    expect(views.map((v) => [v.section, v.name, v.type, v.ttl])).toEqual([
      ['answer', 'www.example.com', 5, 60],
      ['answer', 'web.example.com', 1, 30],
      ['authority', 'example.com', 6, 900],
      ['additional', '', 41, 0x8000],
    ]);
    for (const v of views.slice(0, 3)) expect(bytes.readUInt32BE(v.ttlOffset)).toBe(v.ttl);
    expect(views[1].data()).toBe('192.0.2.1');
    expect(views[1].rdata()).toEqual(Buffer.from([192, 0, 2, 1]));
    expect([...r.records('authority')].map((v) => v.name)).toEqual(['example.com']);
    expect([...r.records('additional')].length).toBe(1);
    expect(() => r.records('answers' as never)).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
    expect(r.edns()).toEqual({
      udpPayloadSize: 4096,
      extendedRcode: 0,
      version: 0,
      dnssecOk: true,
      flags: 0,
      options: [{ code: OptionCode.COOKIE, client: Buffer.alloc(8, 1) }],
    });
    expect(r.dnssecOk).toBe(true);
    expect(r.maxUdpPayload).toBe(4096);
    expect(r.fullRcode).toBe(0);
  });

  it('extends the rcode with the OPT record', () => {
    const bytes = encode({ qr: true, rcode: 23, edns: {} });
    const r = new MessageReader(bytes);
    expect(r.rcode).toBe(7);
    expect(r.fullRcode).toBe(23);
    expect(new MessageReader(QUERY).maxUdpPayload).toBe(512);
    expect(new MessageReader(QUERY).edns()).toBeNull();
  });

  it('rejects two OPT records', () => {
    const one = encode({ edns: {} });
    const opt = one.subarray(12);
    const two = Buffer.concat([one, opt]);
    two[11] = 2;
    expect(() => new MessageReader(two).edns()).toThrow(expect.objectContaining({ code: 'DUPLICATE_OPT' }));
  });
});
