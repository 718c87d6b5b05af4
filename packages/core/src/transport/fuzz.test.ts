/**
 * Bad input on every path: random and mutated packets through the resolver,
 * over UDP and TCP (random chunking, slow and partial frames, oversize
 * frames, connection floods). Nothing may crash, hang or leak connections.
 * Bounded: a few hundred packets per case, loopback only.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { decode, encode, RecordType } from '../packet/index.js';
import type { CoreMetrics } from '../pipeline/metrics.js';
import type { Middleware } from '../pipeline/types.js';
import { CORE_METRICS, createResolver, type Resolver } from '../resolver.js';
import { silentLogger } from '../util/logger.js';
import { frame } from './transport.test-helpers.js';

const valid = encode({ id: 7, rd: true, questions: [{ name: 'www.example.com', type: RecordType.A }], edns: { udpPayloadSize: 1232, dnssecOk: true } });

/** Answers from the parsed question (so malformed-but-accepted queries exercise the codec), sometimes async. */
const chain: Middleware[] = [
  (ctx, next) => {
    ctx.query.cacheKey();
    return ctx.query.id % 3 === 0 ? Promise.resolve().then(next) : next();
  },
  (ctx) => {
    if (ctx.query.qtype === RecordType.TXT) throw new Error('txt not allowed');
    ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 1, data: '192.0.2.1' }]);
  },
];

let resolver: Resolver | undefined;
afterEach(async () => {
  await resolver?.stop();
  resolver = undefined;
});

function build(listen: Parameters<typeof createResolver>[0]['listen'] = []): Resolver {
  resolver = createResolver({ plugins: chain.map((m, i) => ({ name: `p${i}`, middleware: () => m })), listen, logger: silentLogger(), drainTimeoutMs: 200 });
  return resolver;
}

function mutate(base: Buffer, rnd: () => number, flips: number): Buffer {
  const b = Buffer.from(base);
  for (let i = 0; i < flips; i++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
  if (rnd() < 0.2) return b.subarray(0, Math.floor(rnd() * b.length));
  return b;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('resolver.process on arbitrary bytes', () => {
  test('never throws; answers keep the query ID; drops only what it must', async () => {
    const r = build();
    const client = { address: '127.0.0.1', port: 1, family: 4 as const, transport: 'udp' as const };
    const check = async (bytes: Buffer) => {
      let out: Buffer | null;
      try {
        out = await r.process(bytes, client);
      } catch (e) {
        throw new Error(`process threw on ${bytes.toString('hex')}: ${e}`);
      }
      if (out !== null) {
        expect(out.length).toBeGreaterThanOrEqual(12);
        expect(out.readUInt16BE(0)).toBe(bytes.readUInt16BE(0));
        expect(out[2] & 0x80).toBe(0x80);
        decode(out); // every response we produce is well-formed
      } else {
        expect(bytes.length < 12 || (bytes[2] & 0x80) !== 0).toBe(true);
      }
    };
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 80 }), (a) => check(Buffer.from(a))),
      { numRuns: Number(process.env.PIPELINE_FUZZ_RUNS ?? 800) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { minLength: 1, maxLength: 6 }), (flips) => {
        const b = Buffer.from(valid);
        for (const [i, v] of flips) b[i] = v;
        b[2] &= 0x7f; // keep QR=0 so that it reaches the parser
        return check(b);
      }),
      { numRuns: Number(process.env.PIPELINE_FUZZ_RUNS ?? 1500) },
    );
    const m = r.container.get<CoreMetrics>(CORE_METRICS);
    expect(m.inFlight).toBe(0);
  });
});

describe('UDP under garbage', () => {
  test('random and mutated datagrams do not stop the server from answering', async () => {
    const r = build([{ transport: 'udp', port: 0 }]);
    await r.start();
    const port = r.addresses()[0].port;
    const sock = dgram.createSocket('udp4');
    sock.on('message', () => {});
    const rnd = rng(42);
    for (let i = 0; i < 400; i++) {
      const pkt =
        i % 2 === 0
          ? mutate(valid, rnd, 1 + Math.floor(rnd() * 5))
          : Buffer.from(Array.from({ length: Math.floor(rnd() * 600) }, () => Math.floor(rnd() * 256)));
      sock.send(pkt, port, '127.0.0.1');
      if (i % 50 === 0) await new Promise((x) => setImmediate(x));
    }
    const answer = await new Promise<Buffer>((resolve) => {
      sock.removeAllListeners('message');
      sock.on('message', (m) => {
        if (m.readUInt16BE(0) === 0x7777) resolve(m);
      });
      const q = Buffer.from(valid);
      q.writeUInt16BE(0x7777, 0);
      const again = setInterval(() => sock.send(q, port, '127.0.0.1'), 100);
      sock.send(q, port, '127.0.0.1');
      sock.once('close', () => clearInterval(again));
      setTimeout(() => clearInterval(again), 3000).unref();
    });
    sock.close();
    expect(decode(answer).answers[0].data).toBe('192.0.2.1');
    const m = r.container.get<CoreMetrics>(CORE_METRICS);
    expect(m.queries).toBeGreaterThan(300);
  });
});

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => {});
    s.once('error', reject);
  });
}

