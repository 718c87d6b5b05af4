/**
 * Default-chain benchmark (issue 14): what each plugin of the app's default
 * chain costs per query on the synchronous cache-hit path, measured as
 * `resolver.process()` with the plugin in front of a synchronous answering
 * step, minus the same resolver without it (the in-run peer).
 *
 *   cd /work/main && node --expose-gc --import tsx bench/chain.bench.ts
 *
 * Cases (1000 distinct names, client 127.0.0.1 over UDP, every answer synchronous):
 * - `baseline`: one step answering with precomputed bytes;
 * - `acl` with the `localOnly` preset (what the app puts first by default);
 * - `metrics` (the app's request counters and latency histogram);
 * - `stats` (the dashboard's plugin: series, latency, three top lists, query log);
 * - `blocking` with a 100,000-entry list, names not listed;
 * - the whole default chain on a cache hit: metrics, stats, acl, special-use,
 *   blocking (100k), cache (filled first), dedup, then the answering step
 *   (never reached on a hit).
 *
 * Writes bench/results/chain.json: per plugin, ns per query over the
 * baseline (mitata), and the ratio (chain / baseline, lower is better) from
 * tight loops, best of 9, the cases taking turns (`bestOfInterleaved`).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientInfo, HeimdallPlugin, PluginFactory } from '@heimdall/core';
import { bench, do_not_optimize, run, summary } from 'mitata';
import { bestOfInterleaved } from './lib/micro.js';

const here = dirname(fileURLToPath(import.meta.url));
// The plugins are measured from their sources (decorators: bench/tsconfig.json), whatever ran this file.
if (process.env.HEIMDALL_CHAIN_BENCH !== '1') {
  const r = spawnSync(process.execPath, ['--expose-gc', '--conditions=source', '--import', 'tsx', fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, HEIMDALL_CHAIN_BENCH: '1', TSX_TSCONFIG_PATH: join(here, 'tsconfig.json') },
  });
  process.exit(r.status ?? 1);
}
const { createResolver, RecordType } = await import('@heimdall/core');
const { silentLogger } = await import('@heimdall/core/pipeline');
const { query } = await import('@heimdall/testing');
type Factory = (o?: Record<string, unknown>) => HeimdallPlugin;
const plugin = async (pkg: string, name: string): Promise<Factory> => ((await import(pkg)) as Record<string, PluginFactory>)[name] as unknown as Factory;
// Imported by name: bench/ does not declare every plugin package.
const acl = await plugin('@heimdall/plugin-acl', 'acl');
const blocking = await plugin('@heimdall/plugin-blocking', 'blocking');
const cache = await plugin('@heimdall/plugin-cache', 'cache');
const dedup = await plugin('@heimdall/plugin-dedup', 'dedup');
const specialUse = await plugin('@heimdall/plugin-special-use', 'specialUse');
const metrics = await plugin('../apps/heimdall/src/plugins/metrics.js', 'metrics');
const stats = await plugin('../apps/heimdall/src/plugins/stats.js', 'stats');

type Stats = { avg: number; p50: number };
const NAMES = 1000;
const queries = Array.from({ length: NAMES }, (_, i) => query(`Hit-${i}.Bench.example`, 'A', { id: i }));
const CLIENT: ClientInfo = { address: '127.0.0.1', port: 53000, family: 4, transport: 'udp' };
const answers = queries.map((q) => {
  const r = Buffer.from(q);
  r[2]! |= 0x80;
  return r;
});
let at = 0;
const next = (): number => {
  at = at + 1 === NAMES ? 0 : at + 1;
  return at;
};
/** Answers with precomputed bytes (by query id). */
const fixed: HeimdallPlugin = { name: 'fixed', middleware: () => (ctx) => void (ctx.response = answers[ctx.query.id]!) };
/** Answers with one A record (what the cache stores). */
const answer: HeimdallPlugin = {
  name: 'answer',
  middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 3600, data: '192.0.2.1' }]),
};

