/**
 * Slow-upstream measurement (not a test): the upstream plugin with its
 * defaults, pointed at one FakeUpstream that answers every query after
 * --delay ms (3 s by default, slower than one attempt's timeout but well
 * inside the query's budget). Sends --queries new names over UDP loopback,
 * --rate per second, and reports the rcodes clients got and how long they
 * waited.
 *
 *   TSX_TSCONFIG_PATH=plugins/upstream/tsconfig.json \
 *     node --import tsx plugins/upstream/test/slow-upstream.ts [plugin entry] [delayMs] [queries] [rate]
 *
 * The plugin entry defaults to this package's src/index.ts; pass the old
 * code's entry (a `git worktree` of an earlier commit) to compare.
 */
import dgram from 'node:dgram';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createResolver, type HeimdallPlugin } from '@heimdall/core';
import { FakeUpstream, query } from '@heimdall/testing';
import pino from 'pino';

const entry = resolve(process.argv[2] ?? new URL('../src/index.ts', import.meta.url).pathname);
const delayMs = Number(process.argv[3] ?? 3000);
const queries = Number(process.argv[4] ?? 50);
const rate = Number(process.argv[5] ?? 10);
const mod = (await import(pathToFileURL(entry).href)) as { upstream?: (o: unknown) => HeimdallPlugin; default: (o: unknown) => HeimdallPlugin };
const upstream = mod.upstream ?? mod.default;

const slow = await FakeUpstream.start();
slow.otherwise((q) => ({ answers: [{ name: q.name, type: 'A', ttl: 60, data: '192.0.2.7' }], delayMs }));

const resolver = createResolver({
  plugins: [upstream({ servers: [slow.endpoint] })],
  listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }],
  logger: pino({ level: 'info' }, pino.destination('/dev/null')),
});
await resolver.start();
const port = resolver.addresses()[0]!.port;

const sock = dgram.createSocket('udp4');
await new Promise<void>((r) => sock.connect(port, '127.0.0.1', () => r()));
const sentAt = new Map<number, number>();
const rcodes = new Map<string, number>();
const waited: number[] = [];
const names = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
sock.on('message', (m) => {
  const t = sentAt.get(m.readUInt16BE(0));
  if (t === undefined) return;
  sentAt.delete(m.readUInt16BE(0));
  waited.push(performance.now() - t);
  const rc = names[m[3]! & 15] ?? String(m[3]! & 15);
  rcodes.set(rc, (rcodes.get(rc) ?? 0) + 1);
});
for (let i = 1; i <= queries; i++) {
  sentAt.set(i, performance.now());
  sock.send(query(`q${i}.slow.test`, 'A', { id: i, edns: true }));
  await new Promise((r) => setTimeout(r, 1000 / rate));
}
// Every query has an answer or has run past any budget by then.
const stopAt = performance.now() + 15_000;
while (sentAt.size > 0 && performance.now() < stopAt) await new Promise((r) => setTimeout(r, 50));
const pct = (a: number[], p: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!) : null;
};
console.log(
  JSON.stringify({
    entry,
    delayMs,
    sent: queries,
    answered: waited.length,
    unanswered: sentAt.size,
    rcodes: Object.fromEntries(rcodes),
    waitedMs: { p50: pct(waited, 50), p99: pct(waited, 99), max: pct(waited, 100) },
  }),
);
sock.close();
await resolver.stop();
await slow.close();
process.exit(0);
