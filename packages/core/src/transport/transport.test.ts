import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { decode, encode, type MessageInit, RecordType } from '../packet/index.js';
import type { CoreMetrics } from '../pipeline/metrics.js';
import type { Middleware } from '../pipeline/types.js';
import { CORE_METRICS, createResolver, type Resolver } from '../resolver.js';
import { silentLogger } from '../util/logger.js';
import { udpExchange } from '../../../testing/src/clients.js';
import { type ListenOptions, reusePortSupported } from './types.js';
import { BrokenHandler, frame, socketEvents } from './transport.test-helpers.js';
import { isV4Mapped, kernelDropsSince, loadNativeUdp, UdpClient, udpResponseLimit } from './udp.js';

/**
 * Every UDP test runs over both paths: node:dgram (the fallback, always) and
 * the batched native addon (@heimdall/udp). Without the addon the native runs
 * are skipped locally; under CI=true they run and fail.
 */
const nativeAvailable = (await loadNativeUdp()).available;
const UDP_PATHS = [
  { name: 'node:dgram', native: false },
  { name: 'native', native: true },
] as const;
const runs = (native: boolean): boolean => !native || nativeAvailable || process.env.CI === 'true';

function q(name = 'example.com', extra: Partial<MessageInit> = {}, id = 0x4242): Buffer {
  return encode({ id, rd: true, questions: [{ name, type: RecordType.A }], ...extra });
}

const answerMany: Middleware = (ctx) => {
  const n = ctx.query.qname.startsWith('big') ? 100 : 1;
  ctx.answer(Array.from({ length: n }, (_, i) => ({ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: `10.0.${i >> 8}.${i & 255}` })));
};
const delayByName: Middleware = async (ctx, next) => {
  const m = /^d(\d+)\./.exec(ctx.query.qname);
  if (m) await new Promise((r) => setTimeout(r, Number(m[1])));
  return next();
};

let resolver: Resolver | undefined;
afterEach(async () => {
  await resolver?.stop();
  resolver = undefined;
});

function metricsOf(r: Resolver): CoreMetrics {
  return r.container.get<CoreMetrics>(CORE_METRICS);
}

/** Waits for a condition (an assertion that passes), checking every few ms, up to `timeout`. */
function until(check: () => void, timeout = 3000): Promise<void> {
  return vi.waitFor(check, { timeout, interval: 5 });
}

async function serve(listen: ListenOptions[], chain: Middleware[] = [delayByName, answerMany], extra = {}): Promise<Resolver> {
  resolver = createResolver({
    plugins: chain.map((m, i) => ({ name: `p${i}`, middleware: () => m })),
    listen,
    logger: silentLogger(),
    drainTimeoutMs: 500,
    ...extra,
  });
  await resolver.start();
  return resolver;
}

/** The kit's UDP client (by path: @heimdall/testing depends on core, not the reverse), as `{ msg, from }`. */
async function udpAsk(port: number, msg: Buffer, address = '127.0.0.1', ms = 1000): Promise<{ msg: Buffer; from: dgram.RemoteInfo }> {
  const { reply, from } = await udpExchange(port, msg, { address, timeoutMs: ms });
  return { msg: reply, from };
}

/** A TCP client that collects framed responses. */
class TcpClient {
  readonly socket: net.Socket;
  readonly responses: Buffer[] = [];
  private buf = Buffer.alloc(0);
  closed = false;
  ended = false;
  readonly connected: Promise<void>;
  readonly closedP: Promise<void>;

