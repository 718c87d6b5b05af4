import dgram from 'node:dgram';
import { ADMIN_ACTIONS, type AdminActions, ConfigError, METRICS, type Registry, UPSTREAM, UPSTREAM_USED, type Upstream } from '@heimdall/core';
import { decode } from '@heimdall/core/packet';
import { systemClock } from '@heimdall/core/pipeline';
import { expectEcho, expectEde, expectRcode, type FakeClock, FakeUpstream, middlewareOf, query, record, runMiddleware, testResolver } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamClient } from './client.js';
import upstreamDefault, { upstream } from './index.js';
import { closeAll, fake, resolvers } from '../test/harness.js';

afterEach(closeAll);

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('upstream plugin', () => {
  it('is the default export and validates options with ConfigError naming the field', () => {
    expect(upstreamDefault).toBe(upstream);
    expect(upstream.pluginName).toBe('upstream');
    expect(configError(() => upstream({ servers: ['1.1.1.1', 'dns.google'] })).path).toBe('upstream.servers[1]');
    expect(configError(() => upstream({ servers: ['1.1.1.1', 'dns.google'] })).message).toContain('host names only with tls:// and https://');
    // What the pattern lets through and the URL parser refuses, with the same path.
    expect(configError(() => upstream({ servers: ['1.1.1.1', '1.1.1.1:70000'] })).message).toBe(
      'upstream.servers[1]: invalid upstream "1.1.1.1:70000": port 70000 is out of range 1-65535',
    );
    expect(configError(() => upstream({ servers: ['udp://dns.google'] })).path).toBe('upstream.servers[0]');
    expect(configError(() => upstream({})).path).toBe('upstream.servers');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], strategy: 'fast' as never })).path).toBe('upstream.strategy');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], timeout: 0 })).message).toBe('upstream.timeout: must be an integer in 10..60000');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], tcp: { maxInFlight: 1e6 } })).path).toBe('upstream.tcp.maxInFlight');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], udp: { socket: 1 } as never })).path).toBe('upstream.udp.socket');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], retryRcodes: ['SERVFAIL', 'BOGUS' as never] })).path).toBe('upstream.retryRcodes[1]');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], clientSubnet: { mode: 'set', address: '1.2.3.4/40' } })).path).toBe(
      'upstream.clientSubnet.address',
    );
    expect(configError(() => upstream({ servers: ['1.1.1.1'], clientSubnet: 'sometimes' as never })).path).toBe('upstream.clientSubnet');
    expect(configError(() => upstream({ domains: { 'bad domain': ['1.1.1.1'] } })).path).toBe('upstream.domains["bad domain"]');
    expect(configError(() => upstream({ domains: { 'corp.example': { servers: ['x'] } } })).path).toBe('upstream.domains["corp.example"].servers[0]');
    expect(configError(() => upstream({ domains: { 'corp.example': { servers: ['10.0.0.300'] } } })).path).toBe('upstream.domains["corp.example"].servers[0]');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], zones: ['bad zone'] })).path).toBe('upstream.zones[0]');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], health: { failureRcodes: ['REFUSED'] } as never })).path).toBe('upstream.health.failureRcodes');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], tls: { ca: '/nonexistent/ca.pem' } })).message).toContain('ENOENT');
    expect(configError(() => upstream({ servers: ['1.1.1.1', 'dns.google'] }, { name: 'upstream-lan' })).path).toBe('upstream-lan.servers[1]');
    const p = upstream({ servers: ['1.1.1.1'] });
    expect(p.name).toBe('upstream');
    expect(p.options).toMatchObject({
      timeout: 2000,
      maxAttempts: 3,
      budget: 5000,
      deadlineMargin: 100,
      maxInFlight: 2048,
      maxInFlightPerUpstream: 1024,
      zones: [],
      health: { maxFailures: 3, logInterval: 10_000 },
    });
  });

  it('forwards through a resolver, preserving ID and question case, provides UPSTREAM and sets UPSTREAM_USED', async () => {
    const up = await fake('10.0.0.7');
    const plugin = upstream({ servers: [up.endpoint] });
    const r = testResolver([plugin], { clock: systemClock });
    resolvers.push(r);
    await r.start();
    const q = query('WwW.Example.ORG', 'A', { id: 999 });
    const res = await r.handle(q);
    expectEcho(q, res);
    expect(decode(res!).answers[0]!.data).toBe('10.0.0.7');
    const { ctx } = await runMiddleware(middlewareOf(plugin, r), query('used.example'), { clock: systemClock });
    expect(ctx.get(UPSTREAM_USED)).toBe(`udp://${up.endpoint}`);
    const direct = await r.get<Upstream>(UPSTREAM).resolve(query('cache.refresh', 'A', { id: 5 }));
    expect(direct.readUInt16BE(0)).toBe(5);
    expect(up.count('cache.refresh')).toBe(1);
  });

  it('answers SERVFAIL with EDE 22 when upstreams time out and EDE 23 when unreachable', async () => {
    const silent = await fake();
    silent.otherwise({ drop: true });
    const r = testResolver([upstream({ servers: [silent.endpoint], timeout: 50, maxAttempts: 2, budget: 150 })], { clock: systemClock });
    resolvers.push(r);
    await r.start();
    const res = await r.handle(query('t.example', 'A', { edns: true }));
    expectRcode(res, 'SERVFAIL');
    expectEde(res, 22);
    // Without EDNS from the client there is nowhere to put the EDE: plain SERVFAIL.
    expect(decode((await r.handle(query('t2.example')))!).edns).toBeUndefined();

    const gone = await FakeUpstream.start({ tcp: false });
    const port = gone.port;
    await gone.close();
    const r2 = testResolver([upstream({ servers: [`127.0.0.1:${port}`] })], { clock: systemClock });
    resolvers.push(r2);
    await r2.start();
    const res2 = await r2.handle(query('u.example', 'A', { edns: true }));
    expectRcode(res2, 'SERVFAIL');
    expectEde(res2, 23);
  });

  it('with only domain groups, other names go to the next middleware', async () => {
    const corp = await fake('10.0.0.2');
    const plugin = upstream({ domains: { 'corp.example': [corp.endpoint] } });
    const r = testResolver([plugin], { clock: systemClock });
    resolvers.push(r);
    const mw = middlewareOf(plugin, r);
    const outside = await runMiddleware(mw, query('example.com'), { clock: systemClock });
    expect(outside.nextCalls).toBe(1);
    expect(outside.response).toBeNull();
    const inside = await runMiddleware(mw, query('a.corp.example'), { clock: systemClock });
    expect(inside.nextCalls).toBe(0);
    expect(decode(inside.response!).answers[0]!.data).toBe('10.0.0.2');
  });

  it('split routing: two instances, each with its zones, servers and metrics prefix', async () => {
    const lan = await fake('192.168.1.10');
    const pub = await fake('203.0.113.10');
    const r = testResolver(
      [upstream({ zones: ['lan', 'corp.example'], servers: [lan.endpoint] }, { name: 'upstream-lan' }), upstream({ servers: [pub.endpoint] })],
      { clock: systemClock },
    );
    resolvers.push(r);
    await r.start();
    expect(r.chain).toEqual(['upstream-lan', 'upstream']);
    const addr = async (name: string) => decode((await r.handle(query(name)))!).answers[0]?.data;
    expect(await addr('nas.lan')).toBe('192.168.1.10');
    expect(await addr('LAN')).toBe('192.168.1.10');
    expect(await addr('git.corp.example')).toBe('192.168.1.10');
    expect(await addr('example.com')).toBe('203.0.113.10');
    expect(await addr('plan')).toBe('203.0.113.10'); // a suffix match is by label, not by string
    expect(lan.count()).toBe(3);
    expect(pub.count()).toBe(2);
    // Through UPSTREAM (the cache's prefetch), a name goes where the chain would send it.
    const up = r.get<Upstream>(UPSTREAM);
    expect(decode(await up.resolve(query('tv.lan'))).answers[0]!.data).toBe('192.168.1.10');
    expect(decode(await up.resolve(query('www.example.org'))).answers[0]!.data).toBe('203.0.113.10');
    const text = await r.get<Registry>(METRICS).metrics();
    expect(text).toContain(`heimdall_upstream_lan_requests_total{upstream="udp://${lan.endpoint}"} 4`);
    expect(text).toContain(`heimdall_upstream_requests_total{upstream="udp://${pub.endpoint}"} 3`);
    expect(text).not.toContain(`heimdall_upstream_requests_total{upstream="udp://${lan.endpoint}"}`);
  });

  it('admin action health: per-upstream state, RTT and failures', async () => {
    const good = await fake();
    const dead = await fake();
    dead.otherwise({ drop: true });
    const r = testResolver([upstream({ servers: [dead.endpoint, good.endpoint], timeout: 50, health: { maxFailures: 1, backoff: 60_000 } })], {
      clock: systemClock,
    });
    resolvers.push(r);
    await r.start();
    expectRcode(await r.handle(query('h.example')), 'NOERROR');
    const groups = r.container.getAll<AdminActions>(ADMIN_ACTIONS);
    expect(groups.map((g) => g.plugin)).toEqual(['upstream']);
    const action = groups[0]!.actions.find((a) => a.name === 'health')!;
    expect(action).toMatchObject({ method: 'GET', combine: 'all' });
    const report = (await action.run({})) as { upstream: string; state: string; failures: { timeout: number }; requests: number; rttMs: number }[];
    expect(report.map((u) => [u.upstream, u.state])).toEqual([
      [`udp://${dead.endpoint}`, 'down'],
      [`udp://${good.endpoint}`, 'up'],
    ]);
    expect(report[0]!.failures.timeout).toBe(1);
    expect(report[1]!.rttMs).toBeGreaterThan(0);
  });

  it('returns the full answer; the UDP listener truncates it for a small-buffer client', async () => {
    const up = await fake();
    const many = Array.from({ length: 60 }, (_, i) => record('big.example', 'A', `10.2.0.${i}`));
    up.on('big.example', 'A', many);
    const r = testResolver([upstream({ servers: [up.endpoint] })], { clock: systemClock, listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }] });
    resolvers.push(r);
    await r.start();
    // handle() (no transport) gets everything.
    expect(decode((await r.handle(query('big.example')))!).answers).toHaveLength(60);
    // A UDP client without EDNS (512 bytes) gets TC=1.
    const port = r.addresses()[0]!.port;
    const sock = dgram.createSocket('udp4');
    const reply = await new Promise<Buffer>((resolve) => {
      sock.once('message', (m) => resolve(m));
      sock.send(query('big.example', 'A', { id: 31 }), port, '127.0.0.1');
    });
    sock.close();
    const m = decode(reply);
    expect(m.tc).toBe(true);
    expect(reply.length).toBeLessThanOrEqual(512);
    expect(m.id).toBe(31);
  });

  it('runs its timeouts and probes on the resolver CLOCK (FakeClock: no real waiting)', async () => {
    const up = await fake();
    up.otherwise({ drop: true });
    const r = testResolver([upstream({ servers: [up.endpoint], timeout: 2000, maxAttempts: 1, health: { maxFailures: 1, backoff: 30_000 } })]);
    resolvers.push(r);
    await r.start();
    const clock = r.clock as FakeClock;
    const started = Date.now();
    const pending = r.handle(query('slow.example', 'A', { edns: true }));
    await up.waitForQueries(1);
    await clock.advanceAsync(2000);
    expect(up.received).toHaveLength(1); // one attempt: the slow one is not repeated
    // The only attempt stays in the race until the budget (the query deadline minus the margin).
    await clock.advanceAsync(2900);
    const res = await pending;
    expectRcode(res, 'SERVFAIL');
    expectEde(res, 22);
    // Marked down at the attempt timeout: the probe (. NS) goes out when the 30 s backoff has passed on the fake clock.
    expect(up.count('', 'NS')).toBe(0);
    await clock.advanceAsync(30_000);
    await up.waitForQueries(2);
    expect(up.count('', 'NS')).toBe(1);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('stop() closes the client', async () => {
    const up = await fake();
    const r = testResolver([upstream({ servers: [up.endpoint] })], { clock: systemClock });
    await r.start();
    const client = r.scope('upstream').get(UpstreamClient);
    await r.handle(query('a.example'));
    await r.stop();
    await expect(client.resolve(query('b.example'))).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
