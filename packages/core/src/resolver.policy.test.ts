import { describe, expect, test } from 'vitest';
import { definePlugin } from './plugin/define.js';
import { decode, encode, Opcode, RecordClass, RecordType } from './packet/index.js';
import { createResolver, type ResolverOptions } from './resolver.js';
import { silentLogger } from './util/logger.js';

/** A chain that "forwards": it answers every query it sees and counts them. */
function forwarding() {
  const seen: string[] = [];
  const plugin = definePlugin({
    name: 'forward',
    setup: () => ({
      middleware: () => (ctx) => {
        seen.push(`${ctx.query.qname}/${ctx.query.qclass}/${ctx.query.qtype}`);
        ctx.answer([{ name: ctx.query.qname, type: RecordType.TXT, class: ctx.query.qclass, data: ['upstream-identity'] }]);
      },
    }),
  })();
  return { plugin, seen };
}

function resolver(extra: Partial<ResolverOptions> = {}) {
  const f = forwarding();
  return { r: createResolver({ plugins: [f.plugin], logger: silentLogger(), ...extra }), seen: f.seen };
}

const ask = (name: string, type: number, klass: number = RecordClass.IN, edns = true) =>
  encode({ id: 42, rd: true, questions: [{ name, type, class: klass }], ...(edns ? { edns: { udpPayloadSize: 4096, dnssecOk: true } } : {}) });

describe('queries core answers itself', () => {
  test('CHAOS identity queries are never forwarded: REFUSED by default, TXT when configured', async () => {
    const { r, seen } = resolver();
    for (const name of ['version.bind', 'hostname.bind', 'id.server', 'authors.bind']) {
      const res = decode((await r.handle(ask(name, RecordType.TXT, RecordClass.CH)))!);
      expect(res.rcode).toBe(5);
      expect(res.questions[0]).toMatchObject({ name, class: RecordClass.CH });
      expect(res.edns?.udpPayloadSize).toBe(1232);
    }
    expect(seen).toEqual([]);
    const configured = resolver({ chaos: { 'version.bind': 'heimdall' } });
    const res = decode((await configured.r.handle(ask('VERSION.BIND', RecordType.TXT, RecordClass.CH)))!);
    expect(res.rcode).toBe(0);
    expect(res.answers).toMatchObject([{ name: 'VERSION.BIND', type: RecordType.TXT, class: RecordClass.CH }]);
    expect((res.answers[0]!.data as Buffer[]).map(String)).toEqual(['heimdall']);
    expect(decode((await configured.r.handle(ask('hostname.bind', RecordType.TXT, RecordClass.CH)))!).rcode).toBe(5);
    expect(configured.seen).toEqual([]);
  });

  test('AXFR and IXFR get REFUSED, not a forward', async () => {
    const { r, seen } = resolver();
    for (const t of [251, 252]) expect(decode((await r.handle(ask('example.com', t)))!).rcode).toBe(5);
    expect(seen).toEqual([]);
  });

  test('ANY gets the RFC 8482 minimal answer by default; refused or forwarded when configured', async () => {
    const { r, seen } = resolver();
    const q = ask('example.com', 255);
    const res = decode((await r.handle(q))!);
    expect(res.rcode).toBe(0);
    expect(res.answers).toMatchObject([{ name: 'example.com', type: RecordType.HINFO, ttl: 3600, data: { cpu: 'RFC8482', os: '' } }]);
    expect((await r.handle(q))!.length).toBeLessThan(q.length + 40);
    expect(seen).toEqual([]);
    expect(decode((await resolver({ anyQueries: 'refused' }).r.handle(q))!).rcode).toBe(5);
    const fwd = resolver({ anyQueries: 'forward' });
    await fwd.r.handle(q);
    expect(fwd.seen).toEqual(['example.com/1/255']);
    expect(() => resolver({ anyQueries: 'all' as never })).toThrow('anyQueries: must be "rfc8482" or "refused" or "forward"');
  });

  test('ordinary queries still reach the chain', async () => {
    const { r, seen } = resolver();
    await r.handle(ask('example.com', RecordType.A));
    expect(seen).toEqual(['example.com/1/1']);
  });
});

