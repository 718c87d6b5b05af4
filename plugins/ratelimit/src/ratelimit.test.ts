import { Writable } from 'node:stream';
import { ADMIN_ACTIONS, type AdminActions, type Clock, ConfigError, definePlugin, RecordType, type TransportKind } from '@heimdall/core';
import { CORE_METRICS } from '@heimdall/core/di';
import type { CoreMetrics } from '@heimdall/core/pipeline';
import { decodeResponse, FakeClock, query, testResolver } from '@heimdall/testing';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CoarseClock, TICK_MS } from '@heimdall/core/pipeline';
import { ratelimit } from './index.js';
import { ipv4Value, PrefixKeyer } from '@heimdall/core/wire';
import { BucketTable } from './table.js';

/** Answers every query with one A record. */
const answer = definePlugin({
  name: 'answer',
  setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.1' }]) }),
});

type Outcome = 'answered' | 'truncated' | 'dropped';

function outcome(res: Buffer | null): Outcome {
  if (res === null) return 'dropped';
  const m = decodeResponse(res);
  if (m.tc) {
    expect(m.answers).toEqual([]);
    return 'truncated';
  }
  expect(m.answers).toHaveLength(1);
  return 'answered';
}

function setup(options: Parameters<typeof ratelimit>[0], clock = new FakeClock(), logger?: pino.Logger) {
  const r = testResolver([ratelimit(options), answer()], { clock, ...(logger ? { logger } : {}) });
  const ask = async (address: string, transport: TransportKind = 'udp', name = 'a.example') =>
    outcome(await r.handle(query(name, 'A', { id: 7 }), { address, transport }));
  const many = async (n: number, address: string, transport: TransportKind = 'udp') => {
    const out: Record<Outcome, number> = { answered: 0, truncated: 0, dropped: 0 };
    for (let i = 0; i < n; i++) out[await ask(address, transport)]++;
    return out;
  };
  const admin = () => r.container.getAll<AdminActions>(ADMIN_ACTIONS).find((a) => a.plugin === 'ratelimit')!;
  const action = (name: string) => admin().actions.find((a) => a.name === name)!;
  return { r, clock, ask, many, action };
}

