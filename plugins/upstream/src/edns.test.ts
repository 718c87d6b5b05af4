import { decode, encode, MessageReader, OptionCode, PacketError } from '@heimdall/core';
import { query, response } from '@heimdall/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { finishReply, ipToBytes, parseSubnet, prepareQuery } from './edns.js';
import { UpstreamError } from './errors.js';

const strip = { mode: 'strip' } as const;

describe('prepareQuery', () => {
  it('keeps ID, opcode, RD, AD, CD and the question; clears the rest; adds one OPT', () => {
    const q = Buffer.from(query('Example.COM', 'AAAA', { id: 0xbeef, cd: true, ad: true }));
    q[2]! |= 0x06; // AA + TC set by a confused client
    q[3]! |= 0xc5; // RA + Z + rcode 5
    const prep = prepareQuery(q, new MessageReader(q), strip, 1232);
    const m = decode(prep.query);
    expect(m).toMatchObject({ id: 0xbeef, qr: false, aa: false, tc: false, rd: true, ra: false, z: false, ad: true, cd: true, rcode: 0 });
    expect(m.questions).toEqual([{ name: 'Example.COM', type: 28, class: 1 }]);
    expect(m.edns).toMatchObject({ udpPayloadSize: 1232, dnssecOk: false, version: 0, options: [] });
    expect(m.answers.length + m.authorities.length + m.additionals.length).toBe(0);
    expect(prep.clientEdns).toBe(false);
    expect(prep.qEnd).toBe(new MessageReader(q).questionEnd);
  });

  it('drops a query additional section other than our OPT and honours the payload size option', () => {
    const q = encode({
      id: 1,
      rd: true,
      questions: [{ name: 'a.example', type: 1 }],
      additionals: [{ name: 'x.example', type: 1, ttl: 1, data: '192.0.2.1' }],
      edns: { udpPayloadSize: 4096, dnssecOk: true, options: [{ code: OptionCode.PADDING, length: 20 }] },
    });
    const m = decode(prepareQuery(q, new MessageReader(q), strip, 1400).query);
    expect(m.additionals).toEqual([]);
    expect(m.edns).toMatchObject({ udpPayloadSize: 1400, dnssecOk: true, options: [] });
  });

  it('rejects what cannot be forwarded with BAD_QUERY', () => {
    const none = Buffer.from(query('a.example'));
    none.writeUInt16BE(0, 4);
    expect(() => prepareQuery(none, new MessageReader(none), strip, 1232)).toThrow(UpstreamError);
    const cut = query('a.example', 'A', { edns: true }).subarray(0, 35);
    expect(() => prepareQuery(cut, new MessageReader(cut), strip, 1232)).toThrow(/cannot forward/);
  });

  it('never throws anything but UpstreamError on garbage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 80 }), (bytes) => {
        const b = Buffer.from(bytes);
        try {
          prepareQuery(b, new MessageReader(b), { mode: 'forward' }, 1232);
        } catch (e) {
          expect(e).toBeInstanceOf(UpstreamError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('finishReply', () => {
  const prepFor = (q: Buffer) => prepareQuery(q, new MessageReader(q), strip, 1232);

  it('restores the question case and removes OPT for a client without EDNS', () => {
    const q = query('WwW.ExAmPlE.com', 'A', { id: 7 });
    const prep = prepFor(q);
    const reply = response(query('www.example.com', 'A', { id: 7, edns: true }), { answers: [{ name: 'www.example.com', type: 'A', data: '192.0.2.1' }], edns: true });
    expect(decode(reply).edns).toBeDefined();
    const out = finishReply(Buffer.from(reply), q, prep, false);
    const m = decode(out);
    expect(m.questions[0]!.name).toBe('WwW.ExAmPlE.com');
    expect(m.edns).toBeUndefined();
    expect(m.additionals).toEqual([]);
    expect(m.answers).toHaveLength(1);
  });

  it('strips hop-by-hop options and ECS, keeps EDE and unknown options', () => {
    const q = query('a.example', 'A', { edns: true });
    const prep = prepFor(q);
    const reply = encode({
      id: 0x1234,
      qr: true,
      rd: true,
      ra: true,
      questions: [{ name: 'a.example', type: 1 }],
      answers: [{ name: 'a.example', type: 1, ttl: 60, data: '192.0.2.1' }],
      edns: {
        udpPayloadSize: 1232,
        options: [
          { code: OptionCode.COOKIE, client: Buffer.alloc(8, 1), server: Buffer.alloc(8, 2) },
          { code: OptionCode.EDE, infoCode: 3, extraText: 'stale' },
          { code: OptionCode.CLIENT_SUBNET, family: 1, sourcePrefixLength: 24, scopePrefixLength: 24, address: '192.0.2.0' },
          { code: OptionCode.PADDING, length: 7 },
          { code: 65001, data: Buffer.from('hi') },
        ],
      },
    });
    const out = finishReply(Buffer.from(reply), q, prep, false);
    const m = decode(out);
    expect(m.edns!.options.map((o) => o.code)).toEqual([OptionCode.EDE, 65001]);
    expect(m.answers).toHaveLength(1);
    const kept = decode(finishReply(Buffer.from(reply), q, prep, true));
    expect(kept.edns!.options.map((o) => o.code)).toEqual([OptionCode.EDE, OptionCode.CLIENT_SUBNET, 65001]);
  });

  it('returns the same buffer when nothing but the question changes', () => {
    const q = query('a.example', 'A', { edns: true });
    const reply = Buffer.from(response(q, { edns: true }));
    expect(finishReply(reply, q, prepFor(q), false)).toBe(reply);
  });

  it('raises BAD_RESPONSE (never anything else) for malformed records', () => {
    const q = query('a.example', 'A', { edns: true });
    const prep = prepFor(q);
    const good = response(q, { answers: [{ name: 'a.example', type: 'A', data: '192.0.2.1' }], edns: true });
    fc.assert(
      fc.property(fc.integer({ min: prep.qEnd, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const b = Buffer.from(good);
        b[at] = value;
        try {
          finishReply(b, q, prep, false);
        } catch (e) {
          expect(e).toBeInstanceOf(UpstreamError);
          expect((e as UpstreamError).code).toBe('BAD_RESPONSE');
          expect((e as Error).cause === undefined || (e as Error).cause instanceof PacketError).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('addresses', () => {
  it('parses IPs and subnets', () => {
    expect(ipToBytes('192.0.2.1')).toEqual(Buffer.from([192, 0, 2, 1]));
    expect(ipToBytes('::ffff:192.0.2.1')).toEqual(Buffer.from([192, 0, 2, 1]));
    expect(ipToBytes('2001:db8::1')!.toString('hex')).toBe('20010db8000000000000000000000001');
    expect(ipToBytes('::')!.toString('hex')).toBe('0'.repeat(32));
    expect(ipToBytes('fe80::1%eth0')!.toString('hex')).toBe('fe800000000000000000000000000001');
    expect(ipToBytes('64:ff9b::192.0.2.33')!.toString('hex')).toBe('0064ff9b0000000000000000c0000221');
    expect(ipToBytes('nope')).toBeNull();
    expect(parseSubnet('192.0.2.77/26')).toEqual({ family: 1, prefix: 26, bytes: Buffer.from([192, 0, 2, 64]) });
    expect(parseSubnet('2001:db8:ffff::/33')).toEqual({ family: 2, prefix: 33, bytes: Buffer.from([0x20, 0x01, 0x0d, 0xb8, 0x80]) });
    expect(parseSubnet('0.0.0.0/0')).toEqual({ family: 1, prefix: 0, bytes: Buffer.alloc(0) });
    expect(() => parseSubnet('192.0.2.0/33')).toThrow(/too long/);
    expect(() => parseSubnet('192.0.2.0')).toThrow(/address\/prefix/);
  });
});