  constructor(port: number, host = '127.0.0.1') {
    this.socket = net.connect({ port, host, allowHalfOpen: true });
    ({ connected: this.connected, closed: this.closedP } = socketEvents(this.socket, () => {
      this.closed = true;
    }));
    this.socket.on('end', () => {
      this.ended = true;
      if (!this.socket.writableEnded) this.socket.end(); // like a real client: close when the server does
    });
    this.socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 2 && this.buf.length >= 2 + this.buf.readUInt16BE(0)) {
        const len = this.buf.readUInt16BE(0);
        this.responses.push(this.buf.subarray(2, 2 + len));
        this.buf = this.buf.subarray(2 + len);
      }
    });
  }

  /** Resolves when `n` responses arrived; rejects when the connection closes first or after `ms`. */
  waitFor(n: number, ms = 2000): Promise<Buffer[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.responses.length >= n) done(null);
        else if (this.closed) done(new Error(`closed after ${this.responses.length}/${n} responses`));
      };
      const done = (err: Error | null) => {
        clearTimeout(t);
        this.socket.off('data', check);
        this.socket.off('close', check);
        if (err) reject(err);
        else resolve(this.responses);
      };
      const t = setTimeout(() => done(new Error(`got ${this.responses.length}/${n} responses in ${ms} ms`)), ms);
      // Registered after the parsing 'data' listener and the 'close' flag, so both are up to date here.
      this.socket.on('data', check);
      this.socket.on('close', check);
      check();
    });
  }
}

test("the kernel's UDP drop count is read as a running count that wraps at 2^32", () => {
  expect(kernelDropsSince(0, 5)).toBe(5);
  expect(kernelDropsSince(5, 5)).toBe(0);
  expect(kernelDropsSince(0xfffffffe, 1)).toBe(3);
});

