import { decode, MessageReader, OptionCode } from '@heimdall/core/packet';
import { Registry } from 'prom-client';
import { expectAnswers, expectRcode, FakeUpstream, query, record } from '@heimdall/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UpstreamClient } from './client.js';
import { type UpstreamError, UpstreamExhaustedError } from './errors.js';
import type { Strategy, UpstreamOptionsInput } from './options.js';

const STRATEGIES: Strategy[] = ['sequential', 'round-robin', 'random', 'fastest', 'parallel'];
import { answer, dohReply, dohServer, tcpServer, testCert } from '../test/servers.js';
import { closeAll, fake, open } from '../test/harness.js';

afterEach(closeAll);

/** Short timeouts for the failure tests; tests where no upstream should time out pass `timeout: 1000` (robust on a loaded machine). */
function client(options: UpstreamOptionsInput): UpstreamClient {
  const c = UpstreamClient.create({ timeout: 150, ...options });
  open.push(c);
  return c;
}
const addr = (b: Buffer) => (decode(b).answers[0]?.data as string) ?? null;
async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const t = Date.now();
  const v = await p;
  return [v, Date.now() - t];
}
async function rejection(p: Promise<unknown>): Promise<UpstreamError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e) => e as UpstreamError,
  );
}

describe('UpstreamClient: strategies and failover', () => {
  it('sequential: fails over after the attempt timeout, then skips the upstream once it is down', async () => {
    const a = await fake('10.0.0.1');
    const b = await fake('10.0.0.2');
    a.otherwise({ drop: true });
    const c = client({ servers: [a.endpoint, b.endpoint], health: { maxFailures: 2, backoff: 5000 } });
    for (let i = 0; i < 2; i++) {
      const [r, ms] = await timed(c.resolve(query(`s${i}.example`)));
      expect(addr(r)).toBe('10.0.0.2');
      // Waited for A's 150 ms timeout (libuv's cached loop time can make timers look early under load).
      expect(ms).toBeGreaterThanOrEqual(100);
      expect(ms).toBeLessThan(800);
    }
    const sa = c.servers.get(`udp://${a.endpoint}`)!;
    expect(sa.health.down).toBe(true);
    expect(sa.stats.failures.timeout).toBe(2);
    const [r, ms] = await timed(c.resolve(query('fast.example')));
    expect(addr(r)).toBe('10.0.0.2');
    expect(ms).toBeLessThan(140); // did not wait for the 150 ms timeout
    expect(a.count('fast.example')).toBe(0);
  });

  it('round-robin spreads queries evenly', async () => {
    const ups = [await fake('10.0.0.1'), await fake('10.0.0.2'), await fake('10.0.0.3')];
    const c = client({ servers: ups.map((u) => u.endpoint), strategy: 'round-robin', timeout: 1000 });
    for (let i = 0; i < 30; i++) await c.resolve(query(`rr${i}.example`));
    expect(ups.map((u) => u.counts.udp)).toEqual([10, 10, 10]);
  });

  it('random uses every upstream', async () => {
    const ups = [await fake('10.0.0.1'), await fake('10.0.0.2'), await fake('10.0.0.3')];
    const c = client({ servers: ups.map((u) => u.endpoint), strategy: 'random', timeout: 1000 });
    for (let i = 0; i < 60; i++) await c.resolve(query(`r${i}.example`));
    for (const u of ups) expect(u.counts.udp).toBeGreaterThan(5);
  });

  it('fastest prefers the upstream with the lower RTT average', async () => {
    const slow = await fake('10.0.0.1');
    const quick = await fake('10.0.0.2');
    slow.otherwise((q) => ({ answers: [record(q.name, 'A', '10.0.0.1')], delayMs: 60 }));
    const c = client({ servers: [slow.endpoint, quick.endpoint], strategy: 'fastest', timeout: 1000 });
    for (let i = 0; i < 40; i++) await c.resolve(query(`f${i}.example`));
    expect(quick.counts.udp).toBeGreaterThan(30);
    expect(c.servers.get(`udp://${slow.endpoint}`)!.health.rtt).toBeGreaterThan(c.servers.get(`udp://${quick.endpoint}`)!.health.rtt);
  });

  it('parallel asks two and takes the first good answer', async () => {
    const slow = await fake('10.0.0.1');
    const quick = await fake('10.0.0.2');
    slow.otherwise((q) => ({ answers: [record(q.name, 'A', '10.0.0.1')], delayMs: 300 }));
    const c = client({ servers: [slow.endpoint, quick.endpoint], strategy: 'parallel', timeout: 1000 });
    for (let i = 0; i < 5; i++) {
      const [r, ms] = await timed(c.resolve(query(`p${i}.example`)));
      expect(addr(r)).toBe('10.0.0.2');
      expect(ms).toBeLessThan(250);
    }
    expect(slow.counts.udp).toBe(5);
    expect(quick.counts.udp).toBe(5);
  });

  it('parallel: a SERVFAIL loses to a good answer; two failures fall through to a third upstream', async () => {
    const bad = await fake();
    const dead = await fake();
    const good = await fake('10.0.0.9');
    bad.otherwise({ rcode: 'SERVFAIL' });
    dead.otherwise({ drop: true });
    const c = client({ servers: [bad.endpoint, dead.endpoint, good.endpoint], strategy: 'parallel', maxAttempts: 3, health: { maxFailures: 0 } });
    for (let i = 0; i < 6; i++) expect(addr(await c.resolve(query(`pp${i}.example`)))).toBe('10.0.0.9');
  });

  it('retries on SERVFAIL/REFUSED and returns the last such answer when nothing better comes', async () => {
    const a = await fake();
    const b = await fake('10.0.0.2');
    a.otherwise({ rcode: 'REFUSED' });
    const c = client({ servers: [a.endpoint, b.endpoint] });
    expect(addr(await c.resolve(query('x.example')))).toBe('10.0.0.2');
    b.otherwise({ rcode: 'SERVFAIL' });
    expectRcode(await c.resolve(query('y.example')), 'SERVFAIL');
  });

  it('an all-down group still tries its best candidate; exhaustion carries EDE 23 or 22', async () => {
    const gone = await FakeUpstream.start({ tcp: false });
    const port = gone.port;
    await gone.close();
    const c = client({ servers: [`127.0.0.1:${port}`], health: { maxFailures: 1, backoff: 10_000 } });
    const e1 = await rejection(c.resolve(query('a.example')));
    expect(e1).toBeInstanceOf(UpstreamExhaustedError);
    expect((e1 as UpstreamExhaustedError).ede).toBe(23);
    const s = [...c.servers.values()][0]!;
    expect(s.health.down).toBe(true);
    const before = s.stats.requests;
    await rejection(c.resolve(query('b.example')));
    expect(s.stats.requests).toBeGreaterThan(before);

    const silent = await fake();
    silent.otherwise({ drop: true });
    // Slow attempts stay in the race until the budget: exhaustion comes with it.
    const c2 = client({ servers: [silent.endpoint], maxAttempts: 2, budget: 400 });
    const [e2, ms] = await timed(rejection(c2.resolve(query('t.example'))));
    expect((e2 as UpstreamExhaustedError).ede).toBe(22);
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(silent.counts.udp).toBe(2);
  });

  it('stops at the deadline even with attempts left', async () => {
    const silent = await fake();
    silent.otherwise({ drop: true });
    const c = client({ servers: [silent.endpoint], timeout: 1000, maxAttempts: 5 });
    const [e, ms] = await timed(rejection(c.resolve(query('d.example'), { deadline: Date.now() + 120 })));
    expect(e.code).toBe('EXHAUSTED');
    expect(ms).toBeGreaterThanOrEqual(80);
    expect(ms).toBeLessThan(900); // not the 1000 ms attempt timeout
  });

  it('probes a down upstream and brings it back when it answers again', async () => {
    const a = await fake('10.0.0.1');
    const b = await fake('10.0.0.2');
    a.otherwise({ drop: true });
    const c = client({ servers: [a.endpoint, b.endpoint], timeout: 80, health: { maxFailures: 1, backoff: 100, maxBackoff: 400 } });
    expect(addr(await c.resolve(query('one.example')))).toBe('10.0.0.2');
    const sa = c.servers.get(`udp://${a.endpoint}`)!;
    expect(sa.health.down).toBe(true);
    // A probe after the 100 ms backoff reaches the (still dropping) upstream and fails: it stays down.
    await vi.waitFor(() => expect(a.count('', 'NS')).toBeGreaterThanOrEqual(1), { timeout: 3000, interval: 5 });
    expect(sa.health.down).toBe(true);
    a.otherwise((q) => (q.type === 1 ? [record(q.name, 'A', '10.0.0.1')] : {}));
    await vi.waitFor(() => expect(sa.health.down).toBe(false), { timeout: 3000, interval: 5 });
    expect(addr(await c.resolve(query('two.example')))).toBe('10.0.0.1');
  });

  it('passive recovery (probe: false) lets a real query through after the backoff', async () => {
    const a = await fake('10.0.0.1');
    const b = await fake('10.0.0.2');
    a.otherwise({ drop: true });
    const c = client({ servers: [a.endpoint, b.endpoint], timeout: 80, health: { maxFailures: 1, backoff: 100, probe: false } });
    await c.resolve(query('one.example'));
    expect(addr(await c.resolve(query('two.example')))).toBe('10.0.0.2');
    expect(a.count('two.example')).toBe(0);
    a.otherwise((q) => [record(q.name, 'A', '10.0.0.1')]);
    // Once the 100 ms backoff has passed, a real query goes to it again (before, they all go to b).
    await vi.waitFor(async () => expect(addr(await c.resolve(query('three.example')))).toBe('10.0.0.1'), { timeout: 3000, interval: 10 });
    expect(c.servers.get(`udp://${a.endpoint}`)!.health.down).toBe(false);
  });
});

