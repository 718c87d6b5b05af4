/**
 * Outage measurement (not a test): a resolver with a local answer for
 * `cached.test` and the upstream plugin pointed at a black-hole upstream
 * (FakeUpstream that never replies), loaded over UDP loopback with new names
 * at a fixed rate. Reports RSS growth and how long the locally answered name
 * takes meanwhile (event-loop health), plus the rcodes the flood got.
 *
 *   TSX_TSCONFIG_PATH=plugins/upstream/tsconfig.json \
 *     node --expose-gc --import tsx plugins/upstream/test/outage.ts [plugin entry] [qps] [seconds]
 *
 * The plugin entry defaults to this package's src/index.ts; pass the old
 * code's entry (a `git worktree` of an earlier commit) to compare.
 */
import dgram from 'node:dgram';
import { resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createResolver, type HeimdallPlugin } from '@heimdall/core';
import { FakeUpstream, query } from '@heimdall/testing';
import pino from 'pino';

const entry = resolve(process.argv[2] ?? new URL('../src/index.ts', import.meta.url).pathname);
const qps = Number(process.argv[3] ?? 2000);
const seconds = Number(process.argv[4] ?? 20);
const mod = (await import(pathToFileURL(entry).href)) as { upstream?: (o: unknown) => HeimdallPlugin; default: (o: unknown) => HeimdallPlugin };
const upstream = mod.upstream ?? mod.default;

const hole = await FakeUpstream.start();
hole.otherwise({ drop: true });
// Keep the black hole's memory flat: it records every query otherwise.
setInterval(() => hole.reset(), 1000).unref();
hole.otherwise({ drop: true });

// Stands in for a cache: one name answered in memory before the upstream plugin.
const local: HeimdallPlugin = {
  name: 'local',
  middleware: () => (ctx, next) => {
    if (ctx.query.qname === 'cached.test') return ctx.answer([{ name: 'cached.test', type: 1, ttl: 60, data: '192.0.2.1' }]);
    return next();
  },
};
const resolver = createResolver({
  plugins: [local, upstream({ servers: [hole.endpoint] })],
  listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }],
  logger: pino({ level: 'info' }, pino.destination('/dev/null')),
});
await resolver.start();
const port = resolver.addresses()[0]!.port;

const sock = dgram.createSocket('udp4');
await new Promise<void>((r) => sock.connect(port, '127.0.0.1', () => r()));
// A large receive buffer on the load side, so that what is lost is lost in the resolver, not here.
sock.setRecvBufferSize(16 * 1024 * 1024);
const rcodes = new Map<number, number>();
const sentAt = new Map<number, number>();
const cachedRtt: number[] = [];
const floodRtt: number[] = [];
let id = 0;
sock.on('message', (m) => {
  const qid = m.readUInt16BE(0);
  const t = sentAt.get(qid);
  if (t === undefined) return;
  sentAt.delete(qid);
  const ms = performance.now() - t;
  if (qid >= 0xff00) cachedRtt.push(ms);
  else {
    floodRtt.push(ms);
    rcodes.set(m[3]! & 15, (rcodes.get(m[3]! & 15) ?? 0) + 1);
  }
});

function send(name: string, qid: number): void {
  sentAt.set(qid, performance.now());
  sock.send(query(name, 'A', { id: qid, edns: true }));
}

global.gc?.();
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const rss0 = process.memoryUsage().rss;
const rssSamples: number[] = [];
let n = 0;
let cachedId = 0xff00;
const perTick = qps / 100;
const start = performance.now();
let tick = 0;
await new Promise<void>((done) => {
  const timer = setInterval(() => {
    tick++;
    const due = Math.floor(((performance.now() - start) / 1000) * qps);
    while (n < due) {
      id = (id + 1) % 0xff00;
      send(`n${n++}.outage.test`, id);
    }
    if (tick % 10 === 0) {
      cachedId = cachedId === 0xffff ? 0xff00 : cachedId + 1;
      send('cached.test', cachedId);
    }
    if (tick % 100 === 0) rssSamples.push(process.memoryUsage().rss);
    if (performance.now() - start >= seconds * 1000) {
      clearInterval(timer);
      done();
    }
  }, 10);
  void perTick;
});
// Let the last queries run into their deadlines.
await new Promise((r) => setTimeout(r, 6000));
const pct = (a: number[], p: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]! * 10) / 10 : null;
};
const mb = (b: number) => Math.round(b / 1048576);
console.log(
  JSON.stringify(
    {
      entry,
      qps,
      seconds,
      sent: n,
      answered: floodRtt.length,
      rcodes: Object.fromEntries([...rcodes].map(([k, v]) => [['NOERROR', 'FORMERR', 'SERVFAIL'][k] ?? k, v])),
      floodMs: { p50: pct(floodRtt, 50), p99: pct(floodRtt, 99) },
      rssMB: { start: mb(rss0), peak: mb(Math.max(...rssSamples)), end: mb(rssSamples[rssSamples.length - 1]!), growth: mb(Math.max(...rssSamples) - rss0) },
      eventLoopDelayMs: { p99: Math.round(loop.percentile(99) / 1e5) / 10, max: Math.round(loop.max / 1e5) / 10 },
      cachedMs: { n: cachedRtt.length, p50: pct(cachedRtt, 50), p99: pct(cachedRtt, 99), max: pct(cachedRtt, 100) },
    },
    null,
    1,
  ),
);
sock.close();
await resolver.stop();
await hole.close();
process.exit(0);