function closed(s: net.Socket): Promise<void> {
  return s.destroyed && s.closed ? Promise.resolve() : new Promise((r) => s.once('close', () => r()));
}

async function settle(m: CoreMetrics, want: number, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (m.tcpConnections !== want && Date.now() < until) await new Promise((x) => setTimeout(x, 10));
}

describe('TCP under garbage', () => {
  test('random streams in random chunks: no crash, every connection accounted for', async () => {
    const r = build([{ transport: 'tcp', port: 0, idleTimeoutMs: 300, maxMessageSize: 4096 }]);
    await r.start();
    const port = r.addresses()[0].port;
    const m = r.container.get<CoreMetrics>(CORE_METRICS);
    const rnd = rng(7);
    const sockets: net.Socket[] = [];
    for (let c = 0; c < 20; c++) {
      const s = await connect(port);
      s.on('data', () => {});
      s.on('end', () => s.end());
      sockets.push(s);
      // Valid frames, mutated frames and raw garbage, written in random-sized chunks.
      const parts: Buffer[] = [];
      for (let i = 0; i < 15; i++) {
        const kind = rnd();
        if (kind < 0.5) parts.push(frame(mutate(valid, rnd, Math.floor(rnd() * 4))));
        else if (kind < 0.8) parts.push(frame(valid));
        else parts.push(Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256))));
      }
      const stream = Buffer.concat(parts);
      for (let off = 0; off < stream.length; ) {
        const n = 1 + Math.floor(rnd() * 64);
        if (!s.destroyed) s.write(stream.subarray(off, off + n));
        off += n;
      }
      if (c % 3 === 0) s.end();
      else if (c % 3 === 1) s.resetAndDestroy();
    }
    for (const s of sockets) if (!s.destroyed && !s.writableEnded) s.end();
    await Promise.all(sockets.map((s) => Promise.race([closed(s), new Promise((x) => setTimeout(x, 3000))])));
    await settle(m, 0);
    expect(m.tcpConnections).toBe(0);
    // Still serving.
    const s = await connect(port);
    const got = new Promise<Buffer>((resolve) => s.on('data', (d) => resolve(d)));
    s.write(frame(valid));
    expect((await got).readUInt16BE(2)).toBe(7);
    s.destroy();
  });

  test('slow partial frames are cut by the idle timeout; oversize frames close at once', async () => {
    const r = build([{ transport: 'tcp', port: 0, idleTimeoutMs: 150, maxMessageSize: 1024 }]);
    await r.start();
    const port = r.addresses()[0].port;
    const slow = await connect(port);
    slow.on('end', () => slow.end());
    const f = frame(valid);
    slow.write(f.subarray(0, 5)); // then nothing: a slowloris
    const t0 = Date.now();
    await closed(slow);
    expect(Date.now() - t0).toBeLessThan(2500);
    const big = await connect(port);
    big.on('end', () => big.end());
    const header = Buffer.alloc(2);
    header.writeUInt16BE(60000, 0);
    big.write(Buffer.concat([header, Buffer.alloc(100)]));
    await closed(big);
    const m = r.container.get<CoreMetrics>(CORE_METRICS);
    expect(m.dropped.oversize).toBe(1);
    await settle(m, 0);
    expect(m.tcpConnections).toBe(0);
  });

  test('a connection flood is capped at maxConnections (the longest-idle evicted) and fully released', async () => {
    const max = 40;
    const r = build([{ transport: 'tcp', port: 0, maxConnections: max, idleTimeoutMs: 5000 }]);
    await r.start();
    const port = r.addresses()[0].port;
    const m = r.container.get<CoreMetrics>(CORE_METRICS);
    const sockets = await Promise.all(Array.from({ length: max + 20 }, () => connect(port).catch(() => null)));
    const live = sockets.filter((s): s is net.Socket => s !== null);
    for (const s of live) s.on('end', () => s.end());
    await vi.waitFor(() => expect(m.tcpClosed.evicted).toBe(20), { timeout: 3000, interval: 5 });
    expect(m.tcpConnections).toBe(max);
    expect(m.dropped.overload).toBe(0);
    for (const s of live) s.destroy();
    await settle(m, 0);
    expect(m.tcpConnections).toBe(0);
  });
});
