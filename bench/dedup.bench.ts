/**
 * Dedup hot path (@heimdall/plugin-dedup, built) beside an in-run peer: the
 * same resolver with a pass-through step in dedup's place. Report ratios to
 * the peer (the machine is shared; absolute figures drift).
 *
 *   cd /work/main && npx tsc -p plugins/dedup/tsconfig.build.json && node --expose-gc --import tsx bench/dedup.bench.ts
 *
 * 1. leader, synchronous downstream: `resolver.process()` of a 44-byte A query
 *    with EDNS through [dedup, answer] — dedup keys the question, opens a
 *    flight, runs next(), closes the flight (no waiters): the per-query cost
 *    every miss pays. Peer: [pass, answer].
 * 2. burst of 64 identical queries (different IDs) with an asynchronous
 *    downstream (one microtask): 1 leader + 63 waiters, each waiter gets a
 *    patched copy. Peer: [pass, answer] where all 64 run downstream.
 *
 * Tight loops (best of 120 interleaved rounds, run before mitata) give the robust figures;
 * mitata's follow. Writes bench/results/dedup.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { type ClientInfo, createResolver, type HeimdallPlugin, type Middleware } from '@heimdall/core';
import { silentLogger } from '@heimdall/core/pipeline';
import { query, response } from '@heimdall/testing';
import { bench, do_not_optimize, run, summary } from 'mitata';
import { dedup } from '@heimdall/plugin-dedup';

type Stats = { avg: number; p50: number; p75: number; p99: number };

const CLIENT: ClientInfo = { address: '192.0.2.10', port: 53000, family: 4, transport: 'udp' };
const Q = query('www.example.com', 'A', { id: 0x1234, edns: true });
const R = response(Q);
const BURST = Array.from({ length: 64 }, (_, i) => query(i % 2 ? 'WWW.Example.com' : 'www.example.com', 'A', { id: i, edns: true }));

const step = (name: string, middleware: Middleware): HeimdallPlugin => ({ name, middleware: () => middleware });
const pass = step('pass', (_ctx, next) => next());
const syncAnswer = step('answer', (ctx) => {
  ctx.response = R;
});
const asyncAnswer = step('answer', (ctx) =>
  Promise.resolve().then(() => {
    ctx.response = R;
  }),
);

const mk = (plugins: HeimdallPlugin[]) => createResolver({ plugins, logger: silentLogger() });
const dedupSync = mk([dedup(), syncAnswer]);
const peerSync = mk([pass, syncAnswer]);
const dedupAsync = mk([dedup(), asyncAnswer]);
const peerAsync = mk([pass, asyncAnswer]);

// Sanity: the dedup resolver answers, and a burst makes one downstream call.
if (!Buffer.isBuffer(dedupSync.process(Q, CLIENT))) throw new Error('dedup resolver did not answer synchronously');

const burst = (r: typeof dedupAsync) => Promise.all(BURST.map((q) => r.handle(q, CLIENT)));

// Tight loops first: 120 short rounds, dedup and its peer interleaved (the
// order rotating), the best round of each kept — the most robust figure on a
// busy machine (mitata's averages are inflated by preemption).
const time = async (fn: () => unknown, iterations: number, isAsync: boolean): Promise<number> => {
  const t0 = process.hrtime.bigint();
  if (isAsync) for (let i = 0; i < iterations; i++) await fn();
  else for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations;
};
const tight: Record<string, number> = { leaderSync: Infinity, peerSync: Infinity, burst64: Infinity, peerBurst64: Infinity };
const cases: Array<[keyof typeof tight, () => unknown, number, boolean]> = [
  ['leaderSync', () => dedupSync.process(Q, CLIENT), 20_000, false],
  ['peerSync', () => peerSync.process(Q, CLIENT), 20_000, false],
  ['burst64', () => burst(dedupAsync), 20, true],
  ['peerBurst64', () => burst(peerAsync), 20, true],
];
for (let round = 0; round < 120; round++) {
  for (let j = 0; j < cases.length; j++) {
    const [key, fn, n, isAsync] = cases[(j + round) % cases.length]!;
    tight[key] = Math.min(tight[key]!, await time(fn, n, isAsync));
  }
}
const tightRatios = { leaderSync: tight.leaderSync / tight.peerSync, burst64: tight.burst64 / tight.peerBurst64 };
console.log('tight loops, best of 120 interleaved rounds (ns/op):', tight);
console.log('tight-loop ratios to peer:', tightRatios);

summary(() => {
  bench('dedup: leader, sync downstream (process)', () => do_not_optimize(dedupSync.process(Q, CLIENT)));
  bench('peer: pass-through, sync downstream (process)', () => do_not_optimize(peerSync.process(Q, CLIENT)));
});
summary(() => {
  bench('dedup: burst of 64 identical (1 leader + 63 waiters)', async () => do_not_optimize(await burst(dedupAsync)));
  bench('peer: burst of 64, each runs downstream', async () => do_not_optimize(await burst(peerAsync)));
});

const res = (await run()) as unknown as { benchmarks: { alias?: string; runs: { name: string; stats?: Stats }[] }[] };
const out: Record<string, Stats> = {};
for (const b of res.benchmarks) for (const r of b.runs) if (r.stats) out[r.name] = { avg: r.stats.avg, p50: r.stats.p50, p75: r.stats.p75, p99: r.stats.p99 };
const ratio = (a: string, b: string) => (out[a] && out[b] ? out[a].avg / out[b].avg : Number.NaN);
const ratios = {
  leaderSync: ratio('dedup: leader, sync downstream (process)', 'peer: pass-through, sync downstream (process)'),
  burst64: ratio('dedup: burst of 64 identical (1 leader + 63 waiters)', 'peer: burst of 64, each runs downstream'),
};
console.log('ratios to peer (avg):', ratios);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/dedup.json', import.meta.url),
  `${JSON.stringify({ date: new Date().toISOString(), tight, tightRatios, results: out, ratios }, null, 2)}\n`,
);
