/**
 * TCP connection exhaustion (RFC 7766 §6), loopback only, stops by itself.
 *
 * This process runs a TcpServer with its default limits and a handler that
 * answers at once. A child process (the clients) opens --conns connections
 * from 127.0.0.1 that each announce a 512-byte frame and then trickle one
 * byte every --trickle ms (with --reconnect MS, a closed connection is
 * reopened after MS, like a persistent attacker), then --probes times asks
 * one question over a fresh TCP connection from 127.0.0.2 and records
 * whether and how fast it was answered (each probe gives up after
 * --probe-timeout ms). Prints one JSON object.
 *
 *   node --import tsx bench/tcp-exhaustion.ts [--impl PATH/TO/transport/tcp.ts] [--conns 1000] [--probes 10]
 *     [--trickle 1000] [--settle 3000] [--reconnect 0] [--options '{"maxConnectionsPerClient":0}']
 *
 * --settle is how long the attacker runs before the first probe; --options
 * is merged into the listener options (older code ignores what it does not know).
 *
 * --impl points at another checkout's tcp.ts (e.g. `git archive HEAD~3
 * packages/core/src | tar -x -C /tmp/tcp-before`) to measure older code.
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    impl: { type: 'string', default: new URL('../packages/core/src/transport/tcp.ts', import.meta.url).pathname },
    conns: { type: 'string', default: '1000' },
    trickle: { type: 'string', default: '1000' },
    probes: { type: 'string', default: '10' },
    'probe-timeout': { type: 'string', default: '2000' },
    settle: { type: 'string', default: '3000' },
    reconnect: { type: 'string', default: '0' },
    role: { type: 'string', default: 'server' },
    port: { type: 'string', default: '0' },
    options: { type: 'string', default: '{}' },
  },
});
const CONNS = Number(values.conns);
const TRICKLE_MS = Number(values.trickle);
const PROBES = Number(values.probes);
const PROBE_TIMEOUT_MS = Number(values['probe-timeout']);
const SETTLE_MS = Number(values.settle);
const RECONNECT_MS = Number(values.reconnect);
const noop = () => {};

// Hard stop whatever happens.
setTimeout(() => {
  console.error('tcp-exhaustion: hard timeout');
  process.exit(2);
}, 120_000).unref();

if (values.role === 'clients') await clients(Number(values.port));
else await server();

async function server(): Promise<void> {
  const { TcpServer } = await import(pathToFileURL(path.resolve(values.impl!)).href);

  // A stand-in for CoreMetrics with every counter old and new code may touch.
  const metrics = {
    queries: 0,
    inFlight: 0,
    timedOut: 0,
    tcpConnections: 0,
    dropped: { malformed: 0, response: 0, oversize: 0, stopping: 0, overload: 0 },
    tcpClosed: { frameTimeout: 0, clientLimit: 0, evicted: 0 },
    // Today's code counts per stream transport (the `tcp` entry is the one read below).
    connections: { tcp: 0, tls: 0, https: 0 },
    connectionsClosed: {
      tcp: { frameTimeout: 0, clientLimit: 0, evicted: 0 },
      tls: { frameTimeout: 0, clientLimit: 0, evicted: 0 },
      https: { frameTimeout: 0, clientLimit: 0, evicted: 0 },
    },
    proxyRejected: {
      tcp: { invalid: 0, timeout: 0, closed: 0, untrustedHeader: 0 },
      tls: { invalid: 0, timeout: 0, closed: 0, untrustedHeader: 0 },
      https: { invalid: 0, timeout: 0, closed: 0, untrustedHeader: 0 },
    },
  };
  const logger = { debug: noop, info: noop, warn: noop, error: noop };
  const handler = {
    process(request: Buffer): Buffer {
      const resp = Buffer.from(request);
      resp[2] |= 0x80;
      return resp;
    },
  };
  const tcp = new TcpServer({ transport: 'tcp', address: '127.0.0.1', port: 0, ...JSON.parse(values.options!) }, { handler, logger, metrics });
  await tcp.listen();
  const port: number = tcp.address().port;
  const child = fork(new URL(import.meta.url).pathname, [...process.argv.slice(2), '--role', 'clients', '--port', String(port)], {
    execArgv: ['--import', 'tsx'],
  });
  const report = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Record<string, unknown>));
    child.once('exit', (code) => reject(new Error(`clients exited with ${code}`)));
  });
  await tcp.close(50);
  console.log(
    JSON.stringify(
      {
        impl: values.impl,
        options: JSON.parse(values.options!),
        conns: CONNS,
        trickleMs: TRICKLE_MS,
        reconnectMs: RECONNECT_MS,
        ...report,
        server: { dropped: metrics.dropped, tcpClosed: metrics.tcpClosed, connectionsClosed: metrics.connectionsClosed.tcp },
      },
      null,
      2,
    ),
  );
  process.exit(0);
}

async function clients(port: number): Promise<void> {
  let stopping = false;
  let attackerConnects = 0;
  let attackerCloses = 0;
  const live = new Set<net.Socket>();

  function attacker(): void {
    if (stopping) return;
    const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    s.on('error', noop);
    s.once('connect', () => {
      attackerConnects++;
      live.add(s);
      s.write(Buffer.from([0x02, 0x00])); // a 512-byte frame that never completes
    });
    s.once('close', () => {
      if (stopping) return;
      attackerCloses++;
      live.delete(s);
      // Come back, a little later (a persistent attacker, not a busy loop).
      if (RECONNECT_MS > 0) setTimeout(attacker, RECONNECT_MS).unref();
    });
  }

  const drip = setInterval(() => {
    for (const s of live) s.write(Buffer.from([0]));
  }, TRICKLE_MS);

  // Open the attacker's connections, 100 at a time.
  for (let i = 0; i < CONNS; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, CONNS - i) }, () => {
        attacker();
        return new Promise((r) => setImmediate(r));
      }),
    );
  }
  // Let the attacker reach its steady state (several trickles).
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const attackerOpenAtStart = live.size;

  function probe(id: number): Promise<number | null> {
    return new Promise((resolve) => {
      const t0 = performance.now();
      const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      const q = Buffer.from([0, 29, id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 6, 118, 105, 99, 116, 105, 109, 4, 116, 101, 115, 116, 0, 0, 1, 0, 1]);
      let buf = Buffer.alloc(0);
      const done = (v: number | null) => {
        clearTimeout(t);
        s.destroy();
        resolve(v);
      };
      const t = setTimeout(() => done(null), PROBE_TIMEOUT_MS);
      s.on('error', noop);
      s.once('connect', () => s.write(q));
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 4 && buf.readUInt16BE(2) === id) done(performance.now() - t0);
      });
      s.once('close', () => done(null));
    });
  }

  const results: Array<number | null> = [];
  for (let i = 1; i <= PROBES; i++) {
    results.push(await probe(i));
    await new Promise((r) => setTimeout(r, 200));
  }

  const attackerOpenAtEnd = live.size;
  stopping = true;
  clearInterval(drip);
  for (const s of live) s.destroy();

  const ok = results.filter((r): r is number => r !== null).sort((a, b) => a - b);
  process.send!(
    {
      probes: PROBES,
      answered: ok.length,
      latencyMs: ok.length ? { min: +ok[0].toFixed(1), median: +ok[Math.floor(ok.length / 2)].toFixed(1), max: +ok[ok.length - 1].toFixed(1) } : null,
      attacker: { connects: attackerConnects, closedByServer: attackerCloses, openAtFirstProbe: attackerOpenAtStart, openAtEnd: attackerOpenAtEnd },
    },
    () => process.exit(0),
  );
}