describe.each(UDP_PATHS)('UDP transport ($name)', ({ native }) => {
  if (!runs(native)) return void test.skip('native UDP addon not built', () => {});
  test('port 0, IPv4 and IPv6, replies from the bound address', async () => {
    const r = await serve([
      { native, transport: 'udp', address: '127.0.0.1', port: 0 },
      { native, transport: 'udp', address: '::1', port: 0 },
    ]);
    const [v4, v6] = r.addresses();
    expect(v4.port).toBeGreaterThan(0);
    expect(v6.family).toBe(6);
    const a = await udpAsk(v4.port, q());
    expect(decode(a!.msg).answers[0].data).toBe('10.0.0.0');
    expect(a!.from.address).toBe('127.0.0.1');
    expect(a!.from.port).toBe(v4.port);
    const b = await udpAsk(v6.port, q(), '::1');
    expect(b!.from.address).toBe('::1');
    expect(decode(b!.msg).id).toBe(0x4242);
  });

  test('truncates to 512 without EDNS, to the EDNS size up to the 1232 ceiling, with TC', async () => {
    const r = await serve([{ native, transport: 'udp', port: 0 }]);
    const port = r.addresses()[0].port;
    const plain = (await udpAsk(port, q('big.test')))!.msg;
    expect(plain.length).toBeLessThanOrEqual(512);
    expect(decode(plain).tc).toBe(true);
    const e4096 = (await udpAsk(port, q('big.test', { edns: { udpPayloadSize: 4096 } })))!.msg;
    expect(e4096.length).toBeLessThanOrEqual(1232);
    expect(e4096.length).toBeGreaterThan(512);
    const m = decode(e4096);
    expect(m.tc).toBe(true);
    expect(m.edns).toBeDefined(); // OPT kept
    const small = (await udpAsk(port, q('small.test', { edns: { udpPayloadSize: 4096 } })))!.msg;
    expect(decode(small).tc).toBe(false);
  });

  test("each query's client is a UdpClient made by `new`, not an object literal (V8 pretenures literals: see UdpClient)", async () => {
    const seen: unknown[] = [];
    const r = await serve(
      [{ native, transport: 'udp', address: '127.0.0.1', port: 0 }],
      [
        (ctx, next) => {
          seen.push(ctx.client);
          return next();
        },
        answerMany,
      ],
    );
    await udpAsk(r.addresses()[0].port, q(), '127.0.0.1');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(UdpClient);
    expect(seen[0]).toMatchObject({ address: '127.0.0.1', family: 4, transport: 'udp', localAddress: '127.0.0.1' });
  });

  test('queries the kernel dropped for a full receive buffer are counted (native path: SO_RXQ_OVFL)', async () => {
    const r = await serve([{ native, transport: 'udp', address: '127.0.0.1', port: 0, recvBufferSize: 4096 }]);
    const port = r.addresses()[0].port;
    // Another process floods while this one, the server, is blocked in spawnSync: nothing is read meanwhile.
    const flood = `const s=require('node:dgram').createSocket('udp4');const q=Buffer.from('${q().toString('hex')}','hex');let n=0;(function f(){if(n===2000)return s.close();s.send(q,${port},'127.0.0.1',()=>{n++;f()})})()`;
    expect(spawnSync(process.execPath, ['-e', flood], { stdio: 'ignore' }).status).toBe(0);
    const m = metricsOf(r);
    await expect.poll(() => m.queries, { timeout: 3000 }).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 100));
    // The kernel's count rides on each datagram queued after the drops: answered at once and asynchronously
    // (the addon checks the records that come back, drop-count flag and all).
    expect(await udpAsk(port, q())).not.toBeNull();
    expect(decode((await udpAsk(port, q('d5.example')))!.msg).answers[0].data).toBe('10.0.0.0');
    if (native) {
      expect(m.dropped.receive_buffer).toBeGreaterThan(1000);
      expect(m.queries + m.dropped.receive_buffer).toBe(2002);
    } else expect(m.dropped.receive_buffer).toBe(0); // node:dgram does not say
  });

  test('maxUdpPayload is configurable and checked', async () => {
    const r = await serve([{ native, transport: 'udp', port: 0, maxUdpPayload: 4096 }]);
    const big = (await udpAsk(r.addresses()[0].port, q('big.test', { edns: { udpPayloadSize: 4096 } })))!.msg;
    expect(decode(big).tc).toBe(false);
    expect(big.length).toBeGreaterThan(1232);
    expect(() => createResolver({ plugins: [], listen: [{ native, transport: 'udp', port: 0, maxUdpPayload: 100 }] })).toThrow(/maxUdpPayload/);
  });

  test('IPv4-mapped client addresses are recognised (dual-stack sockets report IPv4 clients as plain IPv4)', () => {
    expect(isV4Mapped('::ffff:192.0.2.1')).toBe(true);
    expect(isV4Mapped('::ffff:c000:201')).toBe(false);
    expect(isV4Mapped('::1')).toBe(false);
    expect(isV4Mapped('2001:db8::ffff:1.2.3.4')).toBe(false);
    expect(isV4Mapped('192.0.2.1')).toBe(false);
  });

  test('udpResponseLimit clamps', () => {
    expect(udpResponseLimit(q(), 1232)).toBe(512);
    expect(udpResponseLimit(q('a', { edns: { udpPayloadSize: 100 } }), 1232)).toBe(512);
    expect(udpResponseLimit(q('a', { edns: { udpPayloadSize: 9000 } }), 1232)).toBe(1232);
    expect(udpResponseLimit(q('a', { edns: { udpPayloadSize: 1000 } }), 1232)).toBe(1000);
    expect(udpResponseLimit(Buffer.alloc(3), 1232)).toBe(512);
  });

  test('async answers are sent; a second listener on a busy port fails with ListenError', async () => {
    const r = await serve([{ native, transport: 'udp', port: 0 }]);
    const port = r.addresses()[0].port;
    const a = await udpAsk(port, q('d30.test'));
    expect(decode(a!.msg).answers).toHaveLength(1);
    const other = createResolver({ plugins: [], listen: [{ native, transport: 'udp', port }], logger: silentLogger() });
    await expect(other.start()).rejects.toMatchObject({ code: 'LISTEN' });
  });

  test('serves on the path asked for', async () => {
    const r = await serve([{ native, transport: 'udp', port: 0 }]);
    const { UdpServer } = await import('./udp.js');
    const servers = (r as unknown as { listening: unknown[] }).listening.filter((t) => t instanceof UdpServer) as InstanceType<typeof UdpServer>[];
    expect(servers.map((t) => t.path)).toEqual([native ? 'native' : 'dgram']);
  });

  test('a burst of 500 queries from one socket (several batches), sync and async mixed: every one answered, each to its ID', async () => {
    const r = await serve([{ native, transport: 'udp', port: 0, recvBufferSize: 1 << 20 }]);
    const port = r.addresses()[0].port;
    // The native path answers 64 at a time: a default-sized client buffer (≈ 256 loopback datagrams) would overflow.
    const c = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    const got = new Map<number, string>();
    c.on('message', (m) => {
      const d = decode(m);
      got.set(d.id, d.questions[0].name);
    });
    await new Promise<void>((res) => c.bind(0, '127.0.0.1', () => res()));
    for (let i = 0; i < 500; i++) c.send(q(i % 7 === 0 ? `d1.n${i}.test` : `n${i}.test`, {}, i), port, '127.0.0.1');
    await until(() => expect(got.size).toBe(500), 5000);
    c.close();
    for (let i = 0; i < 500; i += 37) expect(got.get(i)).toBe(i % 7 === 0 ? `d1.n${i}.test` : `n${i}.test`);
    expect(metricsOf(r).queries).toBe(500);
  });

  test('a wildcard listener tells the chain, and replies from, the address the query arrived at (native: IP_PKTINFO)', async () => {
    const seen: string[] = [];
    const r = await serve(
      [{ native, transport: 'udp', address: '0.0.0.0', port: 0 }],
      [
        (ctx, next) => {
          seen.push(`${ctx.client.address}>${ctx.client.localAddress}`);
          return next();
        },
        answerMany,
      ],
    );
    const port = r.addresses()[0].port;
    const a = await udpAsk(port, q(), '127.0.0.2');
    expect(decode(a!.msg).id).toBe(0x4242);
    if (native) {
      expect(a!.from.address).toBe('127.0.0.2');
      expect(seen).toEqual(['127.0.0.1>127.0.0.2']);
    } else expect(seen).toEqual(['127.0.0.1>0.0.0.0']);
  });

  test('a dual-stack :: listener reports IPv4 clients as IPv4 and answers them', async () => {
    const seen: Array<[string, number]> = [];
    const r = await serve(
      [{ native, transport: 'udp', address: '::', port: 0 }],
      [
        (ctx, next) => {
          seen.push([ctx.client.address, ctx.client.family]);
          return next();
        },
        answerMany,
      ],
    );
    const port = r.addresses()[0].port;
    const a = await udpAsk(port, q(), '127.0.0.1');
    expect(a!.from.address).toBe('127.0.0.1');
    const b = await udpAsk(port, q(), '::1');
    expect(b!.from.address).toBe('::1');
    expect(seen).toEqual([
      ['127.0.0.1', 4],
      ['::1', 6],
    ]);
  });

  test('datagrams shorter than a header are dropped as malformed; the listener keeps serving', async () => {
    const r = await serve([{ native, transport: 'udp', port: 0 }]);
    const port = r.addresses()[0].port;
    const c = dgram.createSocket('udp4');
    c.send(Buffer.alloc(0), port, '127.0.0.1');
    c.send(Buffer.from([1, 2, 3]), port, '127.0.0.1');
    await until(() => expect(metricsOf(r).dropped.malformed).toBe(2));
    c.close();
    expect(decode((await udpAsk(port, q()))!.msg).id).toBe(0x4242);
  });

  test('reusePort: two resolvers share a port (native: on every Node version; dgram: where Node supports it)', async () => {
    const first = await serve([{ native, transport: 'udp', address: '127.0.0.1', port: 0, reusePort: true }]);
    const port = first.addresses()[0].port;
    const second = createResolver({
      plugins: [{ name: 'a', middleware: () => answerMany }],
      listen: [{ native, transport: 'udp', address: '127.0.0.1', port, reusePort: true }],
      logger: silentLogger(),
    });
    try {
      if (native || reusePortSupported) {
        await second.start();
        expect(second.addresses()[0].port).toBe(port);
        // The kernel spreads clients by their address hash: ask from many source ports, every one is answered.
        for (let i = 0; i < 8; i++) expect(decode((await udpAsk(port, q('shared.test', {}, i)))!.msg).id).toBe(i);
      } else {
        await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
      }
    } finally {
      await second.stop();
    }
  });

  test('stop() answers SERVFAIL to UDP queries still running after drainTimeoutMs', async () => {
    const hang: Middleware = () => new Promise<void>(() => {});
    const r = await serve([{ native, transport: 'udp', port: 0 }], [hang], { drainTimeoutMs: 100 });
    const port = r.addresses()[0].port;
    const answer = udpAsk(port, q('hang.test', {}, 31), '127.0.0.1', 2000);
    await until(() => expect(metricsOf(r).inFlight).toBe(1));
    await r.stop();
    resolver = undefined;
    const m = decode((await answer)!.msg);
    expect(m.id).toBe(31);
    expect(m.rcode).toBe(2);
  });

  test('a handler that throws or rejects does not kill the listener', async () => {
    const { UdpServer } = await import('./udp.js');
    const { CoreMetrics } = await import('../pipeline/metrics.js');
    const handler = new BrokenHandler();
    const udp = new UdpServer({ native, transport: 'udp', port: 0 }, { handler, logger: silentLogger(), metrics: new CoreMetrics() });
    await udp.listen();
    expect(udp.path).toBe(native ? 'native' : 'dgram');
    const u = dgram.createSocket('udp4');
    for (let i = 0; i < 4; i++) u.send(q(), udp.address().port, '127.0.0.1');
    await until(() => expect(handler.calls).toBe(4));
    u.send(q(), udp.address().port, '127.0.0.1');
    await until(() => expect(handler.calls).toBe(5));
    u.close();
    await udp.close();
  });
});