describe.each(STRATEGIES)('UpstreamClient: failover with strategy %s', (strategy) => {
  it('answers every query while one upstream is dead, and stops paying for it once it is down', async () => {
    const dead = await fake('10.0.0.1');
    const good = await fake('10.0.0.2');
    dead.otherwise({ drop: true });
    const c = client({ servers: [dead.endpoint, good.endpoint], strategy, timeout: 100, health: { maxFailures: 2, backoff: 10_000 } });
    for (let i = 0; i < 24; i++) {
      const [r, ms] = await timed(c.resolve(query(`${strategy}${i}.example`)));
      expect(addr(r)).toBe('10.0.0.2');
      expect(ms).toBeLessThan(1000);
    }
    // Only about maxFailures (2) queries paid for the dead upstream (a third when the good one was
    // slow too on a loaded machine and the attempt cycle came back to it); parallel never waits for it.
    if (strategy !== 'parallel' && strategy !== 'fastest') expect(dead.counts.udp).toBeLessThanOrEqual(3);
    if (strategy === 'fastest') {
      // One timeout's RTT penalty is enough for the weighted draw to avoid it.
      expect(dead.counts.udp).toBeLessThanOrEqual(3);
    } else {
      // parallel: the dead upstream's attempts time out in the background.
      await vi.waitFor(() => expect(c.servers.get(`udp://${dead.endpoint}`)!.health.down).toBe(true), { timeout: 3000, interval: 5 });
      const before = dead.counts.udp;
      for (let i = 0; i < 5; i++) expect(addr(await c.resolve(query(`after${i}.example`)))).toBe('10.0.0.2');
      expect(dead.counts.udp).toBe(before);
    }
  });
});

