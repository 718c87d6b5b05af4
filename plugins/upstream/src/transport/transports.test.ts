import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { answer, dohReply, dohServer, makeQuery, type TestServer, tcpServer, testCert, udpServer } from '../../test/servers.js';
import { UpstreamError } from '../errors.js';
import { DohTransport } from './doh.js';
import { UdpWithTcpFallback } from './fallback.js';
import { StreamTransport } from './stream.js';
import type { Transport } from './types.js';
import { UdpTransport } from './udp.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
function track<T extends TestServer | Transport>(x: T): T {
  cleanups.push(() => x.close());
  return x;
}
const soon = (ms = 1000) => ({ deadline: Date.now() + ms });
const idOf = (b: Buffer) => b.readUInt16BE(0);
const addressOf = (b: Buffer) => (dnsPacket.decode(b).answers![0] as dnsPacket.StringAnswer).data;

async function expectCode(p: Promise<unknown>, code: string): Promise<UpstreamError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e) => e,
  );
  expect(err).toBeInstanceOf(UpstreamError);
  expect((err as UpstreamError).code).toBe(code);
  return err as UpstreamError;
}

describe('UdpTransport', () => {
  it('sends a random ID, restores the caller ID and returns the reply', async () => {
    const srv = track(await udpServer((m, _r, reply) => reply(answer(m))));
    const t = track(new UdpTransport({ host: '127.0.0.1', port: srv.port, family: 4 }));
    const ids = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const r = await t.exchange(makeQuery('example.com', 'A', 7), soon());
      expect(idOf(r)).toBe(7);
      expect(addressOf(r)).toBe('192.0.2.1');
      ids.add(idOf(srv.queries[i]!));
    }
    expect(ids.size).toBeGreaterThan(35);
  });

  it('rotates source ports and closes retired sockets', async () => {
    const ports = new Set<number>();
    const srv = track(
      await udpServer((m, r, reply) => {
        ports.add(r.port);
        reply(answer(m));
      }),
    );
    const t = track(new UdpTransport({ host: '127.0.0.1', port: srv.port, family: 4, sockets: 2, queriesPerSocket: 3 }));
    for (let i = 0; i < 30; i++) await t.exchange(makeQuery(`n${i}.example`), soon());
    expect(ports.size).toBeGreaterThanOrEqual(9);
    expect(t.openSockets).toBeLessThanOrEqual(2);
  });

  it('ignores replies with a wrong ID or question and accepts the real one (case-insensitively)', async () => {
    const spoofs: string[] = [];
    const srv = track(
      await udpServer((m, _r, reply) => {
        const id = idOf(m);
        reply(answer(m, { id: (id + 1) & 0xffff, address: '6.6.6.6' }));
        reply(answer(m, { name: 'evil.example', address: '6.6.6.7' }));
        reply(answer(m, { address: '6.6.6.8', tc: false, rcode: 'NOERROR', name: 'EXAMPLE.com', id: id }).subarray(0, 8));
        setTimeout(() => reply(answer(m, { name: 'ExAmPlE.CoM' })), 10);
      }),
    );
    const t = track(new UdpTransport({ host: '127.0.0.1', port: srv.port, family: 4, events: { onSpoof: (r) => spoofs.push(r) } }));
    const r = await t.exchange(makeQuery('example.com'), soon());
    expect(addressOf(r)).toBe('192.0.2.1');
    expect(spoofs).toEqual(['id', 'question', 'malformed']);
  });

  it('survives a flood of random datagrams and still takes the real reply', async () => {
    let spoofs = 0;
    const srv = track(
      await udpServer((m, _r, reply) => {
        // 100 small datagrams: fits the default receive buffer (no kernel drops to blur the count).
        for (let i = 0; i < 100; i++) {
          const junk = randomBytes(Math.floor(Math.random() * 200));
          // Half of them carry the right ID, to reach the question check.
          if (junk.length >= 2 && i % 2 === 0) m.copy(junk, 0, 0, 2);
          reply(junk);
        }
        setTimeout(() => reply(answer(m)), 50);
      }),
    );
    const t = track(new UdpTransport({ host: '127.0.0.1', port: srv.port, family: 4, events: { onSpoof: () => spoofs++ } }));
    expect(addressOf(await t.exchange(makeQuery('flood.example'), soon(2000)))).toBe('192.0.2.1');
    expect(spoofs).toBeGreaterThan(80);
  });

  it('does not count a late reply (after the timeout) as a spoof', async () => {
    const spoofs: string[] = [];
    let replied = 0;
    const srv = track(
      await udpServer((m, _r, reply) =>
        setTimeout(() => {
          reply(answer(m));
          replied++;
        }, 80),
      ),
    );
    const t = track(new UdpTransport({ host: '127.0.0.1', port: srv.port, family: 4, events: { onSpoof: (r) => spoofs.push(r) } }));
    await expectCode(t.exchange(makeQuery('late.example'), soon(30)), 'TIMEOUT');
    await vi.waitFor(() => expect(replied).toBe(1), { timeout: 2000, interval: 5 });
    // A window on purpose: the late reply is on its way and must NOT be counted; nothing to wait for.
    await new Promise((r) => setTimeout(r, 30));
    expect(spoofs).toEqual([]);
  });

  it('ignores a reply from the wrong source port', async () => {
    const other = dgram.createSocket('udp4');
    await new Promise<void>((r) => other.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => other.close(() => r())));
    const srv = track(
      await udpServer((m, rinfo, reply) => {
        other.send(answer(m, { address: '6.6.6.6' }), rinfo.port, rinfo.address);
        setTimeout(() => reply(answer(m)), 20);
      }),
    );
    const t = track(new UdpTransport({ host: '127.0.0.1', port: srv.port, family: 4 }));
    expect(addressOf(await t.exchange(makeQuery('example.com'), soon()))).toBe('192.0.2.1');
  });

  it('times out on a dropped query, fails fast on a closed port, honours abort', async () => {
    const srv = track(await udpServer(() => {}));
    const t = track(new UdpTransport({ host: '127.0.0.1', port: srv.port, family: 4 }));
    const start = Date.now();
    await expectCode(t.exchange(makeQuery('example.com'), soon(150)), 'TIMEOUT');
    expect(Date.now() - start).toBeGreaterThanOrEqual(100);
    expect(Date.now() - start).toBeLessThan(1000);

    const ac = new AbortController();
    const p = t.exchange(makeQuery('example.com'), { deadline: Date.now() + 5000, signal: ac.signal });
    ac.abort();
    await expectCode(p, 'ABORTED');

    const dead = await udpServer(() => {});
    const port = dead.port;
    await dead.close();
    const t2 = track(new UdpTransport({ host: '127.0.0.1', port, family: 4 }));
    const s2 = Date.now();
    await expectCode(t2.exchange(makeQuery('example.com'), soon(2000)), 'NETWORK');
    expect(Date.now() - s2).toBeLessThan(1500); // not the 2000 ms timeout
  });

  it('works over IPv6', async () => {
    const srv = track(await udpServer((m, _r, reply) => reply(answer(m)), 6));
    const t = track(new UdpTransport({ host: '::1', port: srv.port, family: 6 }));
    expect(addressOf(await t.exchange(makeQuery('v6.example'), soon()))).toBe('192.0.2.1');
  });

  it('retries over TCP when the UDP reply is truncated', async () => {
    const u = track(await udpServer((m, _r, reply) => reply(answer(m, { tc: true }))));
    const s = track(await tcpServer((q, write) => write(answer(q, { pad: 200 }))));
    // Same port number is not guaranteed on both protocols: point each transport at its own server.
    const t = track(
      new UdpWithTcpFallback(
        'x',
        new UdpTransport({ host: '127.0.0.1', port: u.port, family: 4 }),
        new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port: s.port }),
      ),
    );
    const r = await t.exchange(makeQuery('big.example', 'A', 99), soon());
    expect(idOf(r)).toBe(99);
    expect(dnsPacket.decode(r).answers!.length).toBe(201);
    expect(t.truncatedRetries).toBe(1);
  });

  it('returns the truncated UDP reply when TCP is refused', async () => {
    const u = track(await udpServer((m, _r, reply) => reply(answer(m, { tc: true }))));
    const dead = await tcpServer(() => {});
    const port = dead.port;
    await dead.close();
    const t = track(
      new UdpWithTcpFallback(
        'x',
        new UdpTransport({ host: '127.0.0.1', port: u.port, family: 4 }),
        new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port }),
      ),
    );
    const r = await t.exchange(makeQuery('big.example', 'A', 98), soon());
    expect(dnsPacket.decode(r).flags! & dnsPacket.TRUNCATED_RESPONSE).toBeTruthy();
    expect(idOf(r)).toBe(98);
  });
});