const work = mkdtempSync(join(tmpdir(), 'chain-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const list = join(work, 'list.txt');
writeFileSync(list, `${Array.from({ length: 100_000 }, (_, i) => `0.0.0.0 ads-${i}.tracker${i % 97}.example.net`).join('\n')}\n`);
const blockingPlugin = () => blocking({ refresh: { interval: 0 }, cacheDir: join(work, 'cache'), groups: { default: { block: [list] } } });

async function resolverOf(plugins: HeimdallPlugin[]) {
  const r = createResolver({ plugins, logger: silentLogger() });
  await r.start();
  return r;
}
const cases: Array<[string, HeimdallPlugin[]]> = [
  ['baseline', [fixed]],
  ['acl (localOnly)', [acl({ preset: 'localOnly' }), fixed]],
  ['metrics', [metrics(), fixed]],
  ['stats', [stats(), fixed]],
  ['blocking (100k list, not listed)', [blockingPlugin(), fixed]],
  [
    'default chain, cache hit',
    [metrics(), stats(), acl({ preset: 'localOnly' }), specialUse(), blockingPlugin(), cache({ maxEntries: 250_000 }), dedup(), answer],
  ],
];
const resolvers = new Map<string, Awaited<ReturnType<typeof resolverOf>>>();
for (const [name, plugins] of cases) {
  const r = await resolverOf(plugins);
  if (plugins.some((p) => p.name === 'blocking')) {
    // Wait for the list to be built: a listed name is answered NXDOMAIN.
    const listed = query('ads-1.tracker1.example.net', 'A');
    const rcode = () => {
      const out = r.process(listed, CLIENT);
      return Buffer.isBuffer(out) ? out[3]! & 15 : -1;
    };
    for (let i = 0; i < 400 && rcode() !== 3; i++) await new Promise((s) => setTimeout(s, 50));
    if (rcode() !== 3) throw new Error(`${name}: the block list was not built`);
  }
  for (const q of queries) {
    const out = r.process(q, CLIENT);
    if (!Buffer.isBuffer(out)) throw new Error(`${name}: not answered synchronously (${out === null ? 'null' : 'a promise'})`);
  }
  resolvers.set(name, r);
}

summary(() => {
  for (const [name] of cases) {
    const r = resolvers.get(name)!;
    bench(name, () => do_not_optimize(r.process(queries[next()]!, CLIENT)));
  }
});
const res = (await run()) as unknown as { benchmarks: { alias?: string; runs: { name: string; stats?: Stats }[] }[] };
// The ratio's figures: tight loops, best of 9, the cases taking turns. Mitata's p50 of the one-step baseline
// moved 60–120 ns between runs of the same code (2026-12-01), and with it every ratio over it.
const tight = bestOfInterleaved(
  Object.fromEntries(
    cases.map(([name]) => [
      name,
      (
        (r) => () =>
          r.process(queries[next()]!, CLIENT)
      )(resolvers.get(name)!),
    ]),
  ),
  20_000,
);
const by = new Map<string, Stats>();
for (const b of res.benchmarks) for (const r of b.runs) if (r.stats) by.set(r.name ?? b.alias, r.stats);
const base = by.get('baseline')!;
const round = (x: number) => Math.round(x * 10) / 10;
const results = cases.slice(1).map(([name]) => {
  const s = by.get(name)!;
  return {
    name: `${name}: resolver.process / baseline`,
    avgNs: round(s.avg),
    p50Ns: round(s.p50),
    costNs: round(s.avg - base.avg),
    costP50Ns: round(s.p50 - base.p50),
    peer: 'baseline (one step answering with precomputed bytes)',
    peerAvgNs: round(base.avg),
    peerP50Ns: round(base.p50),
    tightNs: round(tight[name]!),
    peerTightNs: round(tight.baseline!),
    ratio: Number((tight[name]! / tight.baseline!).toFixed(2)),
  };
});
for (const r of results) console.log(`${r.name.padEnd(60)} +${r.costP50Ns} ns p50 (+${r.costNs} avg), ratio ${r.ratio}`);
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(
  join(here, 'results/chain.json'),
  `${JSON.stringify({ bench: 'chain', date: new Date().toISOString(), node: process.version, note: 'cost = resolver.process with the plugin(s) − baseline, same run (mitata); ratio = tightNs / peerTightNs, tight loops, best of 9, cases interleaved (lower is better)', loadAverage1m: Number(loadavg()[0]!.toFixed(2)), results }, null, 2)}\n`,
);
for (const r of resolvers.values()) await r.stop();
process.exit(0);
