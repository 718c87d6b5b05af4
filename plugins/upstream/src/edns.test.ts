import { decode, encode, MessageReader, OptionCode, PacketError } from '@heimdall/core/packet';
import { query, response } from '@heimdall/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { forwardReply, prepareQuery } from './edns.js';
import { UpstreamError } from './errors.js';

const strip = { mode: 'strip' } as const;

describe('prepareQuery', () => {
  it('keeps ID, opcode, RD, AD, CD and the question; clears the rest; adds one OPT', () => {
    const q = Buffer.from(query('Example.COM', 'AAAA', { id: 0xbeef, cd: true, ad: true }));
    q[2]! |= 0x06; // AA + TC set by a confused client
    q[3]! |= 0xc5; // RA + Z + rcode 5
    const prep = prepareQuery(q, new MessageReader(q), strip, 1232, 1232);
    const m = decode(prep.query);
    expect(m).toMatchObject({ id: 0xbeef, qr: false, aa: false, tc: false, rd: true, ra: false, z: false, ad: true, cd: true, rcode: 0 });
    expect(m.questions).toEqual([{ name: 'Example.COM', type: 28, class: 1 }]);
    expect(m.edns).toMatchObject({ udpPayloadSize: 1232, dnssecOk: false, version: 0, options: [] });
    expect(m.answers.length + m.authorities.length + m.additionals.length).toBe(0);
    expect(prep.clientEdns).toBe(false);
    expect(prep.qEnd).toBe(new MessageReader(q).questionEnd);
    // AD=1 whatever the client sent (RFC 6840 §5.7); CD as the client sent it.
    const plain = Buffer.from(query('example.com', 'A'));
    expect(decode(prepareQuery(plain, new MessageReader(plain), strip, 1232, 1232).query)).toMatchObject({ ad: true, cd: false });
  });

  it('drops a query additional section other than our OPT and honours the payload size option', () => {
    const q = encode({
      id: 1,
      rd: true,
      questions: [{ name: 'a.example', type: 1 }],
      additionals: [{ name: 'x.example', type: 1, ttl: 1, data: '192.0.2.1' }],
      edns: { udpPayloadSize: 4096, dnssecOk: true, options: [{ code: OptionCode.PADDING, length: 20 }] },
    });
    const m = decode(prepareQuery(q, new MessageReader(q), strip, 1400, 1232).query);
    expect(m.additionals).toEqual([]);
    expect(m.edns).toMatchObject({ udpPayloadSize: 1400, dnssecOk: true, options: [] });
  });

  it('rejects what cannot be forwarded with BAD_QUERY', () => {
    const none = Buffer.from(query('a.example'));
    none.writeUInt16BE(0, 4);
    expect(() => prepareQuery(none, new MessageReader(none), strip, 1232, 1232)).toThrow(UpstreamError);
    const cut = query('a.example', 'A', { edns: true }).subarray(0, 35);
    expect(() => prepareQuery(cut, new MessageReader(cut), strip, 1232, 1232)).toThrow(/cannot forward/);
  });

  it('never throws anything but UpstreamError on garbage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 80 }), (bytes) => {
        const b = Buffer.from(bytes);
        try {
          prepareQuery(b, new MessageReader(b), { mode: 'forward' }, 1232, 1232);
        } catch (e) {
          expect(e).toBeInstanceOf(UpstreamError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('forwardReply: forwarded answers are ours', () => {
  const prepFor = (q: Buffer, policy: Parameters<typeof prepareQuery>[2] = strip, payload = 1232) =>
    prepareQuery(q, new MessageReader(q), policy, 1232, payload);
  /** An upstream's reply to `q` that sets everything a forwarder must not relay. */
  const upstreamReply = (q: Buffer, o: { ad?: boolean; aa?: boolean; ra?: boolean; cd?: boolean; edns?: boolean; do?: boolean } = {}) =>
    encode({
      id: decode(q).id,
      qr: true,
      rd: true,
      aa: o.aa ?? true,
      ra: o.ra ?? false,
      ad: o.ad ?? true,
      cd: o.cd ?? true,
      questions: [{ name: 'a.example', type: 1 }],
      answers: [{ name: 'a.example', type: 1, ttl: 60, data: '192.0.2.1' }],
      ...(o.edns === false
        ? {}
        : {
            edns: {
              udpPayloadSize: 4096,
              dnssecOk: o.do ?? true,
              options: [
                { code: OptionCode.NSID, data: Buffer.from('upstream-7') },
                { code: OptionCode.COOKIE, client: Buffer.alloc(8, 1), server: Buffer.alloc(8, 2) },
                { code: OptionCode.EDE, infoCode: 3, extraText: 'stale' },
                { code: OptionCode.CLIENT_SUBNET, family: 1, sourcePrefixLength: 24, scopePrefixLength: 24, address: '192.0.2.0' },
                { code: OptionCode.PADDING, length: 7 },
                { code: 65001, data: Buffer.from('hi') },
              ],
            },
          }),
    });

  it("header: RA=1, AA=0, CD echoed from the client, the upstream's AD kept for core to settle per client", () => {
    for (const [opts, ad] of [
      [{}, true],
      [{ ad: true }, true],
      [{ do: true }, true],
      [{ cd: true }, true],
    ] as const) {
      const q = query('a.example', 'A', { edns: true, ...opts });
      const m = decode(forwardReply(Buffer.from(upstreamReply(q, { cd: !('cd' in opts) })), prepFor(q)));
      expect(m, JSON.stringify(opts)).toMatchObject({ qr: true, ra: true, aa: false, ad, cd: 'cd' in opts, rd: true });
    }
    // The upstream did not set AD: never ours either.
    const q = query('a.example', 'A', { do: true, ad: true });
    expect(decode(forwardReply(Buffer.from(upstreamReply(q, { ad: false })), prepFor(q))).ad).toBe(false);
  });

  it('OPT: our payload size, the client DO, EDE kept; NSID, cookie, padding, ECS and unknown options dropped', () => {
    const q = query('a.example', 'A', { edns: true });
    const m = decode(forwardReply(Buffer.from(upstreamReply(q, { do: true })), prepFor(q, strip, 1400)));
    expect(m.edns).toMatchObject({ udpPayloadSize: 1400, dnssecOk: false, version: 0 });
    expect(m.edns!.options).toEqual([{ code: OptionCode.EDE, infoCode: 3, extraText: 'stale' }]);
    expect(m.answers).toHaveLength(1);
    const qDo = query('a.example', 'A', { do: true });
    expect(decode(forwardReply(Buffer.from(upstreamReply(qDo, { do: false })), prepFor(qDo))).edns!.dnssecOk).toBe(true);
    // clientSubnet: forward and a client that sent ECS: the upstream's ECS answer is kept.
    const ecs = { code: OptionCode.CLIENT_SUBNET, family: 1 as const, sourcePrefixLength: 24, scopePrefixLength: 0, address: '192.0.2.0' };
    const qEcs = query('a.example', 'A', { ednsOptions: [ecs] });
    const kept = decode(forwardReply(Buffer.from(upstreamReply(qEcs)), prepFor(qEcs, { mode: 'forward' })));
    expect(kept.edns!.options.map((o) => o.code)).toEqual([OptionCode.EDE, OptionCode.CLIENT_SUBNET]);
  });

  it('no OPT for a client that sent none; our OPT for one that did when the upstream sent none', () => {
    const plain = query('A.Example', 'A', { id: 7 });
    const m = decode(forwardReply(Buffer.from(upstreamReply(plain)), prepFor(plain)));
    expect(m.edns).toBeUndefined();
    expect(m.additionals).toEqual([]);
    expect(m.questions[0]!.name).toBe('A.Example');
    const withEdns = query('a.example', 'A', { do: true });
    const m2 = decode(forwardReply(Buffer.from(upstreamReply(withEdns, { edns: false })), prepFor(withEdns, strip, 1232)));
    expect(m2.edns).toMatchObject({ udpPayloadSize: 1232, dnssecOk: true, options: [] });
  });

  it('patches in place when the size does not change', () => {
    const q = query('a.example', 'A', { edns: true });
    const reply = Buffer.from(response(q, { edns: true }));
    expect(forwardReply(reply, prepFor(q))).toBe(reply);
    expect(decode(reply)).toMatchObject({ ra: true, aa: false });
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
          forwardReply(b, prep);
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