describe('StreamTransport (TCP)', () => {
  it('pipelines 500 concurrent queries over one connection, replies out of order', async () => {
    const held: (() => void)[] = [];
    const srv = track(
      await tcpServer((q, write) => {
        const i = Number.parseInt(dnsPacket.decode(q).questions![0]!.name.slice(1), 10);
        held.push(() => write(answer(q, { address: `10.0.${i % 256}.1` })));
        if (held.length % 50 === 0) for (const f of held.splice(0).reverse()) f();
      }),
    );
    const t = track(new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port: srv.port, maxConnections: 1, maxInFlight: 128 }));
    const rs = await Promise.all(Array.from({ length: 500 }, (_, i) => t.exchange(makeQuery(`q${i}.example`, 'A', i), soon(5000))));
    for (const [i, r] of rs.entries()) {
      expect(idOf(r)).toBe(i);
      expect(dnsPacket.decode(r).questions![0]!.name).toBe(`q${i}.example`);
      expect(addressOf(r)).toBe(`10.0.${i % 256}.1`);
    }
    expect(srv.connections).toBe(1);
    expect(t.connectionsOpened).toBe(1);
  });

  it('opens more connections when one is full, then queues', async () => {
    const held: (() => void)[] = [];
    const srv = track(await tcpServer((q, write) => held.push(() => write(answer(q)))));
    const t = track(new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port: srv.port, maxConnections: 3, maxInFlight: 2 }));
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => t.exchange(makeQuery(`m${i}.example`, 'A', i), soon(3000))));
    await vi.waitFor(() => expect(held.length).toBe(6), { timeout: 3000, interval: 5 });
    expect(t.openConnections).toBe(3);
    // 6 in flight, 4 queued: release replies until everything is answered.
    while ((await Promise.race([all.then(() => true), new Promise((r) => setTimeout(() => r(false), 5))])) === false) for (const f of held.splice(0)) f();
    const rs = await all;
    for (const [i, r] of rs.entries()) expect(idOf(r)).toBe(i);
    expect(srv.connections).toBe(3);
  });

  it('closes idle connections and reconnects; retries once when a reused connection is reset', async () => {
    let n = 0;
    const srv = track(
      await tcpServer((q, write, socket) => {
        n++;
        if (n === 2)
          socket.destroy(); // reset with the query in flight on a reused connection
        else write(answer(q));
      }),
    );
    const t = track(new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port: srv.port, idleTimeout: 80 }));
    expect(addressOf(await t.exchange(makeQuery('a.example'), soon()))).toBe('192.0.2.1');
    expect(addressOf(await t.exchange(makeQuery('b.example'), soon()))).toBe('192.0.2.1');
    expect(srv.connections).toBe(2);
    await vi.waitFor(() => expect(t.openConnections).toBe(0), { timeout: 3000, interval: 5 }); // idleTimeout 80 ms

    expect(addressOf(await t.exchange(makeQuery('c.example'), soon()))).toBe('192.0.2.1');
    expect(srv.connections).toBe(3);
  });

  it('times out, fails on refused connections and bounds the queue', async () => {
    const srv = track(await tcpServer(() => {}));
    const t = track(new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port: srv.port, maxConnections: 1, maxInFlight: 1, maxQueue: 1 }));
    // Both deadlines are about 150 ms away and either may pass first: each
    // promise gets its handler now, so neither rejection is ever unhandled.
    const a = expectCode(t.exchange(makeQuery('a.example'), soon(150)), 'TIMEOUT');
    const b = expectCode(t.exchange(makeQuery('b.example'), soon(150)), 'TIMEOUT');
    await expectCode(t.exchange(makeQuery('c.example'), soon(150)), 'QUEUE_FULL');
    await Promise.all([a, b]);

    const dead = await tcpServer(() => {});
    const port = dead.port;
    await dead.close();
    const t2 = track(new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port }));
    const err = await expectCode(t2.exchange(makeQuery('a.example'), soon()), 'NETWORK');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('ignores random frames with unknown IDs or questions and still takes the real reply', async () => {
    const srv = track(
      await tcpServer((q, write) => {
        for (let i = 0; i < 100; i++) {
          const junk = randomBytes(12 + Math.floor(Math.random() * 300));
          if (i % 2 === 0) q.copy(junk, 0, 0, 2);
          write(junk);
        }
        write(answer(q));
      }),
    );
    const t = track(new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port: srv.port }));
    expect(addressOf(await t.exchange(makeQuery('junk.example'), soon(2000)))).toBe('192.0.2.1');
  });

  it('drops a connection that sends a malformed frame', async () => {
    const srv = track(await tcpServer((_q, write) => write(Buffer.from([1, 2, 3]))));
    const t = track(new StreamTransport({ protocol: 'tcp', host: '127.0.0.1', port: srv.port }));
    await expectCode(t.exchange(makeQuery('a.example'), soon()), 'NETWORK');
  });
});