describe('observer and admission plugins come before core answers', () => {
  /** An admission plugin that drops clients from 203.0.113.0/24 and lets the rest through (counting what it sees). */
  function gate(admission: boolean) {
    const seen: string[] = [];
    const plugin = definePlugin({
      name: 'gate',
      ...(admission ? { role: 'admission' as const } : {}),
      setup: () => ({
        middleware: () => (ctx, next) => {
          seen.push(`${ctx.query.qname}/${ctx.query.qclass}/${ctx.query.qtype}`);
          if (ctx.client.address.startsWith('203.0.113.')) return ctx.drop();
          return next();
        },
      }),
    })();
    return { plugin, seen };
  }

  test('CHAOS, AXFR and ANY from a dropped client get nothing; allowed clients get core answers, never the chain', async () => {
    const g = gate(true);
    const f = forwarding();
    const r = createResolver({ plugins: [g.plugin, f.plugin], logger: silentLogger(), chaos: { 'version.bind': 'heimdall' } });
    expect(r.chain).toEqual(['gate', 'forward']);
    const queries = [ask('version.bind', RecordType.TXT, RecordClass.CH), ask('example.com', 252), ask('example.com', 255)];
    for (const q of queries) expect(await r.handle(q, { address: '203.0.113.9' })).toBeNull();
    const answers = await Promise.all(queries.map(async (q) => decode((await r.handle(q, { address: '192.0.2.1' }))!)));
    expect(answers.map((a) => a.rcode)).toEqual([0, 5, 0]);
    expect(answers[2]!.answers[0]).toMatchObject({ type: RecordType.HINFO });
    expect(g.seen).toHaveLength(6);
    expect(f.seen).toEqual([]);
  });

  test('an observer ahead of the gate sees those queries and their answers too', async () => {
    const answered: number[] = [];
    const observer = definePlugin({
      name: 'watch',
      role: 'observer',
      setup: () => ({
        middleware: () => (ctx, next) => {
          const r = next();
          answered.push(ctx.response === null ? -1 : ctx.response[3]! & 15);
          return r;
        },
      }),
    })();
    const g = gate(true);
    const r = createResolver({ plugins: [observer, g.plugin, forwarding().plugin], logger: silentLogger() });
    await r.handle(ask('example.com', 252), { address: '192.0.2.1' });
    await r.handle(ask('version.bind', RecordType.TXT, RecordClass.CH), { address: '203.0.113.9' });
    expect(answered).toEqual([5, -1]);
  });

  test('without a role (or after a plugin with none) core answers first, as before', async () => {
    for (const plugins of [(g: ReturnType<typeof gate>) => [g.plugin], (g: ReturnType<typeof gate>) => [forwarding().plugin, g.plugin]]) {
      const g = gate(false);
      const r = createResolver({ plugins: plugins(g), logger: silentLogger(), chaos: { 'version.bind': 'heimdall' } });
      const res = await r.handle(ask('version.bind', RecordType.TXT, RecordClass.CH), { address: '203.0.113.9' });
      expect(decode(res!).rcode).toBe(0);
      expect(g.seen).toEqual([]);
    }
    const late = gate(true);
    const r = createResolver({ plugins: [forwarding().plugin, late.plugin], logger: silentLogger() });
    expect(decode((await r.handle(ask('example.com', 255), { address: '203.0.113.9' }))!).rcode).toBe(0);
    expect(late.seen).toEqual([]);
  });
});

