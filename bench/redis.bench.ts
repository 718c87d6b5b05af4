/**
 * Redis tier targets (@heimdall/plugin-redis), through the real cache
 * middleware and a real `redis-server` on a free loopback port (never the
 * system one). Bounded (about 25 s); take the machine-wide load lock:
 *
 *   cd /work/main/bench && flock /tmp/heimdall-load.lock env TSX_TSCONFIG_PATH=../tsconfig.base.json node --conditions=source --import tsx redis.bench.ts
 *
 * 1. L2 hit latency at 5,000 QPS, open loop, in-process (`resolver.handle`),
 *    5 s per configuration, 1,000 names cycled:
 *    (a) L1 only (a 10,000-entry cache holds every name): every query an L1 hit, the peer;
 *    (b) L1 of 16 entries (LRU) + the Redis tier, Redis pre-filled: almost
 *        every query an L1 miss answered from Redis (GET over loopback, the
 *        cache validates and promotes the entry).
 *    (c) a raw ioredis GET of a 120-byte value on the same server and pacing,
 *        no DNS at all: the floor the loopback round trip sets on this machine.
 *    The target: p99(b) − p99(a) ≤ 1 ms.
 * 2. kill -9 of Redis under 2,000 QPS for 6 s (A: L1 of 256 entries + Redis
 *    tier, 2,000 names of which B pre-filled 1,000 in Redis: L1 hits, Redis
 *    hits and upstream answers mixed); killed at 1.5 s, restarted at 3 s:
 *    failed answers (target 0), and the time from Redis back to the first
 *    name answered by B being a Redis hit in A (target ≤ 10 s).
 *
 * Figures go to bench/results/redis.json.
 */
import { writeFileSync } from 'node:fs';
import { type ClientInfo, createResolver, type Resolver } from '@heimdall/core';
import { encode, RecordType } from '@heimdall/core/packet';
import { silentLogger, systemClock } from '@heimdall/core/pipeline';
import { Redis } from 'ioredis';
import { cache } from '../plugins/cache/src/plugin.js';
import { RedisConnection } from '../plugins/redis/src/connection.js';
import { redis } from '../plugins/redis/src/plugin.js';
import { RedisStats } from '../plugins/redis/src/stats.js';
import { cleanup, RedisServer, waitFor } from '../plugins/redis/src/test-util.js';
import { answering } from './lib/micro.js';

const CLIENT: ClientInfo = { address: '192.0.2.1', port: 5300, family: 4, transport: 'udp' };
/** What the raw-GET peer's `handle` resolves to (counted as a good answer). */
const RAW_OK = encode({
  id: 1,
  qr: true,
  questions: [{ name: 'raw.example', type: RecordType.A }],
  answers: [
    { name: 'raw.example', type: RecordType.A, ttl: 1, data: '192.0.2.1' },
    { name: 'raw.example', type: RecordType.A, ttl: 1, data: '192.0.2.2' },
  ],
});
const queryFor = (name: string, id = 1): Buffer => encode({ id, rd: true, questions: [{ name, type: RecordType.A }], edns: { udpPayloadSize: 1232 } });

interface Run {
  sent: number;
  failed: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  qps: number;
}