describe('StreamTransport (DoT)', () => {
  it('verifies the certificate against the fragment name and pipelines 500 queries on one connection', async () => {
    const cert = await testCert();
    const srv = track(await tcpServer((q, write) => setTimeout(() => write(answer(q)), Math.random() * 5), cert));
    const t = track(new StreamTransport({ protocol: 'tls', host: '127.0.0.1', port: srv.port, servername: 'dns.test', ca: cert.cert, maxConnections: 1 }));
    const rs = await Promise.all(Array.from({ length: 500 }, (_, i) => t.exchange(makeQuery(`t${i}.example`, 'A', i), soon(5000))));
    for (const [i, r] of rs.entries()) expect(idOf(r)).toBe(i);
    expect(srv.connections).toBe(1);
  });

  it('checks the certificate against the IP when no server name is given, and resumes the TLS session', async () => {
    const cert = await testCert();
    const srv = track(await tcpServer((q, write) => write(answer(q)), cert));
    const t = track(new StreamTransport({ protocol: 'tls', host: '127.0.0.1', port: srv.port, ca: cert.cert, idleTimeout: 100 }));
    expect(idOf(await t.exchange(makeQuery('a.example', 'A', 3), soon()))).toBe(3);
    await vi.waitFor(() => expect(t.openConnections).toBe(0), { timeout: 3000, interval: 5 }); // idleTimeout 100 ms

    expect(idOf(await t.exchange(makeQuery('b.example', 'A', 4), soon()))).toBe(4);
    expect(srv.connections).toBe(2);
    expect(t.sessionsResumed).toBe(1);
  });

  it('rejects an untrusted certificate and a wrong name', async () => {
    const cert = await testCert();
    const srv = track(await tcpServer((q, write) => write(answer(q)), cert));
    const t = track(new StreamTransport({ protocol: 'tls', host: '127.0.0.1', port: srv.port, servername: 'dns.test' }));
    const e1 = await expectCode(t.exchange(makeQuery('a.example'), soon()), 'NETWORK');
    expect(e1.message).toMatch(/SELF_SIGNED|self.signed|DEPTH_ZERO/i);
    const t2 = track(new StreamTransport({ protocol: 'tls', host: '127.0.0.1', port: srv.port, servername: 'other.test', ca: cert.cert }));
    const e2 = await expectCode(t2.exchange(makeQuery('a.example'), soon()), 'NETWORK');
    expect(e2.message).toMatch(/ALTNAME|altnames|does not match/i);
  });
});