describe('header-only replies carry our OPT and echo the question when it parses', () => {
  test('NOTIMP for another opcode: question and OPT (our payload, DO echoed)', async () => {
    const { r } = resolver();
    const q = encode({
      id: 9,
      opcode: Opcode.NOTIFY ?? 4,
      questions: [{ name: 'Example.COM', type: RecordType.SOA }],
      edns: { udpPayloadSize: 4096, dnssecOk: true },
    });
    const res = decode((await r.handle(q))!);
    expect(res.rcode).toBe(4);
    expect(res.opcode).toBe(4);
    expect(res.questions).toEqual([{ name: 'Example.COM', type: RecordType.SOA, class: 1 }]);
    expect(res.edns).toMatchObject({ udpPayloadSize: 1232, dnssecOk: true, version: 0 });
  });

  test('FORMERR for QDCOUNT 0 and 2: OPT kept, no question echoed', async () => {
    const { r } = resolver();
    const none = encode({ id: 9, questions: [], edns: { udpPayloadSize: 4096 } });
    const two = encode({
      id: 9,
      questions: [
        { name: 'a.test', type: 1 },
        { name: 'b.test', type: 1 },
      ],
      edns: { udpPayloadSize: 4096 },
    });
    for (const q of [none, two]) {
      const res = decode((await r.handle(q))!);
      expect(res.rcode).toBe(1);
      expect(res.questions).toEqual([]);
      expect(res.edns?.udpPayloadSize).toBe(1232);
      expect(res.edns?.dnssecOk).toBe(false);
    }
  });

  test('a compressed question name is never echoed (a pointer there cannot be decoded by the client)', async () => {
    const { r } = resolver();
    const q = Buffer.from([0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x00, 0, 1, 0, 1]); // opcode 2, qname = pointer to offset 0
    const res = (await r.handle(q))!;
    expect(res.length).toBe(12);
    expect(decode(res).rcode).toBe(4);
  });

  test('without OPT in the query there is none in the reply; a truncated message gets a bare header', async () => {
    const { r } = resolver();
    const q = encode({ id: 9, opcode: 2, questions: [{ name: 'a.test', type: 1 }] });
    const res = (await r.handle(q))!;
    expect(res.readUInt16BE(10)).toBe(0);
    expect(decode(res).questions).toHaveLength(1);
    const cut = encode({ id: 9, opcode: 2, questions: [{ name: 'a.test', type: 1 }], edns: {} }).subarray(0, 20);
    const bare = (await r.handle(cut))!;
    expect(bare.length).toBe(12);
    expect(bare[3]! & 15).toBe(4);
  });
});

describe('AD is settled per client at the end (RFC 6840 §5.8)', () => {
  /** A chain that answers with AD=1 whatever was asked, in one shared buffer (as a cache or dedup may hand on). */
  function adChain() {
    let shared: Buffer | null = null;
    const plugin = definePlugin({
      name: 'validated',
      setup: () => ({
        middleware: () => (ctx) => {
          const m = decode(ctx.request);
          shared = Buffer.from(
            encode({ ...m, qr: true, ra: true, ad: true, answers: [{ name: m.questions[0]!.name, type: RecordType.A, class: 1, ttl: 60, data: '192.0.2.1' }] }),
          );
          ctx.response = shared;
        },
      }),
    })();
    return { plugin, shared: () => shared };
  }
  const q = (opts: { ad?: boolean; do?: boolean; edns?: boolean }) =>
    encode({
      id: 7,
      rd: true,
      ad: opts.ad === true,
      questions: [{ name: 'signed.example', type: RecordType.A, class: 1 }],
      ...(opts.edns || opts.do ? { edns: { udpPayloadSize: 1232, dnssecOk: opts.do === true } } : {}),
    });

  test('a client that sent neither AD nor DO gets AD=0; AD or DO clients get it; the buffer handed on is not changed', async () => {
    const c = adChain();
    const r = createResolver({ plugins: [c.plugin], logger: silentLogger() });
    expect(decode((await r.handle(q({})))!).ad).toBe(false);
    expect(c.shared()![3]! & 0x20).toBe(0x20);
    expect(decode((await r.handle(q({ edns: true })))!).ad).toBe(false);
    expect(decode((await r.handle(q({ ad: true })))!).ad).toBe(true);
    expect(decode((await r.handle(q({ do: true })))!).ad).toBe(true);
  });
});
