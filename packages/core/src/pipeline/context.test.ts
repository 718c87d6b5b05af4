import { StateKey } from './state.js';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { decode, encode, type MessageInit, OptionCode, RecordType, type ResourceRecordInit } from '../packet/index.js';
import { systemClock } from '../util/clock.js';
import { cacheKeyOf, QuestionKeyInfo } from '../wire/key.js';
import { silentLogger } from '../util/logger.js';
import { type ContextEnv, DnsContext, headerOnlyResponse, withEde } from './context.js';

const env: ContextEnv = { logger: silentLogger(), clock: systemClock, ednsPayloadSize: 1232, recursionAvailable: true, queryTimeoutMs: 5000 };
const client = { address: '192.0.2.1', port: 1234, family: 4 as const, transport: 'udp' as const };

function ctxFor(init: MessageInit): DnsContext {
  return new DnsContext(encode(init), client, env);
}

describe('DnsContext answering', () => {
  test('the direct A/AAAA path produces what the encoder produces', () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
    const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            ipv4.map((d) => ({ type: RecordType.A, d })),
            ipv6.map((d) => ({ type: RecordType.AAAA, d })),
          ),
          { minLength: 1, maxLength: 10 },
        ),
        fc.record({
          edns: fc.boolean(),
          dnssecOk: fc.boolean(),
          cd: fc.boolean(),
          rd: fc.boolean(),
          aa: fc.boolean(),
          ede: fc.boolean(),
          ttl: fc.nat(2 ** 31 - 1),
          rcode: fc.constantFrom(0, 3),
        }),
        fc.constantFrom('Example.COM', 'a.b.c.d.e', ''),
        (recs, o, name) => {
          const query: MessageInit = {
            id: 0x5151,
            rd: o.rd,
            cd: o.cd,
            questions: [{ name, type: recs[0].type }],
            edns: o.edns ? { udpPayloadSize: 4096, dnssecOk: o.dnssecOk } : undefined,
          };
          const ctx = ctxFor(query);
          if (o.ede) ctx.ede(18, 'prohibited');
          const answers: ResourceRecordInit[] = recs.map((r) => ({ name: ctx.query.qname, type: r.type, ttl: o.ttl, data: r.d }));
          ctx.answer(answers, { aa: o.aa, rcode: o.rcode });
          const fast = decode(ctx.response!);
          const slow = decode(
            encode({
              id: 0x5151,
              qr: true,
              aa: o.aa,
              rd: o.rd,
              ra: true,
              cd: o.cd,
              rcode: o.rcode,
              questions: [{ name, type: recs[0].type }],
              answers,
              edns: o.edns
                ? { udpPayloadSize: 1232, dnssecOk: o.dnssecOk, options: o.ede ? [{ code: OptionCode.EDE, infoCode: 18, extraText: 'prohibited' }] : [] }
                : undefined,
            }),
          );
          expect(fast).toEqual(slow);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('falls back to the encoder for other shapes, and rejects bad addresses like it', () => {
    const ctx = ctxFor({ id: 1, questions: [{ name: 'x.test', type: RecordType.MX }] });
    ctx.answer([{ name: 'x.test', type: RecordType.MX, ttl: 5, data: { preference: 10, exchange: 'mx.x.test' } }]);
    expect(decode(ctx.response!).answers[0].data).toEqual({ preference: 10, exchange: 'mx.x.test' });
    const other = ctxFor({ id: 1, questions: [{ name: 'x.test', type: RecordType.A }] });
    other.answer([{ name: 'cname.x.test', type: RecordType.A, data: '192.0.2.1' }]);
    expect(decode(other.response!).answers[0].name).toBe('cname.x.test');
    const bad = ctxFor({ id: 1, questions: [{ name: 'x.test', type: RecordType.A }] });
    expect(() => bad.answer([{ name: bad.query.qname, type: RecordType.A, data: '300.1.1.1' }])).toThrow();
  });

  test('truncated(): TC=1, no records, question echoed, never cached', () => {
    const ctx = ctxFor({ id: 3, rd: true, questions: [{ name: 'X.test', type: RecordType.A }], edns: {} });
    ctx.truncated();
    const m = decode(ctx.response!);
    expect([m.tc, m.rcode, m.answers.length, m.questions[0]!.name, m.edns !== undefined]).toEqual([true, 0, 0, 'X.test', true]);
    expect(ctx.noCache).toBe(true);
    ctx.truncated(3);
    expect(decode(ctx.response!).rcode).toBe(3);
  });

  test('lazy parts: state, log, signal, remaining', () => {
    const ctx = ctxFor({ id: 1, questions: [{ name: 'x.test', type: RecordType.A }] });
    expect(ctx._state).toBeUndefined();
    const K = new StateKey<number>('k');
    const K2 = new StateKey<number>('k');
    expect(ctx.has(K)).toBe(false);
    ctx.set(K, 1);
    expect(ctx.get(K)).toBe(1);
    expect(ctx.get(K2)).toBeUndefined(); // keys compare by identity, not description
    expect(ctx.has(K)).toBe(true);
    expect(ctx._state).toBeUndefined(); // inline slots: nothing allocated for one or two keys
    ctx.set(K2, 2);
    const K3 = new StateKey<string>('k3');
    const K4 = new StateKey<string>('k4');
    ctx.set(K3, 'three');
    ctx.set(K4, 'four');
    ctx.set(K3, 'THREE');
    ctx.set(K, 10);
    expect([ctx.get(K), ctx.get(K2), ctx.get(K3), ctx.get(K4)]).toEqual([10, 2, 'THREE', 'four']);
    expect([ctx.has(K3), ctx.has(new StateKey('k3'))]).toEqual([true, false]);
    expect(ctx._log).toBeUndefined();
    expect(ctx.log).toBe(ctx.log);
    expect(ctx.signal.aborted).toBe(false);
    ctx._expire();
    expect(ctx.signal.aborted).toBe(true);
    const late = ctxFor({ id: 1, questions: [{ name: 'x.test', type: RecordType.A }] });
    late._expire();
    expect(late.signal.aborted).toBe(true); // created after expiry: aborted at once
    expect(late.remaining()).toBeGreaterThan(4000);
    expect(late.answered).toBe(false);
  });

  test('headerOnlyResponse and withEde', () => {
    const q = encode({ id: 0xabcd, opcode: 2, rd: true, cd: true, questions: [] });
    const h = decode(headerOnlyResponse(q, 4));
    expect(h).toMatchObject({ id: 0xabcd, qr: true, opcode: 2, rd: true, cd: true, rcode: 4, questions: [] });
    const noOpt = encode({ id: 1, qr: true, questions: [{ name: 'a', type: 1 }] });
    expect(withEde(noOpt, { code: 1 })).toBe(noOpt);
    expect(withEde(Buffer.from([1, 2, 3]), { code: 1 })).toEqual(Buffer.from([1, 2, 3]));
    const withOpt = encode({
      id: 1,
      qr: true,
      questions: [{ name: 'a', type: 1 }],
      additionals: [{ name: 'a', type: 1, data: '192.0.2.9' }],
      edns: { options: [] },
    });
    const out = decode(withEde(withOpt, { code: 9, text: 'é' }));
    expect(out.edns?.options).toEqual([{ code: OptionCode.EDE, infoCode: 9, extraText: 'é' }]);
    expect(out.additionals).toHaveLength(1);
  });
});