describe('UpstreamClient: encrypted upstreams through URLs', () => {
  it('tls:// with a fragment name and a CA from the options', async () => {
    const cert = await testCert();
    const srv = await tcpServer((q, write) => write(answer(q, { address: '10.9.9.9' })), cert);
    open.push(srv);
    const c = client({ servers: [`tls://127.0.0.1:${srv.port}#dns.test`], tls: { ca: cert.cert }, timeout: 1000 });
    expect(addr(await c.resolve(query('dot.example')))).toBe('10.9.9.9');
    expect(addr(await c.resolve(query('dot2.example')))).toBe('10.9.9.9');
    expect(srv.connections).toBe(1);
    // Wrong name in the fragment: certificate check fails → network error → EDE 23.
    const bad = client({ servers: [`tls://127.0.0.1:${srv.port}#other.test`], tls: { ca: cert.cert }, maxAttempts: 1 });
    expect(((await rejection(bad.resolve(query('x.example')))) as UpstreamExhaustedError).ede).toBe(23);
  });

  it('https:// POST and GET', async () => {
    const cert = await testCert();
    const srv = await dohServer((q, stream) => dohReply(stream, answer(q, { address: '10.8.8.8' })), cert);
    open.push(srv);
    const post = client({ servers: [`https://127.0.0.1:${srv.port}/dns-query#dns.test`], tls: { ca: cert.cert }, timeout: 1000 });
    expect(addr(await post.resolve(query('doh.example', 'A', { id: 4242 })))).toBe('10.8.8.8');
    const get = client({ servers: [`https://127.0.0.1:${srv.port}/dns-query#dns.test`], tls: { ca: cert.cert }, https: { method: 'GET' }, timeout: 1000 });
    const r = await get.resolve(query('doh.example', 'A', { id: 4243 }));
    expect(r.readUInt16BE(0)).toBe(4243);
    expect(srv.requests.map((x) => x.method)).toEqual(['POST', 'GET']);
  });
});