describe('ratelimit', () => {
  it('passes a burst, then answers excess UDP queries with an empty TC=1 answer; the bucket refills at `rate`', async () => {
    const { many, clock } = setup({ rate: 10, burst: 20 });
    expect(await many(25, '198.51.100.7')).toEqual({ answered: 20, truncated: 5, dropped: 0 });
    clock.advance(500); // 5 queries' worth
    expect(await many(8, '198.51.100.7')).toEqual({ answered: 5, truncated: 3, dropped: 0 });
    clock.advance(60_000); // refilled to the burst, not beyond
    expect(await many(25, '198.51.100.7')).toEqual({ answered: 20, truncated: 5, dropped: 0 });
  });

  it('the truncated answer echoes ID, question and EDNS, with TC and QR set', async () => {
    const { r } = setup({ rate: 1, burst: 1 });
    await r.handle(query('Mixed.Example', 'AAAA', { id: 1 }), { address: '198.51.100.7', transport: 'udp' });
    const m = decodeResponse(await r.handle(query('Mixed.Example', 'AAAA', { id: 4242, edns: true }), { address: '198.51.100.7', transport: 'udp' }));
    expect({ id: m.id, qr: m.qr, tc: m.tc, rcode: m.rcode, q: m.questions, an: m.answers.length, edns: m.edns !== undefined }).toEqual({
      id: 4242,
      qr: true,
      tc: true,
      rcode: 0,
      q: [{ name: 'Mixed.Example', type: RecordType.AAAA, class: 1 }],
      an: 0,
      edns: true,
    });
  });

  it("action 'drop' sends nothing: the resolver returns null and counts dropped{reason=policy}", async () => {
    const { r, many } = setup({ rate: 1, burst: 2, action: 'drop' });
    expect(await many(5, '198.51.100.7')).toEqual({ answered: 2, truncated: 0, dropped: 3 });
    expect(r.get<CoreMetrics>(CORE_METRICS).dropped.policy).toBe(3);
  });

  it('counts per /24 (IPv4) and /56 (IPv6) by default; the prefix lengths are options', async () => {
    const { many } = setup({ rate: 1, burst: 3 });
    expect(await many(3, '198.51.100.7')).toEqual({ answered: 3, truncated: 0, dropped: 0 });
    expect(await many(1, '198.51.100.200')).toEqual({ answered: 0, truncated: 1, dropped: 0 }); // same /24
    expect(await many(3, '198.51.101.7')).toEqual({ answered: 3, truncated: 0, dropped: 0 }); // another /24
    expect(await many(3, '2001:db8:0:1200::1')).toEqual({ answered: 3, truncated: 0, dropped: 0 });
    expect(await many(1, '2001:db8:0:12ff:ffff::2')).toEqual({ answered: 0, truncated: 1, dropped: 0 }); // same /56
    expect(await many(1, '2001:DB8:0:1300::1')).toEqual({ answered: 1, truncated: 0, dropped: 0 }); // another /56
    expect(await many(1, '::ffff:198.51.100.9')).toEqual({ answered: 0, truncated: 1, dropped: 0 }); // IPv4-mapped: the IPv4 /24

    const per32 = setup({ rate: 1, burst: 2, ipv4Prefix: 32, ipv6Prefix: 128 });
    expect(await per32.many(3, '198.51.100.7')).toEqual({ answered: 2, truncated: 1, dropped: 0 });
    expect(await per32.many(2, '198.51.100.8')).toEqual({ answered: 2, truncated: 0, dropped: 0 });
    expect(await per32.many(3, '2001:db8::1')).toEqual({ answered: 2, truncated: 1, dropped: 0 });
    expect(await per32.many(2, '2001:db8::2')).toEqual({ answered: 2, truncated: 0, dropped: 0 });
  });

  it('never limits allowlisted clients, TCP (by default), or internal queries', async () => {
    const { many } = setup({ rate: 1, burst: 1, allow: ['198.51.100.0/25', '2001:db8:1::/48', '203.0.113.9'] });
    expect(await many(10, '198.51.100.7')).toEqual({ answered: 10, truncated: 0, dropped: 0 });
    expect(await many(10, '2001:db8:1:2::3')).toEqual({ answered: 10, truncated: 0, dropped: 0 });
    expect(await many(10, '203.0.113.9')).toEqual({ answered: 10, truncated: 0, dropped: 0 });
    expect(await many(2, '198.51.100.200')).toEqual({ answered: 1, truncated: 1, dropped: 0 }); // outside the /25
    expect(await many(10, '192.0.2.1', 'tcp')).toEqual({ answered: 10, truncated: 0, dropped: 0 });
    expect(await many(10, '192.0.2.1', 'internal')).toEqual({ answered: 10, truncated: 0, dropped: 0 });

    const tcpToo = setup({ rate: 1, burst: 1, transports: ['udp', 'tcp'], action: 'drop' });
    expect(await tcpToo.many(3, '192.0.2.1', 'tcp')).toEqual({ answered: 1, truncated: 0, dropped: 2 });
  });

  it("action 'truncate' on stream transports (tcp, tls, https): excess queries are dropped (TC=1 means nothing there); UDP still gets TC=1", async () => {
    const { many, action } = setup({ rate: 1, burst: 1, transports: ['udp', 'tcp', 'tls', 'https'], action: 'truncate', ipv4Prefix: 32 });
    expect(await many(3, '192.0.2.1', 'tcp')).toEqual({ answered: 1, truncated: 0, dropped: 2 });
    expect(await many(3, '192.0.2.2', 'tls')).toEqual({ answered: 1, truncated: 0, dropped: 2 });
    expect(await many(3, '192.0.2.3', 'https')).toEqual({ answered: 1, truncated: 0, dropped: 2 });
    expect(await many(3, '192.0.2.4', 'udp')).toEqual({ answered: 1, truncated: 2, dropped: 0 });
    expect(await action('stats').run({})).toMatchObject({ truncated: 2, dropped: 6 });
  });

  it('clients with no known address (a trusted DoH proxy that named none: empty address) share one bucket, listed as `unknown`', async () => {
    const { many, ask, clock, action } = setup({
      rate: 1,
      burst: 2,
      transports: ['udp', 'https'],
      allow: ['0.0.0.0/1', '2001:db8::/32'], // networks: an unknown client is in none of them
    });
    const start = clock.now();
    expect(await many(2, '', 'https')).toEqual({ answered: 2, truncated: 0, dropped: 0 });
    expect(await many(3, '', 'https')).toEqual({ answered: 0, truncated: 0, dropped: 3 });
    expect(await many(1, 'not-an-address')).toEqual({ answered: 0, truncated: 1, dropped: 0 }); // same bucket, over UDP: TC=1
    expect(await ask('198.51.100.7')).toBe('answered'); // other clients keep their own buckets
    expect(await ask('2001:db9::1', 'https')).toBe('answered');
    expect(await action('limited').run({})).toEqual([{ prefix: 'unknown', since: start, excess: 4 }]);
    clock.advance(1000); // the same rate as any prefix
    expect(await many(2, '', 'https')).toEqual({ answered: 1, truncated: 0, dropped: 1 });
  });

  it('the `limited` action lists the prefixes over their limit in the last second; `stats` and `reset`', async () => {
    const { many, clock, action } = setup({ rate: 1, burst: 2 });
    await many(2, '198.51.100.1');
    expect(await action('limited').run({})).toEqual([]);
    const start = clock.now();
    await many(5, '198.51.100.1');
    await many(4, '2001:db8::1');
    expect(await action('limited').run({})).toEqual([
      { prefix: '198.51.100.0/24', since: start, excess: 5 },
      { prefix: '2001:db8::/56', since: start, excess: 2 },
    ]);
    expect(await action('limited').run({ max: 1 })).toHaveLength(1);
    expect(await action('stats').run({})).toEqual({ tracked: 2, limited: 2, truncated: 7, dropped: 0, episodes: 2, evictions: 0 });
    clock.advance(1000);
    expect(await action('limited').run({})).toEqual([]);
    await many(3, '198.51.100.1'); // refilled 1: one answered, then a new episode
    expect(await action('limited').run({})).toEqual([{ prefix: '198.51.100.0/24', since: start + 1000, excess: 2 }]);
    expect(await action('reset').run({})).toEqual({ forgotten: 2 });
    expect(await many(2, '198.51.100.1')).toEqual({ answered: 2, truncated: 0, dropped: 0 });
  });

  it('logs the start of a limited episode, at most one line per 10 s (with the count held back)', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    });
    const { many, clock } = setup({ rate: 1, burst: 1 }, new FakeClock(), pino({ level: 'info' }, sink));
    for (let i = 0; i < 50; i++) await many(3, `10.0.${i}.1`);
    const limiting = () => lines.filter((l) => l.msg === 'client prefix over its query rate limit');
    await new Promise((resolve) => setImmediate(resolve));
    expect(limiting()).toHaveLength(1);
    expect(limiting()[0]).toMatchObject({ prefix: '10.0.0.0/24', rate: 1, burst: 1, action: 'truncate', otherPrefixesNotLogged: 0, plugin: 'ratelimit' });
    clock.advance(10_000);
    await many(3, '10.1.0.1');
    await new Promise((resolve) => setImmediate(resolve));
    expect(limiting()).toHaveLength(2);
    expect(limiting()[1]).toMatchObject({ prefix: '10.1.0.0/24', otherPrefixesNotLogged: 49 });
  });

  it('reads the clock only through its 10 ms ticker, which stops when queries stop', async () => {
    const fake = new FakeClock();
    let reads = 0;
    const now = () => {
      reads++;
      return fake.now();
    };
    const clock: Clock = { now, setTimeout: (fn, ms) => fake.setTimeout(fn, ms), clearTimeout: (t) => fake.clearTimeout(t) };
    const { many } = setup({ rate: 1000, burst: 1000 }, clock as FakeClock);
    reads = 0;
    await many(500, '192.0.2.1');
    expect(reads).toBeLessThanOrEqual(2); // one on wake (the rest read the field)
    fake.advance(TICK_MS * 3);
    expect(reads).toBeLessThanOrEqual(5); // one per tick
    fake.advance(5000);
    expect(fake.pendingTimers).toBe(0); // idle: the ticker stopped
  });

  it('names the config field of a bad option', () => {
    const error = (o: unknown) => {
      try {
        ratelimit(o as never, { path: 'plugins[1].options' });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(error({ allow: ['10.0.0.0/8', '300.1.2.3/8'] })).toBe(
      'plugins[1].options.allow[1]: must be an IP address or a CIDR prefix (192.0.2.0/24, 2001:db8::/32)',
    );
    expect(error({ allow: ['bad host'] })).toMatch(/^plugins\[1\]\.options\.allow\[0\]: must be an IP address or a CIDR prefix/);
    expect(error({ rate: 0 })).toMatch(/^plugins\[1\]\.options\.rate: /);
    expect(error({ ipv4Prefix: 33 })).toMatch(/^plugins\[1\]\.options\.ipv4Prefix: /);
    expect(error({ action: 'refuse' })).toBe('plugins[1].options.action: must be "truncate" or "drop"');
    expect(error({ transports: ['quic'] })).toMatch(/^plugins\[1\]\.options\.transports\[0\]: /);
    expect(error({ rates: 1 })).toMatch(/^plugins\[1\]\.options\.rates: unknown option/);
    expect(ratelimit().options).toEqual({ rate: 100, ipv4Prefix: 24, ipv6Prefix: 56, allow: [], transports: ['udp'], action: 'truncate', maxTracked: 100_000 });
  });
});

