/**
 * Disk tier micro-benchmarks (@heimdall/plugin-persistence), beside the
 * cache's L1 in the same run.
 *
 *   cd /work/main/bench && TSX_TSCONFIG_PATH=../tsconfig.base.json node --conditions=source --import tsx persistence.bench.ts
 *
 * - middleware: the whole cache middleware on a fresh `DnsContext`, for
 *   1 000 names cycled so that each lookup is:
 *   (a) an L1 hit (cache of 10 000 entries, no tier), the peer;
 *   (b) a disk-tier hit: an L1 of 16 entries (LRU, so the promoted entry is
 *       never the one evicted) misses as the names cycle over 1 000, the disk tier answers,
 *       the cache validates the entry (`readEntry`: key, records, TTL
 *       offsets, OPT), promotes it into L1 and answers from it.
 * - parts: the tier's `get` alone (LMDB read + expiry check + view), and
 *   lmdb-js `getBinaryFast` alone, beside a `Map.get`.
 *
 * Figures go to bench/results/persistence.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_TIERS, type CacheTier, type ClientInfo, createResolver, DnsContext, type Resolver } from '@heimdall/core';
import { encode, MessageReader, RecordType } from '@heimdall/core/packet';
import { type ContextEnv, silentLogger, systemClock } from '@heimdall/core/pipeline';
import { bench, do_not_optimize, run, summary } from 'mitata';
import { cache } from '../plugins/cache/src/plugin.js';
import { checkEntry, EntryLayout, readEntry } from '../plugins/cache/src/snapshot.js';
import { persistence } from '../plugins/persistence/src/plugin.js';
import type { DiskTier } from '../plugins/persistence/src/tier.js';
import { answering, resultRows } from './lib/micro.js';

const ENV: ContextEnv = { logger: silentLogger(), clock: systemClock, ednsPayloadSize: 1232, recursionAvailable: true, queryTimeoutMs: 5000 };
const CLIENT: ClientInfo = { address: '192.0.2.1', port: 5300, family: 4, transport: 'udp' };
const N = 1000;

const queries = Array.from({ length: N }, (_, i) =>
  encode({ id: i, rd: true, questions: [{ name: `host${i}.example.net`, type: RecordType.A }], edns: { udpPayloadSize: 1232 } }),
);

const dir = mkdtempSync(join(tmpdir(), 'heimdall-persistence-bench-'));
const l1Only = createResolver({ logger: silentLogger(), clock: systemClock, plugins: [cache({ maxEntries: 10_000 }), answering()] });
const withDisk = createResolver({
  logger: silentLogger(),
  clock: systemClock,
  plugins: [cache({ maxEntries: 16, policy: 'lru' }), persistence({ dir }), answering()],
});
// (c): a second resolver on the same directory (as a second worker would be), SIEVE L1.
const withDiskSieve = createResolver({
  logger: silentLogger(),
  clock: systemClock,
  plugins: [cache({ maxEntries: 16 }), persistence({ dir }), answering()],
});
await l1Only.start();
await withDisk.start();
await withDiskSieve.start();
for (const q of queries) {
  await l1Only.handle(q, CLIENT);
  await withDisk.handle(q, CLIENT);
}
const tier = withDisk.container.getAll<CacheTier>(CACHE_TIERS)[0] as DiskTier;
await tier.drain();

function middlewareOf(r: Resolver): (ctx: DnsContext, next: () => never) => unknown {
  const mw = r.middleware('cache');
  if (mw === undefined) throw new Error('no cache middleware');
  return mw as never;
}
const mwL1 = middlewareOf(l1Only);
const mwDisk = middlewareOf(withDisk);
const mwSieve = middlewareOf(withDiskSieve);
const noNext = (): never => {
  throw new Error('miss in a hit benchmark');
};

// Sanity: (b) really is answered by the disk tier, synchronously.
{
  const ctx = new DnsContext(queries[5], CLIENT, ENV, new MessageReader(queries[5]));
  const r = mwDisk(ctx, noNext);
  if (r !== undefined || ctx.response === null) throw new Error('disk-tier hit is not synchronous');
}
// And every one of the N names is answered from the disk tier, none from the chain.
for (let j = 0; j < 2 * N; j++) {
  const q = queries[j % N];
  mwDisk(new DnsContext(q, CLIENT, ENV, new MessageReader(q)), noNext);
  mwSieve(new DnsContext(q, CLIENT, ENV, new MessageReader(q)), noNext);
}

const keys = queries.map((q) => {
  const r = new MessageReader(q);
  return Buffer.from(`${r.cacheKey()}1`, 'latin1');
});
const peerMap = new Map<string, Buffer>(keys.map((k) => [k.toString('latin1'), Buffer.alloc(150)]));
const env = (tier as unknown as { env: { env: { entries: { getBinaryFast(k: Buffer): Buffer | undefined } } } }).env.env;

let i = 0;
summary(() => {
  bench('cache middleware: L1 hit', () => {
    const q = queries[i++ % N];
    const ctx = new DnsContext(q, CLIENT, ENV, new MessageReader(q));
    mwL1(ctx, noNext);
    do_not_optimize(ctx.response);
  });
  bench('cache middleware: disk-tier hit (L1 miss, validate, promote)', () => {
    const q = queries[i++ % N];
    const ctx = new DnsContext(q, CLIENT, ENV, new MessageReader(q));
    mwDisk(ctx, noNext);
    do_not_optimize(ctx.response);
  });
  bench('cache middleware: disk-tier hit, SIEVE L1', () => {
    const q = queries[i++ % N];
    const ctx = new DnsContext(q, CLIENT, ENV, new MessageReader(q));
    mwSieve(ctx, noNext);
    do_not_optimize(ctx.response);
  });
});
const layout = new EntryLayout();
summary(() => {
  bench('disk tier get (LMDB read + expiry + view)', () => do_not_optimize(tier.get(keys[i++ % N])));
  bench('disk tier get + cache checkEntry (in place)', () => {
    const v = tier.get(keys[i++ % N]) as Buffer;
    do_not_optimize(checkEntry(v, 0, layout));
  });
  bench('disk tier get + cache readEntry (validation)', () => {
    const v = tier.get(keys[i++ % N])!;
    do_not_optimize(readEntry(Buffer.from(v.buffer, v.byteOffset, v.byteLength), 0));
  });
  bench('lmdb getBinaryFast', () => do_not_optimize(env.entries.getBinaryFast(keys[i++ % N])));
  bench('peer: Map.get (latin1 key)', () => do_not_optimize(peerMap.get(keys[i++ % N].latin1Slice(0, keys[0].length))));
});

const { row } = resultRows(await run());
const results = [
  row(
    'disk-tier hit through the cache middleware',
    'cache middleware: disk-tier hit (L1 miss, validate, promote)',
    'cache middleware: L1 hit',
    'avg <= 3000 ns',
  ),
  row('disk-tier hit through the cache middleware, SIEVE L1', 'cache middleware: disk-tier hit, SIEVE L1', 'cache middleware: L1 hit', 'avg <= 3000 ns'),
  row('disk tier get + in-place entry check (checkEntry)', 'disk tier get + cache checkEntry (in place)', 'cache middleware: L1 hit'),
  row('disk tier get + copying entry read (readEntry)', 'disk tier get + cache readEntry (validation)', 'cache middleware: L1 hit'),
  row('disk tier get alone', 'disk tier get (LMDB read + expiry + view)', 'peer: Map.get (latin1 key)'),
  row('lmdb-js getBinaryFast alone', 'lmdb getBinaryFast', 'peer: Map.get (latin1 key)'),
];
console.table(results);
await withDiskSieve.stop();
await withDisk.stop();
await l1Only.stop();
rmSync(dir, { recursive: true, force: true });
// HEIMDALL_BENCH_OUT=path: write the figures there instead (repeated runs that must not touch the committed results).
const out = process.env.HEIMDALL_BENCH_OUT ?? new URL('./results/persistence.json', import.meta.url);
if (process.env.HEIMDALL_BENCH_OUT === undefined) mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2)}\n`);