describe('UpstreamClient: protocol details', () => {
  it('retries over TCP on TC and returns the full answer', async () => {
    const up = await fake();
    const many = Array.from({ length: 60 }, (_, i) => record('big.example', 'A', `10.1.0.${i}`));
    up.on('big.example', 'A', { answers: many, truncate: true });
    const c = client({ servers: [up.endpoint], timeout: 1000 });
    const r = await c.resolve(query('big.example', 'A', { id: 77 }));
    expect(decode(r).answers).toHaveLength(60);
    expect(r.readUInt16BE(0)).toBe(77);
    expect(up.count('big.example', 'A', 'tcp')).toBe(1);
    expect([...c.servers.values()][0]!.stats.truncated).toBe(1);
  });

  it('ignores wrong-ID, wrong-question and wrong-port replies (counted) and fails over', async () => {
    for (const spoof of [{ wrongId: true }, { wrongQuestion: true }, { fromOtherPort: true }]) {
      const evil = await fake('6.6.6.6');
      const good = await fake('10.0.0.2');
      evil.otherwise((q) => ({ answers: [record(q.name, 'A', '6.6.6.6')], ...spoof }));
      const c = client({ servers: [evil.endpoint, good.endpoint] });
      expect(addr(await c.resolve(query('victim.example')))).toBe('10.0.0.2');
      const s = c.servers.get(`udp://${evil.endpoint}`)!;
      expect(s.stats.failures.timeout).toBe(1);
      // Wrong port replies are dropped by the kernel (connected socket) before we can count them.
      if (!spoof.fromOtherPort) expect(s.stats.spoofs).toBe(1);
    }
  });

  it('keeps the client ID and question case; rewrites EDNS for the upstream and back', async () => {
    const up = await fake();
    const c = client({ servers: [up.endpoint], timeout: 1000 });
    // No EDNS from the client: upstream still sees 1232, the client gets no OPT back.
    const r1 = await c.resolve(query('MiXeD.ExAmPlE', 'A', { id: 4321, cd: true }));
    const m1 = decode(r1);
    expect(m1.id).toBe(4321);
    expect(m1.questions[0]!.name).toBe('MiXeD.ExAmPlE');
    expect(m1.edns).toBeUndefined();
    const sent1 = up.received[0]!.message;
    expect(sent1.edns?.udpPayloadSize).toBe(1232);
    expect(sent1.edns?.dnssecOk).toBe(false);
    expect(sent1.cd).toBe(true);
    expect(sent1.rd).toBe(true);

    // DO, cookie and ECS from the client: DO forwarded, cookie and ECS stripped (default policy).
    const q2 = query('do.example', 'A', {
      do: true,
      ednsOptions: [
        { code: OptionCode.COOKIE, client: Buffer.alloc(8, 1) },
        { code: OptionCode.CLIENT_SUBNET, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, address: '198.51.100.0' },
      ],
    });
    const m2 = decode(await c.resolve(q2));
    expect(m2.edns).toBeDefined();
    const sent2 = up.received[1]!.message;
    expect(sent2.edns?.dnssecOk).toBe(true);
    expect(sent2.edns?.options).toEqual([]);
  });

  it('falls back to plain DNS for an upstream that answers FORMERR to EDNS (RFC 6891 §7)', async () => {
    const up = await fake('10.0.0.5');
    const formerr = (bytes: Buffer) => {
      const qEnd = new MessageReader(bytes).questionEnd;
      const out = Buffer.from(bytes.subarray(0, qEnd));
      out[2] = 0x80 | (bytes[2]! & 0x79);
      out[3] = 0x01; // FORMERR
      out.writeUInt16BE(0, 10);
      return out;
    };
    up.otherwise((q) => (q.message.edns ? { raw: formerr(q.bytes) } : [record(q.name, 'A', '10.0.0.5')]));
    const c = client({ servers: [up.endpoint], timeout: 1000 });
    const m = decode(await c.resolve(query('old.example', 'A', { edns: true, do: true })));
    expect(m.answers[0]!.data).toBe('10.0.0.5');
    expect(m.rcode).toBe(0);
    expect(up.received.map((r) => r.message.edns !== undefined)).toEqual([true, false]);
    expect([...c.servers.values()][0]!.stats.ednsFallbacks).toBe(1);
  });

  it('client subnet: forward and set policies', async () => {
    const up = await fake();
    const ecs = { code: OptionCode.CLIENT_SUBNET, family: 1 as const, sourcePrefixLength: 24, scopePrefixLength: 0, address: '198.51.100.0' };
    const fwd = client({ servers: [up.endpoint], clientSubnet: 'forward', timeout: 1000 });
    await fwd.resolve(query('f.example', 'A', { ednsOptions: [ecs] }));
    expect(up.received[0]!.message.edns?.options).toEqual([ecs]);

    const set = client({ servers: [up.endpoint], clientSubnet: { mode: 'set', ipv4Prefix: 24, ipv6Prefix: 48 }, timeout: 1000 });
    await set.resolve(query('s.example'), { client: { address: '203.0.113.77', port: 1, family: 4, transport: 'udp' } });
    expect(up.received[1]!.message.edns?.options).toEqual([{ ...ecs, address: '203.0.113.0' }]);
    await set.resolve(query('s6.example'), { client: { address: '2001:db8:aa:bb::1', port: 1, family: 6, transport: 'udp' } });
    expect(up.received[2]!.message.edns?.options).toEqual([
      { code: OptionCode.CLIENT_SUBNET, family: 2, sourcePrefixLength: 48, scopePrefixLength: 0, address: '2001:db8:aa::' },
    ]);
    // Opt-out (source prefix 0) is honoured.
    await set.resolve(query('o.example', 'A', { ednsOptions: [{ ...ecs, sourcePrefixLength: 0, address: '0.0.0.0' }] }), {
      client: { address: '203.0.113.77', port: 1, family: 4, transport: 'udp' },
    });
    expect((up.received[3]!.message.edns!.options[0] as { sourcePrefixLength: number }).sourcePrefixLength).toBe(0);

    const fixed = client({ servers: [up.endpoint], clientSubnet: { mode: 'set', address: '192.0.2.128/25' }, timeout: 1000 });
    await fixed.resolve(query('x.example'));
    expect(up.received[4]!.message.edns?.options).toEqual([{ ...ecs, sourcePrefixLength: 25, address: '192.0.2.128' }]);
  });

  it('works with an IPv6 upstream (UDP and the TCP fallback)', async () => {
    const up = await FakeUpstream.start({ address: '::1' });
    open.push(up);
    const many = Array.from({ length: 60 }, (_, i) => record('big6.example', 'A', `10.6.0.${i}`));
    up.on('small6.example', 'A', [record('small6.example', 'A', '10.6.6.6')]);
    up.on('big6.example', 'A', { answers: many, truncate: true });
    const c = client({ servers: [up.endpoint], timeout: 1000 });
    expect(up.endpoint).toMatch(/^\[::1\]:\d+$/);
    expect(addr(await c.resolve(query('small6.example')))).toBe('10.6.6.6');
    expect(decode(await c.resolve(query('big6.example'))).answers).toHaveLength(60);
    expect(up.count('big6.example', 'A', 'tcp')).toBe(1);
  });

  it('close() rejects pending resolutions with CLOSED', async () => {
    const up = await fake();
    up.otherwise({ drop: true });
    const c = UpstreamClient.create({ servers: [up.endpoint, `tcp://${up.endpoint}`], timeout: 5000 });
    const p = c.resolve(query('pending.example'));
    await up.waitForQueries(1);
    await c.close();
    expect((await rejection(p)).code).toBe('CLOSED');
    expect((await rejection(c.resolve(query('after.example')))).code).toBe('CLOSED');
  });

  it('rejects queries it cannot forward', async () => {
    const up = await fake();
    const c = client({ servers: [up.endpoint] });
    const bad = Buffer.from(query('a.example'));
    bad.writeUInt16BE(2, 4);
    expect((await rejection(c.resolve(bad))).code).toBe('BAD_QUERY');
    expect((await rejection(c.resolve(Buffer.alloc(5)))).code).toBe('BAD_QUERY');
  });
});