describe('DohTransport', () => {
  it('POSTs with ID 0 over one reused HTTP/2 session', async () => {
    const cert = await testCert();
    const srv = track(await dohServer((q, stream) => dohReply(stream, answer(q)), cert));
    const t = track(new DohTransport({ host: '127.0.0.1', port: srv.port, path: '/dns-query', servername: 'dns.test', ca: cert.cert }));
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => t.exchange(makeQuery(`d${i}.example`, 'A', i + 1), soon(3000))));
    for (const [i, r] of rs.entries()) expect(idOf(r)).toBe(i + 1);
    expect(srv.queries.every((q) => idOf(q) === 0)).toBe(true);
    expect(srv.requests.every((r) => r.method === 'POST' && r.path === '/dns-query')).toBe(true);
    expect(srv.sessions).toBe(1);
  });

  it('connects to an IP without a server name (certificate checked against the IP)', async () => {
    const cert = await testCert();
    const srv = track(await dohServer((q, stream) => dohReply(stream, answer(q)), cert));
    const t = track(new DohTransport({ host: '127.0.0.1', port: srv.port, path: '/dns-query', ca: cert.cert }));
    expect(idOf(await t.exchange(makeQuery('ip.example', 'A', 12), soon()))).toBe(12);
  });

  it('opens a new session after the server drops the old one', async () => {
    const cert = await testCert();
    const srv = track(await dohServer((q, stream) => dohReply(stream, answer(q)), cert));
    const t = track(new DohTransport({ host: '127.0.0.1', port: srv.port, path: '/dns-query', servername: 'dns.test', ca: cert.cert }));
    expect(idOf(await t.exchange(makeQuery('one.example', 'A', 1), soon()))).toBe(1);
    await srv.dropSessions();
    await vi.waitFor(() => expect(t.openSessions).toBe(0), { timeout: 3000, interval: 5 });
    expect(idOf(await t.exchange(makeQuery('two.example', 'A', 2), soon()))).toBe(2);
    expect(srv.sessions).toBe(2);
    expect(t.sessionsOpened).toBe(2);
  });

  it('stays within the server SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
    const cert = await testCert();
    let open = 0;
    let peak = 0;
    const srv = track(
      await dohServer(
        (q, stream) => {
          peak = Math.max(peak, ++open);
          setTimeout(() => {
            open--;
            dohReply(stream, answer(q));
          }, 5);
        },
        cert,
        { maxConcurrentStreams: 4 },
      ),
    );
    const t = track(new DohTransport({ host: '127.0.0.1', port: srv.port, path: '/dns-query', servername: 'dns.test', ca: cert.cert }));
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => t.exchange(makeQuery(`c${i}.example`, 'A', i), soon(3000))));
    for (const [i, r] of rs.entries()) expect(idOf(r)).toBe(i);
    expect(peak).toBeLessThanOrEqual(4);
    expect(srv.sessions).toBe(1);
  });

  it('fails fast when the server is unreachable or its certificate is not trusted', async () => {
    const cert = await testCert();
    const dead = await dohServer(() => {}, cert);
    const port = dead.port;
    await dead.close();
    const t = track(new DohTransport({ host: '127.0.0.1', port, path: '/dns-query', servername: 'dns.test', ca: cert.cert }));
    const start = Date.now();
    const errs = await Promise.all([1, 2, 3].map((i) => expectCode(t.exchange(makeQuery(`x${i}.example`), soon(2000)), 'NETWORK')));
    expect(errs[0]!.message).toContain('ECONNREFUSED');
    expect(Date.now() - start).toBeLessThan(1500); // not the 2000 ms timeout
    expect(t.sessionsOpened).toBe(1);

    const srv = track(await dohServer((q, stream) => dohReply(stream, answer(q)), cert));
    const untrusted = track(new DohTransport({ host: '127.0.0.1', port: srv.port, path: '/dns-query', servername: 'dns.test' }));
    await expectCode(untrusted.exchange(makeQuery('y.example'), soon(2000)), 'NETWORK');
  });

  it('GETs with base64url and ID 0', async () => {
    const cert = await testCert();
    const srv = track(await dohServer((q, stream) => dohReply(stream, answer(q)), cert));
    const t = track(new DohTransport({ host: '127.0.0.1', port: srv.port, path: '/dns-query?x=1', servername: 'dns.test', ca: cert.cert, method: 'GET' }));
    const r = await t.exchange(makeQuery('get.example', 'A', 321), soon());
    expect(idOf(r)).toBe(321);
    expect(srv.requests[0]!.method).toBe('GET');
    expect(srv.requests[0]!.path).toMatch(/^\/dns-query\?x=1&dns=[A-Za-z0-9_-]+$/);
    expect(idOf(srv.queries[0]!)).toBe(0);
  });

  it('rejects bad statuses, content types, oversized bodies and wrong questions; times out', async () => {
    const cert = await testCert();
    let mode = 0;
    const srv = track(
      await dohServer((q, stream) => {
        if (mode === 0) dohReply(stream, Buffer.from('nope'), 500, 'text/plain');
        else if (mode === 1) dohReply(stream, answer(q), 200, 'text/html');
        else if (mode === 2) dohReply(stream, Buffer.alloc(70000));
        else if (mode === 3) dohReply(stream, answer(q, { name: 'other.example' }));
        // mode 4: never answer
      }, cert),
    );
    const t = track(new DohTransport({ host: '127.0.0.1', port: srv.port, path: '/dns-query', servername: 'dns.test', ca: cert.cert }));
    expect((await expectCode(t.exchange(makeQuery('a.example'), soon()), 'BAD_RESPONSE')).message).toContain('500');
    mode = 1;
    expect((await expectCode(t.exchange(makeQuery('a.example'), soon()), 'BAD_RESPONSE')).message).toContain('text/html');
    mode = 2;
    await expectCode(t.exchange(makeQuery('a.example'), soon()), 'BAD_RESPONSE');
    mode = 3;
    await expectCode(t.exchange(makeQuery('a.example'), soon()), 'BAD_RESPONSE');
    mode = 4;
    await expectCode(t.exchange(makeQuery('a.example'), soon(150)), 'TIMEOUT');
  });
});
