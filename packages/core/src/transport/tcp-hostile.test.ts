/**
 * Hostile stream clients (RFC 7766 §6; RFC 7858 §3.4 asks the same of DoT):
 * slow-loris frames, one address holding many connections, a full table —
 * over TCP and over TLS (the same FramedConnection and limits). Real sockets
 * on loopback; every wait is for an event or a condition, bounded by a
 * deadline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { selfSignedCertificate } from '../../../testing/src/certs.js';
import { encode, MessageReader, RecordType } from '../packet/index.js';
import { CoreMetrics } from '../pipeline/metrics.js';
import { silentLogger } from '../util/logger.js';
import { TcpServer } from './tcp.js';
import { TlsServer } from './tls.js';
import { frame, socketEvents } from './transport.test-helpers.js';
import type { QueryHandler, TcpListenOptions } from './types.js';

function q(name: string, id: number): Buffer {
  return encode({ id, rd: true, questions: [{ name, type: RecordType.A }] });
}

/** Echoes the query as a response; names `dNNN.…` answer after NNN ms. */
const handler: QueryHandler = {
  process(request) {
    const resp = Buffer.from(request);
    resp[2] |= 0x80;
    const m = /^d(\d+)\./.exec(new MessageReader(request).qname);
    return m ? new Promise((r) => setTimeout(() => r(resp), Number(m[1]))) : resp;
  },
};

let server: TcpServer | TlsServer | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.close(50);
  server = undefined;
});

/** Which transport the tests of a `describe.each` round run over. */
let kind: 'tcp' | 'tls' = 'tcp';
let pair: { cert: string; key: string } | undefined;
const certDir = mkdtempSync(join(tmpdir(), 'heimdall-hostile-'));
beforeAll(() => {
  pair = selfSignedCertificate(certDir, { name: 'hostile', cn: 'dns.test' });
});
afterAll(() => rmSync(certDir, { recursive: true, force: true }));

async function start(options: Omit<TcpListenOptions, 'transport' | 'port'>): Promise<{ port: number; m: CoreMetrics }> {
  const m = new CoreMetrics();
  const deps = { handler, logger: silentLogger(), metrics: m };
  server =
    kind === 'tcp'
      ? new TcpServer({ transport: 'tcp', port: 0, address: '127.0.0.1', ...options }, deps)
      : new TlsServer({ transport: 'tls', port: 0, address: '127.0.0.1', ...pair!, ...options }, deps);
  await server.listen();
  return { port: server.address().port, m };
}

