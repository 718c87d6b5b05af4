/**
 * Memory of the `stats` plugin with 100k distinct names: the heap retained
 * (JS heap + typed-array buffers) after building the chain and 100k queries (each a new name, from 5,000 clients, 10 % of them
 * blocked) through a resolver whose chain is [stats, answerer], minus the
 * same run without stats. Run from the repository root:
 *
 *   TSX_TSCONFIG_PATH=tsconfig.base.json node --expose-gc --conditions=source --import tsx apps/heimdall/scripts/stats-memory.ts
 */
import { BLOCKED, CACHE_RESULT, createResolver, type HeimdallPlugin, RecordType, UPSTREAM_USED } from '@heimdall/core';
import { silentLogger } from '@heimdall/core/pipeline';
import { query } from '@heimdall/testing';
import { stats } from '../src/plugins/stats.js';

const N = 100_000;
const answerer: HeimdallPlugin = {
  name: 'answer',
  middleware: () => (ctx) => {
    const name = ctx.query.qname;
    if (name.startsWith('ads')) {
      ctx.set(BLOCKED, { group: 'default', list: '/etc/heimdall/ads.txt', reason: 'list', name, rule: 'tracker.example' });
      ctx.nxdomain();
      return;
    }
    ctx.set(CACHE_RESULT, 'miss');
    ctx.set(UPSTREAM_USED, 'udp://192.0.2.53:53');
    ctx.answer([{ name, type: RecordType.A, ttl: 60, data: '192.0.2.1' }]);
  },
};

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const heap = (): number => {
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  // Typed arrays' backing stores live outside the JS heap.
  return m.heapUsed + m.arrayBuffers;
};

const times: number[] = [];
async function run(plugins: HeimdallPlugin[]): Promise<number> {
  const before = heap();
  const r = createResolver({ plugins, logger: silentLogger() });
  await r.start();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const name = i % 10 === 0 ? `ads${i}.tracker.example` : `host${i}.example${i % 97}.com`;
    await r.handle(query(name, 'A'), { transport: 'udp', address: `10.${(i >> 16) & 255}.${(i % 5000) >> 8}.${i % 250}` });
  }
  times.push(((performance.now() - t0) * 1e6) / N);
  const after = heap();
  await r.stop();
  return after - before;
}

const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(2)} MiB`;
await run([answerer]); // warm-up: code paths, inline caches
const base = await run([answerer]);
const rows: Array<[string, number]> = [];
for (const [label, options] of [
  ['defaults (topSize 1000, logSize 1000, 900 s)', {}],
  ['topSize 10000, logSize 10000', { topSize: 10_000, logSize: 10_000 }],
  ['topSize 100000 (every name held), logSize 1000', { topSize: 100_000 }],
] as const) {
  rows.push([label, (await run([stats(options), answerer])) - base]);
}
console.log(`100k distinct names, 5,000 clients; heap retained beyond a chain without stats (baseline ${mb(base)}):`);
for (const [i, [label, bytes]] of rows.entries())
  console.log(
    `  ${label}: ${mb(bytes)}  (${(times[i + 2]! / 1000).toFixed(1)} µs/query through resolver.handle vs ${(times[1]! / 1000).toFixed(1)} µs without stats)`,
  );