/** Open loop: `qps` queries per second for `seconds`, paced by 1 ms timer ticks; latency of each `handle`. */
async function openLoop(r: Resolver, queries: readonly Buffer[], qps: number, seconds: number, at?: (ms: number) => void): Promise<Run> {
  const total = qps * seconds;
  // Preallocated, and no Promise kept per query: the harness must not add to the garbage collector's work.
  const lat = new Float64Array(total);
  let done = 0;
  let failed = 0;
  let outstanding = 0;
  let drained: (() => void) | null = null;
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const elapsed = performance.now() - start;
    at?.(elapsed);
    const due = Math.min(total, Math.floor((elapsed * qps) / 1000));
    for (; sent < due; sent++) {
      const q = queries[sent % queries.length]!;
      const t = performance.now();
      outstanding++;
      r.handle(q, CLIENT).then(
        (res) => {
          lat[done++] = performance.now() - t;
          // A good answer: RCODE 0 and both records.
          if (res === null || res[3]! & 0x0f || ((res[6]! << 8) | res[7]!) !== 2) failed++;
          if (--outstanding === 0 && drained !== null) drained();
        },
        () => {
          lat[done++] = performance.now() - t;
          failed++;
          if (--outstanding === 0 && drained !== null) drained();
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  if (outstanding > 0) await new Promise<void>((resolve) => (drained = resolve));
  const seconds_ = (performance.now() - start) / 1000;
  lat.sort();
  const pct = (p: number): number => Number(lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]!.toFixed(3));
  return { sent, failed, p50: pct(0.5), p99: pct(0.99), p999: pct(0.999), max: Number(lat[lat.length - 1]!.toFixed(3)), qps: Math.round(sent / seconds_) };
}

/** Rounds merged: sums, and the median round's percentiles. */
function merge(runs: readonly Run[]): Run & { rounds: readonly Run[] } {
  const med = (f: (r: Run) => number): number => [...runs].map(f).sort((x, y) => x - y)[Math.floor(runs.length / 2)]!;
  return {
    sent: runs.reduce((n, r) => n + r.sent, 0),
    failed: runs.reduce((n, r) => n + r.failed, 0),
    p50: med((r) => r.p50),
    p99: med((r) => r.p99),
    p999: med((r) => r.p999),
    max: Math.max(...runs.map((r) => r.max)),
    qps: med((r) => r.qps),
    rounds: runs,
  };
}

const results: Record<string, unknown> = { node: process.version, date: new Date().toISOString() };

// ---------------------------------------------------------------- 1. L2 hit latency at 5,000 QPS
{
  const server = await RedisServer.start();
  const names = Array.from({ length: 1000 }, (_, i) => `host${i}.example.net`);
  const queries = names.map((n, i) => queryFor(n, i));
  const l1Only = createResolver({ logger: silentLogger(), clock: systemClock, plugins: [cache({ maxEntries: 10_000 }), answering()] });
  const withRedis = createResolver({
    logger: silentLogger(),
    clock: systemClock,
    plugins: [cache({ maxEntries: 16, policy: 'lru' }), redis({ url: server.url }), answering()],
  });
  await l1Only.start();
  await withRedis.start();
  for (const q of queries) {
    await l1Only.handle(q, CLIENT);
    await withRedis.handle(q, CLIENT);
  }
  const stats = withRedis.scope('redis').get(RedisStats);
  await waitFor(() => stats.writes >= 1000, 'the pre-fill to reach Redis');
  // Warm-up, then the measured runs (peer first).
  await openLoop(l1Only, queries, 5000, 1);
  await openLoop(withRedis, queries, 5000, 1);
  // Five interleaved rounds of 1 s each (the machine is shared: the peer runs beside each round).
  const hitsBefore = stats.hits;
  const ra: Run[] = [];
  const rb: Run[] = [];
  const rc: Run[] = [];
  const raw = new Redis({ host: '127.0.0.1', port: server.port });
  const rawKey = Buffer.from('heimdall:raw');
  await raw.set(rawKey, Buffer.alloc(120));
  for (let i = 0; i < 5; i++) {
    ra.push(await openLoop(l1Only, queries, 5000, 1));
    rb.push(await openLoop(withRedis, queries, 5000, 1));
    rc.push(await openLoop({ handle: () => raw.getBuffer(rawKey).then(() => RAW_OK) } as unknown as Resolver, queries, 5000, 1));
  }
  raw.disconnect();
  const redisHits = stats.hits - hitsBefore;
  const a = merge(ra);
  const b = merge(rb);
  const c = merge(rc);
  results.l2Latency = {
    l1Only: a,
    withRedisTier: b,
    rawRedisGet: c,
    redisHits,
    redisHitShare: Number((redisHits / b.sent).toFixed(3)),
    p99AddedMs: Number((b.p99 - a.p99).toFixed(3)),
  };
  console.log('L2 hit latency at 5,000 QPS (ms):');
  console.log(`  L1 only           p50 ${a.p50}  p99 ${a.p99}  p99.9 ${a.p999}  max ${a.max}  (${a.qps} QPS, ${a.failed} failed)`);
  console.log(
    `  L1 miss → Redis   p50 ${b.p50}  p99 ${b.p99}  p99.9 ${b.p999}  max ${b.max}  (${b.qps} QPS, ${b.failed} failed, ${redisHits} Redis hits = ${((redisHits / b.sent) * 100).toFixed(1)} %)`,
  );
  console.log(`  raw ioredis GET   p50 ${c.p50}  p99 ${c.p99}  p99.9 ${c.p999}  max ${c.max}  (the same server and pacing, no DNS: the floor)`);
  console.log(`  p99 added by the Redis tier: ${(b.p99 - a.p99).toFixed(3)} ms (target ≤ 1 ms); tier p99 − raw GET p99: ${(b.p99 - c.p99).toFixed(3)} ms`);
  await l1Only.stop();
  await withRedis.stop();
  await server.stop();
}

// ---------------------------------------------------------------- 2. kill -9 under 2,000 QPS, then back
{
  const server = await RedisServer.start();
  const opts = { url: server.url, reconnect: { minDelayMs: 100, maxDelayMs: 2000 } };
  const a = createResolver({ logger: silentLogger(), clock: systemClock, plugins: [cache({ maxEntries: 256, policy: 'lru' }), redis(opts), answering()] });
  const b = createResolver({ logger: silentLogger(), clock: systemClock, plugins: [cache({ maxEntries: 10_000 }), redis(opts), answering()] });
  await a.start();
  await b.start();
  const names = Array.from({ length: 2000 }, (_, i) => `n${i}.load.example`);
  const queries = names.map((n, i) => queryFor(n, i));
  for (let i = 0; i < 1000; i++) await b.handle(queries[i]!, CLIENT);
  const bStats = b.scope('redis').get(RedisStats);
  const aStats = a.scope('redis').get(RedisStats);
  await waitFor(() => bStats.writes >= 1000, 'B to fill Redis');
  let killedAt = -1;
  let backAt = -1;
  let resumedAfter = -1;
  let restarting = false;
  const shuffled = [...queries].sort(() => Math.random() - 0.5);
  const shared = async (): Promise<boolean> => {
    const q = queryFor(`fresh${Math.random()}.example`);
    await b.handle(q, CLIENT);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const before = aStats.hits;
    await a.handle(q, CLIENT);
    return aStats.hits > before;
  };
  const run = await openLoop(a, shuffled, 2000, 6, (ms) => {
    if (killedAt < 0 && ms >= 1500) {
      killedAt = ms;
      server.proc?.kill('SIGKILL');
    }
    if (killedAt >= 0 && !restarting && ms >= 3000) {
      restarting = true;
      void server.start().then(async () => {
        const t0 = performance.now();
        backAt = ms;
        await waitFor(shared, 'sharing to resume', 10_000);
        resumedAfter = Math.round(performance.now() - t0);
      });
    }
  });
  await waitFor(() => resumedAfter >= 0, 'sharing to resume', 15_000);
  const aConn = a.scope('redis').get(RedisConnection);
  results.killUnderLoad = {
    ...run,
    killedAtMs: Math.round(killedAt),
    restartedAtMs: Math.round(backAt),
    sharingResumedAfterMs: resumedAfter,
    connected: aConn.ready,
    redis: { ...aStats },
  };
  console.log(`kill -9 under 2,000 QPS: ${run.sent} queries (${run.qps} QPS), ${run.failed} failed (target 0), p99 ${run.p99} ms, max ${run.max} ms`);
  console.log(`  Redis back → a name answered by B is a Redis hit in A after ${resumedAfter} ms (target ≤ 10,000 ms)`);
  await a.stop();
  await b.stop();
  await server.stop();
}

await cleanup();
writeFileSync(new URL('./results/redis.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
