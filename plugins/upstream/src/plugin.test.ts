import dgram from 'node:dgram';
import { ConfigError, decode, systemClock, UPSTREAM, type Upstream } from '@heimdall/core';
import { expectEcho, expectEde, expectRcode, type FakeClock, FakeUpstream, query, record, runMiddleware, testResolver } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamClient } from './client.js';
import upstreamDefault, { upstream } from './index.js';

const open: { close(): Promise<void> }[] = [];
const resolvers: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  while (resolvers.length) await resolvers.pop()!.stop();
  while (open.length) await open.pop()!.close();
});

async function fake(address = '10.0.0.1'): Promise<FakeUpstream> {
  const up = await FakeUpstream.start();
  up.otherwise((q) => (q.type === 1 ? [record(q.name, 'A', address)] : {}));
  open.push(up);
  return up;
}

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
    expect(configError(() => upstream({ servers: ['1.1.1.1', 'dns.google'] })).path).toBe('upstream.servers[1]');
    expect(configError(() => upstream({ servers: ['1.1.1.1', 'dns.google'] })).message).toContain('"dns.google"');
    expect(configError(() => upstream({})).path).toBe('upstream.servers');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], strategy: 'fast' as never })).path).toBe('upstream.strategy');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], timeout: 0 })).path).toBe('upstream.timeout');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], tcp: { maxInFlight: 1e6 } })).path).toBe('upstream.tcp.maxInFlight');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], udp: { socket: 1 } as never })).path).toBe('upstream.udp.socket');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], retryRcodes: ['SERVFAIL', 'BOGUS'] })).path).toBe('upstream.retryRcodes[1]');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], clientSubnet: { mode: 'set', address: '1.2.3.4/40' } })).path).toBe('upstream.clientSubnet.address');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], clientSubnet: 'sometimes' as never })).path).toBe('upstream.clientSubnet');
    expect(configError(() => upstream({ domains: { 'bad domain': ['1.1.1.1'] } })).path).toBe('upstream.domains["bad domain"]');
    expect(configError(() => upstream({ domains: { 'corp.example': { servers: ['x'] } } })).path).toBe('upstream.domains["corp.example"].servers[0]');
    expect(configError(() => upstream({ servers: ['1.1.1.1'], tls: { ca: '/nonexistent/ca.pem' } })).message).toContain('ENOENT');
    expect(upstream({ servers: ['1.1.1.1'] }).name).toBe('upstream');
  });

  it('forwards through a resolver, preserving ID and question case, and binds UPSTREAM', async () => {
    const up = await fake('10.0.0.7');
    const r = testResolver([upstream({ servers: [up.endpoint] })], { clock: systemClock });
    resolvers.push(r);
    await r.start();
    const q = query('WwW.Example.ORG', 'A', { id: 999 });
    const res = await r.handle(q);
    expectEcho(q, res);
    expect(decode(res!).answers[0]!.data).toBe('10.0.0.7');
    const client = r.get<Upstream>(UPSTREAM);
    expect(client).toBeInstanceOf(UpstreamClient);
    const direct = await client.resolve(query('cache.refresh', 'A', { id: 5 }));
    expect(direct.readUInt16BE(0)).toBe(5);
    expect(up.count('cache.refresh')).toBe(1);
  });

  it('answers SERVFAIL with EDE 22 when upstreams time out and EDE 23 when unreachable', async () => {
    const silent = await fake();
    silent.otherwise({ drop: true });
    const r = testResolver([upstream({ servers: [silent.endpoint], timeout: 50, maxAttempts: 2 })], { clock: systemClock });
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

  it('answers FORMERR for a query with two questions', async () => {
    const up = await fake();
    const mw = upstream({ servers: [up.endpoint] });
    const client = new UpstreamClient({ servers: [up.endpoint] });
    open.push(client);
    const { createUpstreamMiddleware } = await import('./plugin.js');
    const q = Buffer.from(query('a.example'));
    // Two identical questions: QDCOUNT 2 with the question repeated.
    const qEnd = q.length;
    const two = Buffer.concat([q, q.subarray(12, qEnd)]);
    two.writeUInt16BE(2, 4);
    const { response } = await runMiddleware(createUpstreamMiddleware(client), two, { clock: systemClock });
    expectRcode(response, 'FORMERR');
    expect(mw.name).toBe('upstream');
  });

  it('with only domain groups, other names go to the next middleware', async () => {
    const corp = await fake('10.0.0.2');
    const client = new UpstreamClient({ domains: { 'corp.example': [corp.endpoint] } });
    open.push(client);
    const { createUpstreamMiddleware } = await import('./plugin.js');
    const mw = createUpstreamMiddleware(client);
    const outside = await runMiddleware(mw, query('example.com'), { clock: systemClock });
    expect(outside.nextCalls).toBe(1);
    expect(outside.response).toBeNull();
    const inside = await runMiddleware(mw, query('a.corp.example'), { clock: systemClock });
    expect(inside.nextCalls).toBe(0);
    expect(decode(inside.response!).answers[0]!.data).toBe('10.0.0.2');
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
    await clock.advanceAsync(1999);
    expect(up.received).toHaveLength(1);
    await clock.advanceAsync(1);
    const res = await pending;
    expectRcode(res, 'SERVFAIL');
    expectEde(res, 22);
    // Marked down: the probe (. NS) goes out when the 30 s backoff has passed on the fake clock.
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
    const client = r.get<UpstreamClient>(UPSTREAM);
    await r.handle(query('a.example'));
    await r.stop();
    await expect(client.resolve(query('b.example'))).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