describe('DnsContext.questionKey', () => {
  const query = (name: string, type = 1, extra: Partial<MessageInit> = {}): MessageInit => ({
    id: 7,
    rd: true,
    questions: [{ name, type }],
    edns: { udpPayloadSize: 1232 },
    ...extra,
  });

  test('is cacheKeyOf of the request, computed on the first call only, with its name end, flags and folding', () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/), { minLength: 1, maxLength: 5 }),
        fc.constantFrom(1, 28, 16),
        fc.boolean(),
        (labels, type, edns) => {
          const name = labels.join('.');
          const ctx = ctxFor(query(name, type, edns ? {} : { edns: undefined }));
          expect(ctx.knownQuestionKey).toBeUndefined(); // nothing asked yet: not computed
          const info = new QuestionKeyInfo();
          const expected = cacheKeyOf(ctx.request, info);
          const key = ctx.questionKey();
          expect(key).toBe(expected);
          expect(ctx.knownQuestionKey).toBe(key);
          expect(ctx.questionNameEnd).toBe(info.nameEnd);
          expect(ctx.questionKeyFlags).toBe(info.flags);
          expect(ctx.questionNameFolded).toBe(name !== name.toLowerCase());
          // A second context for the same question gets the very same string (the shared memo).
          expect(ctxFor(query(name.toLowerCase(), type, edns ? {} : { edns: undefined })).questionKey()).toBe(key);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('null for a query no cache handles, and recomputed after a rewrite', () => {
    expect(ctxFor({ id: 1, opcode: 4, questions: [{ name: 'example.com', type: 1 }] }).questionKey()).toBeNull();
    expect(ctxFor({ id: 1, questions: [{ name: 'example.com', type: RecordType.AXFR }] }).questionKey()).toBeNull();
    const ctx = ctxFor(query('nas.lan'));
    const before = ctx.questionKey();
    ctx.rewrite({ name: 'nas.home.arpa' });
    expect(ctx.knownQuestionKey).toBeUndefined();
    const after = ctx.questionKey();
    expect(after).not.toBe(before);
    expect(after).toBe(cacheKeyOf(ctx.request, new QuestionKeyInfo()));
  });
});