describe('TCP transport', () => {
  test('frames split across chunks, byte by byte, and several frames in one chunk', async () => {
    const r = await serve([{ transport: 'tcp', port: 0 }]);
    const c = new TcpClient(r.addresses()[0].port);
    await c.connected;
    const f = frame(q('a.test', {}, 1));
    for (const byte of f) {
      c.socket.write(Buffer.from([byte]));
      await new Promise((x) => setImmediate(x));
    }
    await c.waitFor(1);
    c.socket.write(Buffer.concat([frame(q('b.test', {}, 2)), frame(q('c.test', {}, 3))]));
    await c.waitFor(3);
    expect(c.responses.map((m) => decode(m).id)).toEqual([1, 2, 3]);
    c.socket.destroy();
  });

  test('pipelined queries are answered out of order; large answers are not truncated', async () => {
    const r = await serve([{ transport: 'tcp', port: 0 }]);
    const c = new TcpClient(r.addresses()[0].port);
    c.socket.write(Buffer.concat([frame(q('d80.test', {}, 1)), frame(q('big.test', {}, 2)), frame(q('d20.test', {}, 3))]));
    await c.waitFor(3);
    expect(c.responses.map((m) => decode(m).id)).toEqual([2, 3, 1]);
    const big = decode(c.responses[0]);
    expect(big.tc).toBe(false);
    expect(big.answers).toHaveLength(100);
    c.socket.destroy();
  });

  test('idle timeout closes a quiet connection but not one with a query in flight', async () => {
    const r = await serve([{ transport: 'tcp', port: 0, idleTimeoutMs: 100 }]);
    const port = r.addresses()[0].port;
    const idle = new TcpClient(port);
    const busy = new TcpClient(port);
    await busy.connected;
    busy.socket.write(frame(q('d250.test', {}, 9)));
    const t0 = Date.now();
    await idle.closedP;
    expect(idle.ended).toBe(true); // a graceful close (our FIN), not a reset
    expect(Date.now() - t0).toBeLessThan(2000);
    await busy.waitFor(1, 2000);
    expect(decode(busy.responses[0]).id).toBe(9);
    await busy.closedP; // then it goes idle and is closed too
  });

  test('max connections: a new one evicts the longest-idle, and is counted', async () => {
    const r = await serve([{ transport: 'tcp', port: 0, maxConnections: 2 }]);
    const port = r.addresses()[0].port;
    const m = metricsOf(r);
    const a = new TcpClient(port);
    const b = new TcpClient(port);
    await Promise.all([a.connected, b.connected]);
    await until(() => expect(m.tcpConnections).toBe(2));
    b.socket.write(frame(q('ok.test', {}, 4)));
    await b.waitFor(1); // a is now the longest idle
    const c = new TcpClient(port);
    c.socket.write(frame(q('ok.test', {}, 5)));
    await c.waitFor(1);
    await a.closedP;
    expect(m.tcpClosed.evicted).toBe(1);
    expect(m.dropped.overload).toBe(0);
    expect(m.tcpConnections).toBe(2);
    b.socket.destroy();
    c.socket.destroy();
    await Promise.all([b.closedP, c.closedP]);
    await until(() => expect(m.tcpConnections).toBe(0));
    const d = new TcpClient(port);
    d.socket.write(frame(q('again.test', {}, 6)));
    await d.waitFor(1);
    expect(m.tcpClosed.evicted).toBe(1);
    d.socket.destroy();
  });

  test('a frame above maxMessageSize or below a header closes the connection', async () => {
    const r = await serve([{ transport: 'tcp', port: 0, maxMessageSize: 512 }]);
    const port = r.addresses()[0].port;
    const big = new TcpClient(port);
    const header = Buffer.alloc(2);
    header.writeUInt16BE(513, 0);
    big.socket.write(header);
    await big.closedP;
    const tiny = new TcpClient(port);
    tiny.socket.write(Buffer.from([0, 3, 1, 2, 3]));
    await tiny.closedP;
    const m = r.container.get<{ dropped: Record<string, number> }>(CORE_METRICS);
    expect(m.dropped.oversize).toBe(1);
    expect(m.dropped.malformed).toBe(1);
    expect(() => createResolver({ plugins: [], listen: [{ transport: 'tcp', port: 0, maxMessageSize: 70000 }] })).toThrow(/maxMessageSize/);
  });

  test('half-closed: queries sent before FIN are answered, then the server closes', async () => {
    const r = await serve([{ transport: 'tcp', port: 0 }]);
    const c = new TcpClient(r.addresses()[0].port);
    await c.connected;
    c.socket.end(Buffer.concat([frame(q('d50.test', {}, 1)), frame(q('now.test', {}, 2))]));
    await c.closedP;
    expect(c.responses.map((m) => decode(m).id).sort()).toEqual([1, 2]);
    expect(c.ended).toBe(true);
  });

  test('a reset connection with queries in flight does not crash or leak', async () => {
    const r = await serve([{ transport: 'tcp', port: 0 }]);
    const port = r.addresses()[0].port;
    for (let i = 0; i < 5; i++) {
      const c = new TcpClient(port);
      await c.connected;
      c.socket.write(frame(q('d30.test', {}, i)));
      c.socket.resetAndDestroy();
      await c.closedP;
    }
    // The server sees each reset asynchronously (and later still under CPU load): wait for it.
    await until(() => expect(metricsOf(r).tcpConnections).toBe(0));
    const ok = new TcpClient(port);
    ok.socket.write(frame(q('alive.test', {}, 77)));
    expect(decode((await ok.waitFor(1))[0]).id).toBe(77);
    ok.socket.destroy();
  });

  test('maxInFlightPerConnection pauses reading; maxQueriesPerConnection closes after N', async () => {
    let running = 0;
    let peak = 0;
    const gate: Middleware = async (ctx) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((x) => setTimeout(x, 20));
      running--;
      ctx.answer([]);
    };
    const r = await serve([{ transport: 'tcp', port: 0, maxInFlightPerConnection: 2, maxQueriesPerConnection: 5 }], [gate]);
    const c = new TcpClient(r.addresses()[0].port);
    c.socket.write(Buffer.concat(Array.from({ length: 7 }, (_, i) => frame(q(`x${i}.test`, {}, i)))));
    await c.closedP;
    expect(peak).toBe(2);
    expect(c.responses).toHaveLength(5);
  });

  test('a client that does not read its answers is dropped at maxWriteBuffer', async () => {
    const r = await serve([{ transport: 'tcp', port: 0, maxWriteBuffer: 65537, maxInFlightPerConnection: 65535 }]);
    const c = new TcpClient(r.addresses()[0].port);
    await c.connected;
    c.socket.pause(); // never read
    const m = metricsOf(r);
    const burst = Buffer.concat(Array.from({ length: 500 }, (_, i) => frame(q('big.test', {}, i))));
    // Keep asking (each burst is ~850 KB of answers) until the server gives up on us; at most 20 bursts.
    // A paused client never sees the close (the FIN sits behind unread data), so watch the server.
    for (let i = 0; i < 20 && m.dropped.overload === 0 && !c.closed; i++) {
      if (!c.socket.write(burst)) await Promise.race([new Promise((x) => c.socket.once('drain', x)), c.closedP]);
      else await new Promise((x) => setImmediate(x));
    }
    await until(() => expect(m.dropped.overload).toBe(1));
    await until(() => expect(m.tcpConnections).toBe(0));
    c.socket.destroy();
  });

  test('stop() drains in-flight TCP and UDP answers, then closes', async () => {
    const r = await serve([
      { transport: 'tcp', port: 0 },
      { transport: 'udp', port: 0 },
    ]);
    const [tcp, udp] = r.addresses();
    const c = new TcpClient(tcp.port);
    c.socket.write(frame(q('d100.test', {}, 1)));
    const u = udpAsk(udp.port, q('d100.test', {}, 2));
    await until(() => expect(metricsOf(r).inFlight).toBe(2)); // both queries are running
    const stopped = r.stop();
    await c.waitFor(1);
    expect(decode((await u)!.msg).id).toBe(2);
    await stopped;
    await c.closedP;
    // Nothing listens any more.
    const late = new TcpClient(tcp.port);
    await late.closedP;
    resolver = undefined;
  });
});