/** A client connection from `from` that collects framed responses. */
class Client {
  readonly socket: net.Socket;
  readonly responses: number[] = [];
  closed = false;
  readonly connected: Promise<void>;
  readonly closedP: Promise<void>;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  constructor(port: number, from = '127.0.0.1') {
    this.socket =
      kind === 'tcp'
        ? net.connect({ port, host: '127.0.0.1', localAddress: from })
        : tls.connect({
            socket: net.connect({ port, host: '127.0.0.1', localAddress: from }),
            rejectUnauthorized: false,
            ALPNProtocols: ['dot'],
            servername: 'dns.test',
          });
    sockets.push(this.socket);
    const events = socketEvents(this.socket, () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    this.closedP = events.closed;
    // Over TLS the connection is usable once the handshake is done.
    this.connected = kind === 'tcp' ? events.connected : new Promise((r) => this.socket.once('secureConnect', () => r()));
    this.socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 2 && this.buf.length >= 2 + this.buf.readUInt16BE(0)) {
        this.responses.push(this.buf.readUInt16BE(2));
        this.buf = this.buf.subarray(2 + this.buf.readUInt16BE(0));
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves when `n` responses arrived; rejects on close or after `ms`. */
  waitFor(n: number, ms = 2000): Promise<number[]> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`got ${this.responses.length}/${n} responses in ${ms} ms`)), ms);
      const check = () => {
        if (this.responses.length >= n) {
          clearTimeout(t);
          resolve(this.responses);
        } else if (this.closed) {
          clearTimeout(t);
          reject(new Error(`closed after ${this.responses.length}/${n} responses`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Asks one question and waits for its answer. */
  ask(name: string, id: number, ms = 2000): Promise<number[]> {
    this.socket.write(frame(q(name, id)));
    return this.waitFor(this.responses.length + 1, ms);
  }
}

/** Resolves true when `c` closes within `ms`, false otherwise. */
function closedWithin(c: Client, ms: number): Promise<boolean> {
  return Promise.race([c.closedP.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
}

/** Announces a 512-byte frame, then sends one byte every 40 ms until `c` closes (expected within 3 s). */
async function dripUntilClosed(c: Client): Promise<void> {
  c.socket.write(Buffer.from([0x02, 0x00]));
  const drip = setInterval(() => !c.closed && c.socket.write(Buffer.from([0])), 40);
  try {
    expect(await closedWithin(c, 3000)).toBe(true);
  } finally {
    clearInterval(drip);
  }
}

/** Waits until the server has registered `n` connections. */
async function connections(m: CoreMetrics, n: number): Promise<void> {
  await vi.waitFor(() => expect(m.tcpConnections).toBe(n), { timeout: 3000, interval: 5 });
}

describe.each(['tcp', 'tls'] as const)('%s against hostile clients', (transport) => {
  beforeAll(() => {
    kind = transport;
  });

  test('a frame trickled a byte at a time is closed at the frame deadline, not kept alive by the idle timer', async () => {
    const { port, m } = await start({ frameTimeoutMs: 300, idleTimeoutMs: 5000 });
    const slow = new Client(port);
    await slow.connected;
    // A 512-byte frame announced, then one byte every 40 ms (it would take 20 s to complete).
    const t0 = performance.now();
    await dripUntilClosed(slow);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    expect(m.tcpClosed.frameTimeout).toBe(1);
    await connections(m, 0);

    // Complete frames sent slower than the frame deadline are fine: the deadline is per frame.
    const ok = new Client(port);
    await ok.connected;
    expect(await ok.ask('a.test', 2)).toEqual([2]);
    const f = frame(q('split.test', 1));
    await new Promise((r) => ok.socket.write(f.subarray(0, 5), () => r(undefined)));
    ok.socket.write(f.subarray(5));
    expect(await ok.waitFor(2)).toEqual([2, 1]);
    expect(m.tcpClosed.frameTimeout).toBe(1);
  });

  test('partial frames do not reset the idle timer', async () => {
    const { port, m } = await start({ frameTimeoutMs: 60_000, idleTimeoutMs: 300 });
    const slow = new Client(port);
    await slow.connected;
    const t0 = performance.now();
    await dripUntilClosed(slow);
    expect(performance.now() - t0).toBeLessThan(2000);
    await connections(m, 0);
  });

  test.each([
    ['with the default per-client cap', {}],
    ['with no per-client cap (eviction alone)', { maxConnectionsPerClient: 0 }],
  ])(
    '1,000 trickling connections from one address do not lock out another client (%s)',
    async (_, extra) => {
      // Long deadlines: neither timer is what lets the other client in.
      const { port, m } = await start({ maxConnections: 1000, frameTimeoutMs: 60_000, idleTimeoutMs: 60_000, ...extra });
      const attackers = Array.from({ length: 1000 }, () => new Client(port, '127.0.0.1'));
      await Promise.all(attackers.map((a) => Promise.race([a.connected, a.closedP])));
      const header = Buffer.from([0x02, 0x00]); // a 512-byte frame that never completes
      for (const a of attackers) if (!a.closed) a.socket.write(header);
      await vi.waitFor(() => expect(m.tcpConnections + m.dropped.overload + (m.tcpClosed?.clientLimit ?? 0)).toBeGreaterThanOrEqual(1000), {
        timeout: 5000,
        interval: 10,
      });
      let n = 0;
      const drip = setInterval(() => {
        for (const a of attackers) if (!a.closed) a.socket.write(Buffer.from([n & 0xff]));
        n++;
      }, 100);
      try {
        for (let id = 1; id <= 3; id++) {
          const victim = new Client(port, '127.0.0.2');
          const t0 = performance.now();
          expect(await victim.ask('victim.test', id, 1000)).toEqual([id]);
          expect(performance.now() - t0).toBeLessThan(1000);
          victim.socket.destroy();
          await victim.closedP;
        }
      } finally {
        clearInterval(drip);
      }
      expect(m.tcpConnections).toBeLessThanOrEqual(1000);
      for (const a of attackers) a.socket.destroy();
      await connections(m, 0);
    },
    30_000,
  );

  test('at the global cap the longest-idle connection is closed to admit a new one; busy ones are spared', async () => {
    const { port, m } = await start({ maxConnections: 3, maxConnectionsPerClient: 0 });
    const a = new Client(port);
    const b = new Client(port);
    const c = new Client(port);
    await Promise.all([a.connected, b.connected, c.connected]);
    await connections(m, 3);
    // Activity order afterwards, oldest first: a (a query in flight), b, c.
    a.socket.write(frame(q('d400.test', 1)));
    expect(await b.ask('b.test', 2)).toEqual([2]);
    expect(await c.ask('c.test', 3)).toEqual([3]);
    const d = new Client(port, '127.0.0.2');
    expect(await d.ask('d.test', 4)).toEqual([4]);
    expect(await closedWithin(b, 2000)).toBe(true);
    expect(m.tcpClosed.evicted).toBe(1);
    expect(m.dropped.overload).toBe(0);
    expect(await a.waitFor(1)).toEqual([1]);
    expect(await c.ask('c2.test', 5)).toEqual([3, 5]);
    expect(a.closed || c.closed).toBe(false);
    expect(m.tcpConnections).toBe(3);
  });

  test('per-client cap: one address gets at most maxConnectionsPerClient, others are unaffected', async () => {
    const { port, m } = await start({ maxConnectionsPerClient: 2 });
    const a = new Client(port);
    const b = new Client(port);
    await Promise.all([a.connected, b.connected]);
    await connections(m, 2);
    const c = new Client(port);
    expect(await closedWithin(c, 2000)).toBe(true);
    expect(c.responses).toEqual([]);
    expect(m.tcpClosed.clientLimit).toBe(1);
    const other = new Client(port, '127.0.0.2');
    expect(await other.ask('other.test', 7)).toEqual([7]);
    expect(await a.ask('a.test', 8)).toEqual([8]);
    a.socket.destroy();
    await connections(m, 2);
    const again = new Client(port);
    expect(await again.ask('again.test', 9)).toEqual([9]);
    expect(m.tcpClosed.clientLimit).toBe(1);
  });

  test('the new limits are validated', () => {
    const deps = { handler, logger: silentLogger(), metrics: new CoreMetrics() };
    expect(() => new TcpServer({ transport: 'tcp', port: 0, frameTimeoutMs: 0 }, deps)).toThrow(/frameTimeoutMs/);
    expect(() => new TcpServer({ transport: 'tcp', port: 0, maxConnectionsPerClient: -1 }, deps)).toThrow(/maxConnectionsPerClient/);
    expect(() => new TcpServer({ transport: 'tcp', port: 0, maxConnectionsPerClient: 1.5 }, deps)).toThrow(/maxConnectionsPerClient/);
    const s = new TcpServer({ transport: 'tcp', port: 0 }, deps);
    expect(s.limits.frameTimeoutMs).toBe(2000);
    expect(s.limits.maxConnectionsPerClient).toBe(100);
  });
});