describe('ratelimit internals', () => {
  it('ipv4Value reads strict dotted quads only', () => {
    expect(ipv4Value('0.0.0.0')).toBe(0);
    expect(ipv4Value('255.255.255.255')).toBe(0xffffffff);
    expect(ipv4Value('192.0.2.1')).toBe(0xc0000201);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.', '.1.2.3', '1.2.3.4a', '::1', '1.2.3.0004', '::ffff:1.2.3.4'])
      expect(ipv4Value(bad), bad).toBe(-1);
  });

  it('prefix keys and their text', () => {
    const k = new PrefixKeyer(24, 56, []);
    expect(k.text(k.v4Key(ipv4Value('203.0.113.77')))).toBe('203.0.113.0/24');
    expect(k.other('2001:db8:aa:bbcc::1')).toEqual({ key: '2001:db8:aa:bb00::/56', exempt: false });
    expect(k.other('not-an-ip')).toEqual({ key: null, exempt: false });
    const k32 = new PrefixKeyer(32, 128, []);
    expect(k32.text(k32.v4Key(ipv4Value('203.0.113.77')))).toBe('203.0.113.77/32');
    const k8 = new PrefixKeyer(8, 16, []);
    expect(k8.text(k8.v4Key(ipv4Value('203.0.113.77')))).toBe('203.0.0.0/8');
  });

  it('the table stays within maxTracked, forgetting an idle prefix first, else the least recently seen', () => {
    const t = new BucketTable(1, 2000, 3); // 1 q/s, burst 2
    for (const k of [1, 2, 3]) expect(t.take(k, 0)).toBeNull();
    expect(t.take(1, 10)).toBeNull(); // 1 is now empty-ish and recent
    expect(t.take(1, 10)).not.toBeNull();
    t.take(4, 20); // full: 2 and 3 are not idle yet (refill 1000 ms); the least recently refilled among the oldest goes
    expect(t.size).toBe(3);
    expect(t.evictions).toBe(1);
    // 5000 ms later every bucket has refilled: an idle one is forgotten, not the busy 1
    expect(t.take(1, 5000)).toBeNull();
    t.take(5, 5000);
    expect(t.size).toBe(3);
    expect(t.sweep(100_000)).toBe(3);
    expect(t.size).toBe(0);
  });

  it('the coarse clock wakes on read and stops after a second without reads', () => {
    const fake = new FakeClock(1000);
    const c = new CoarseClock(fake);
    expect(c.read()).toBe(1000);
    expect(c.ticking).toBe(true);
    fake.advance(25);
    expect(c.read()).toBe(1020); // last tick at 1020
    fake.advance(2000);
    expect(c.ticking).toBe(false);
    expect(fake.pendingTimers).toBe(0);
    expect(c.read()).toBe(3025);
    c.stop();
    expect(fake.pendingTimers).toBe(0);
    fake.advance(3);
    expect(c.read()).toBe(3028);
  });
});