describe('a broken handler does not kill the transports', () => {
  test('UDP and TCP survive a handler that throws or rejects', async () => {
    const { UdpServer } = await import('./udp.js');
    const { TcpServer } = await import('./tcp.js');
    const { CoreMetrics } = await import('../pipeline/metrics.js');
    const handler = new BrokenHandler();
    const deps = { handler, logger: silentLogger(), metrics: new CoreMetrics() };
    const udp = new UdpServer({ transport: 'udp', port: 0 }, deps);
    const tcp = new TcpServer({ transport: 'tcp', port: 0 }, deps);
    await udp.listen();
    await tcp.listen();
    const u = dgram.createSocket('udp4');
    for (let i = 0; i < 4; i++) u.send(q(), udp.address().port, '127.0.0.1');
    await until(() => expect(handler.calls).toBe(4)); // no answers to wait for: wait for the handler calls
    u.close();
    const c = new TcpClient(tcp.address().port);
    c.socket.write(Buffer.concat([frame(q()), frame(q()), frame(q())]));
    await until(() => expect(handler.calls).toBe(7));
    // Both transports still answer nothing but stay up: one more query reaches the handler.
    c.socket.write(frame(q()));
    await until(() => expect(handler.calls).toBe(8));
    c.socket.destroy();
    await udp.close();
    await tcp.close();
  });
});

