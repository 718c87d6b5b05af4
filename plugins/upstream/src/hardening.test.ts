/**
 * The hardening issue, one test per finding, against FakeUpstream servers on
 * real loopback sockets. Each of these failed on the code before the fix
 * (they only use the plugin factory, a resolver and the fake upstream, so
 * they run unchanged against the old code).
 */
import { Writable } from 'node:stream';
import { type HeimdallPlugin, METRICS, type Registry } from '@heimdall/core';
import { decode, encode, MessageReader, OptionCode } from '@heimdall/core/packet';
import { systemClock } from '@heimdall/core/pipeline';
import { expectEde, expectRcode, query, record, testResolver } from '@heimdall/testing';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { upstream } from './index.js';
import { closeAll, fake, resolvers } from '../test/harness.js';

afterEach(closeAll);

async function resolver(plugins: HeimdallPlugin[], options: Parameters<typeof testResolver>[1] = {}) {
  const r = testResolver(plugins, { clock: systemClock, ...options });
  resolvers.push(r);
  await r.start();
  return r;
}

/** A pino logger at `info` whose lines land in `lines`. */
function capturedLogger() {
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  return { logger, lines };
}

async function metric(r: { container: { get<T>(t: symbol): T } }, line: string): Promise<number | undefined> {
  const text = await r.container.get<Registry>(METRICS).metrics();
  const m = new RegExp(`^${line.replace(/[{}[\]()+.*?^$|\\]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('hardening: forwarded answers are ours', () => {
  it('our header bits (RA=1, AA=0, CD echoed, AD per RFC 6840 §5.8) and our OPT (payload, DO, EDE only)', async () => {
    const up = await fake();
    // The upstream claims authority, sets AD and CD, withholds RA, advertises 4096 and sends NSID, a cookie and padding.
    up.otherwise({
      raw: (q) => {
        const m = decode(q);
        return encode({
          id: m.id,
          qr: true,
          rd: m.rd,
          aa: true,
          ra: false,
          ad: true,
          cd: !m.cd,
          questions: m.questions,
          answers: [{ name: m.questions[0]!.name, type: 1, ttl: 60, data: '192.0.2.1' }],
          edns: {
            udpPayloadSize: 4096,
            dnssecOk: true,
            options: [
              { code: OptionCode.NSID, data: Buffer.from('pop-42') },
              { code: OptionCode.COOKIE, client: Buffer.alloc(8, 1), server: Buffer.alloc(8, 2) },
              { code: OptionCode.EDE, infoCode: 3, extraText: 'stale answer' },
              { code: OptionCode.PADDING, length: 12 },
            ],
          },
        });
      },
    });
    const r = await resolver([upstream({ servers: [up.endpoint] })], { ednsPayloadSize: 1400 });

    const plain = decode((await r.handle(query('a.example', 'A', { edns: true })))!);
    expect(plain).toMatchObject({ ra: true, aa: false, ad: false, cd: false });
    expect(plain.edns).toMatchObject({ udpPayloadSize: 1400, dnssecOk: false });
    expect(plain.edns!.options).toEqual([{ code: OptionCode.EDE, infoCode: 3, extraText: 'stale answer' }]);

    const dnssec = decode((await r.handle(query('b.example', 'A', { do: true, cd: true })))!);
    expect(dnssec).toMatchObject({ ra: true, aa: false, ad: true, cd: true });
    expect(dnssec.edns).toMatchObject({ udpPayloadSize: 1400, dnssecOk: true });

    const adOnly = decode((await r.handle(query('c.example', 'A', { ad: true })))!);
    expect(adOnly.ad).toBe(true);

    // A client without EDNS gets no OPT at all.
    const noEdns = decode((await r.handle(query('d.example')))!);
    expect(noEdns.edns).toBeUndefined();
    expect(noEdns).toMatchObject({ ra: true, aa: false, ad: false });
  });
});

describe('hardening: a malformed reply is a failed attempt', () => {
  it('fails over to the next upstream and counts it in health and metrics', async () => {
    const broken = await fake();
    const good = await fake('10.0.0.2');
    // Header and question fine, but it claims an answer that is not there.
    broken.otherwise({
      raw: (q) => {
        const qEnd = new MessageReader(q).questionEnd;
        const out = Buffer.from(q.subarray(0, qEnd));
        out[2] = 0x80 | (q[2]! & 0x01);
        out[3] = 0x80;
        out.writeUInt16BE(1, 6); // ANCOUNT 1
        out.writeUInt16BE(0, 10);
        return out;
      },
    });
    const r = await resolver([upstream({ servers: [broken.endpoint, good.endpoint], health: { maxFailures: 3, backoff: 60_000 } })]);
    for (let i = 0; i < 20; i++) {
      const m = decode((await r.handle(query(`m${i}.example`)))!);
      expect(m.rcode).toBe(0);
      expect(m.answers[0]!.data).toBe('10.0.0.2');
    }
    // Three malformed replies mark it down; later queries skip it.
    expect(broken.count()).toBe(3);
    expect(good.count()).toBe(20);
    expect(await metric(r, `heimdall_upstream_failures_total{upstream="udp://${broken.endpoint}",reason="protocol"}`)).toBe(3);
    expect(await metric(r, `heimdall_upstream_up{upstream="udp://${broken.endpoint}"}`)).toBe(0);
  });
});

describe('hardening: a late reply within the budget is accepted', () => {
  it('an upstream slower than the attempt timeout still answers the query', async () => {
    const slow = await fake('10.0.0.3');
    slow.otherwise((q) => ({ answers: [record(q.name, 'A', '10.0.0.3')], delayMs: 250 }));
    const r = await resolver([upstream({ servers: [slow.endpoint], timeout: 100, maxAttempts: 3, budget: 2000 })]);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => r.handle(query(`late${i}.example`))));
    for (const res of results) {
      expectRcode(res, 'NOERROR');
      expect(decode(res!).answers[0]!.data).toBe('10.0.0.3');
    }
  });
});

describe("hardening: the first SERVFAIL carries its EDE (the plugin answers before core's deadline)", () => {
  it('a black-holed upstream with a budget beyond the query deadline', async () => {
    const hole = await fake();
    hole.otherwise({ drop: true });
    const r = await resolver([upstream({ servers: [hole.endpoint], timeout: 100, maxAttempts: 4 })], { queryTimeoutMs: 400 });
    const started = Date.now();
    const res = await r.handle(query('hole.example', 'A', { edns: true }));
    expectRcode(res, 'SERVFAIL');
    expectEde(res, 22);
    expect(Date.now() - started).toBeLessThan(400);
  });
});

describe('hardening: rcodes move a query on but do not mark an upstream down', () => {
  it('a REFUSING upstream stays up and nothing is logged about its health', async () => {
    const refusing = await fake();
    const good = await fake('10.0.0.2');
    refusing.otherwise({ rcode: 'REFUSED' });
    const { logger, lines } = capturedLogger();
    const r = await resolver([upstream({ servers: [refusing.endpoint, good.endpoint] })], { logger });
    for (let i = 0; i < 30; i++) expect(decode((await r.handle(query(`r${i}.example`)))!).answers[0]!.data).toBe('10.0.0.2');
    expect(refusing.count()).toBe(30); // still first in line: it is up
    expect(await metric(r, `heimdall_upstream_up{upstream="udp://${refusing.endpoint}"}`)).toBe(1);
    expect(lines.filter((l) => l.includes('marked down') || l.includes('back up'))).toEqual([]);
  });

  it('a flapping upstream is logged once per interval, not once per change', async () => {
    const flappy = await fake();
    const good = await fake('10.0.0.2');
    // Every other query times out: with maxFailures 1 it goes down and comes back again and again.
    let n = 0;
    flappy.otherwise((q) => (n++ % 2 === 0 ? { drop: true } : [record(q.name, 'A', '10.0.0.1')]));
    const { logger, lines } = capturedLogger();
    const r = await resolver(
      [upstream({ servers: [flappy.endpoint, good.endpoint], timeout: 20, health: { maxFailures: 1, backoff: 10, probe: false, logInterval: 60_000 } })],
      {
        logger,
      },
    );
    // The loop takes about a second; the interval is a minute so that a slow machine cannot stretch it over two.
    for (let i = 0; i < 40; i++) {
      await r.handle(query(`f${i}.example`));
      await new Promise((res) => setTimeout(res, 12));
    }
    const health = lines.filter((l) => l.includes('marked down') || l.includes('back up'));
    expect(flappy.count()).toBeGreaterThan(10);
    expect(health.length).toBe(1);
  });
});

describe('hardening: in-flight work is bounded', () => {
  it('past maxInFlight a query is answered SERVFAIL at once (EDE 0), not cached, and counted', async () => {
    const hole = await fake();
    hole.otherwise({ drop: true });
    const noCache: boolean[] = [];
    const observe: HeimdallPlugin = {
      name: 'observe',
      middleware: () => async (ctx, next) => {
        await next();
        noCache.push(ctx.noCache);
      },
    };
    const r = await resolver([observe, upstream({ servers: [hole.endpoint], maxInFlight: 20, timeout: 1000, budget: 1500, maxAttempts: 1 })]);
    const started = Date.now();
    const pending = Array.from({ length: 100 }, (_, i) => r.handle(query(`b${i}.example`, 'A', { edns: true })));
    // The 80 over the bound are answered at once, while the 20 wait for the black hole.
    const shed = await Promise.all(pending.slice(20));
    expect(Date.now() - started).toBeLessThan(500);
    for (const res of shed) {
      expectRcode(res, 'SERVFAIL');
      expectEde(res, 0);
    }
    expect(noCache).toEqual(new Array(80).fill(true));
    expect(await metric(r, 'heimdall_upstream_in_flight')).toBe(20);
    expect(await metric(r, 'heimdall_upstream_shed_total{limit="global"}')).toBe(80);
    for (const res of await Promise.all(pending.slice(0, 20))) expectEde(res, 22);
    expect(hole.count()).toBe(20);
    expect(noCache.filter((x) => !x)).toHaveLength(20);
    expect(await metric(r, 'heimdall_upstream_in_flight')).toBe(0);
  });

  it('a saturated upstream is skipped; when every upstream is, the query is shed', async () => {
    const hole = await fake();
    const good = await fake('10.0.0.2');
    hole.otherwise({ drop: true });
    const r = await resolver([
      upstream({ servers: [hole.endpoint, good.endpoint], strategy: 'sequential', maxInFlightPerUpstream: 5, timeout: 1000, budget: 1500, maxAttempts: 1 }),
    ]);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => r.handle(query(`s${i}.example`))));
    // Five wait on the hole (its bound), the other three go straight to the good one.
    expect(results.filter((res) => decode(res!).answers[0]?.data === '10.0.0.2')).toHaveLength(3);
    expect(hole.count()).toBe(5);
    expect(good.count()).toBe(3);
    const r2 = await resolver([upstream({ servers: [hole.endpoint], maxInFlightPerUpstream: 3, timeout: 1000, budget: 1500 })], {});
    const all = Array.from({ length: 5 }, (_, i) => r2.handle(query(`t${i}.example`, 'A', { edns: true })));
    for (const res of await Promise.all(all.slice(3))) expectEde(res, 0);
    expect(await metric(r2, 'heimdall_upstream_shed_total{limit="upstream"}')).toBe(2);
    await Promise.all(all);
  });
});