describe('UpstreamClient: conditional forwarding', () => {
  it('routes by longest matching suffix', async () => {
    const def = await fake('10.0.0.1');
    const corp = await fake('10.0.0.2');
    const deep = await fake('10.0.0.3');
    const c = client({
      servers: [def.endpoint],
      domains: { 'Corp.Example.': [corp.endpoint], 'a.corp.example': { servers: [deep.endpoint], strategy: 'random' } },
      timeout: 1000,
    });
    expect(addr(await c.resolve(query('x.corp.example')))).toBe('10.0.0.2');
    expect(addr(await c.resolve(query('CORP.example')))).toBe('10.0.0.2');
    expect(addr(await c.resolve(query('y.A.corp.example')))).toBe('10.0.0.3');
    expect(addr(await c.resolve(query('a.corp.example')))).toBe('10.0.0.3');
    expect(addr(await c.resolve(query('xcorp.example')))).toBe('10.0.0.1');
    expect(addr(await c.resolve(query('example.com')))).toBe('10.0.0.1');
    expect(c.routeName('a\\.corp.example')).toBe(c.defaultGroup);
  });

  it('without a default group, unmatched names have no route', async () => {
    const corp = await fake('10.0.0.2');
    const c = client({ domains: { 'corp.example': corp.endpoint }, timeout: 1000 });
    expect(c.defaultGroup).toBeNull();
    expect((await rejection(c.resolve(query('example.com')))).code).toBe('BAD_QUERY');
    expect(addr(await c.resolve(query('www.corp.example')))).toBe('10.0.0.2');
  });
});

describe('UpstreamClient: metrics', () => {
  it('exposes per-upstream statistics in the registry', async () => {
    const up = await fake();
    const registry = new Registry();
    const c = UpstreamClient.create({ servers: [up.endpoint], timeout: 1000 }, { registry });
    open.push(c);
    await c.resolve(query('m.example'));
    const text = await registry.metrics();
    const label = `upstream="udp://${up.endpoint}"`;
    expect(text).toContain(`heimdall_upstream_requests_total{${label}} 1`);
    expect(text).toContain(`heimdall_upstream_up{${label}} 1`);
    expect(text).toContain(`heimdall_upstream_rtt_seconds_count{${label}} 1`);
    expect(text).toMatch(/heimdall_upstream_rtt_seconds_bucket\{upstream="[^"]+",le="\+Inf"\} 1/);
    expect(text).toContain(`heimdall_upstream_failures_total{${label},reason="timeout"} 0`);
    expectAnswers(await c.resolve(query('m.example')), ['10.0.0.1']);
  });
});