test('stop() answers SERVFAIL to queries still running after drainTimeoutMs and aborts them', async () => {
  let aborted = false;
  const hang: Middleware = (ctx) =>
    new Promise<void>(() => {
      ctx.signal.addEventListener('abort', () => (aborted = true));
    });
  const r = await serve([{ transport: 'udp', port: 0 }], [hang], { drainTimeoutMs: 100 });
  const port = r.addresses()[0].port;
  const answer = udpAsk(port, q('hang.test', {}, 31), '127.0.0.1', 2000);
  await until(() => expect(metricsOf(r).inFlight).toBe(1));
  const t0 = Date.now();
  await r.stop();
  resolver = undefined;
  expect(Date.now() - t0).toBeLessThan(1000);
  const m = decode((await answer)!.msg);
  expect(m.id).toBe(31);
  expect(m.rcode).toBe(2);
  expect(aborted).toBe(true);
});

describe('reusePort', () => {
  test('node:dgram: two resolvers share a port with reusePort where Node supports it; elsewhere the flag is ignored and the second bind fails', async () => {
    const first = await serve([{ native: false, transport: 'udp', address: '127.0.0.1', port: 0, reusePort: true }]);
    const port = first.addresses()[0].port;
    const second = createResolver({
      plugins: [{ name: 'a', middleware: () => answerMany }],
      listen: [
        { native: false, transport: 'udp', address: '127.0.0.1', port, reusePort: true },
        { transport: 'tcp', address: '127.0.0.1', port, reusePort: true },
      ],
      logger: silentLogger(),
    });
    try {
      if (reusePortSupported) {
        await second.start();
        expect(second.addresses().map((a) => a.port)).toEqual([port, port]);
        const r = await udpAsk(port, q('shared.test'));
        expect(r && decode(r.msg).answers.length).toBe(1);
      } else {
        await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
      }
    } finally {
      await second.stop();
    }
  });
});
