/**
 * Blocking plugin: domain-set benchmark with 1,000,000 generated domains.
 *
 *   cd /work/main && node --expose-gc --import tsx bench/blocking.bench.ts
 *
 * Measures, in one run:
 * - build time of the engine from a hosts-format text (parse + public-suffix
 *   check + hash table), and the memory it keeps (JS heap and ArrayBuffers);
 * - lookups of 5-label names, listed and not listed, in the chosen hash table
 *   (`DomainTable`), the sorted-array candidate (`SortedDomainTable`) and the
 *   naive peer (a `Set` of every listed name, probed with every suffix);
 * - the full decision (`Engine.decide`), which the middleware runs per query.
 *
 * Writes bench/results/blocking.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { DECISION_BLOCKED, DECISION_NONE, Engine, EngineBuilder, NaiveSuffixSet, randomSeed, SortedDomainTable } from '@heimdall/plugin-blocking';
import { bench, do_not_optimize, run, summary } from 'mitata';

const N = Number(process.env.BLOCKING_BENCH_N ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

// Deterministic PRNG (mulberry32) so every run lists the same names.
let seedState = 0x12345678;
function rnd(): number {
  seedState = (seedState + 0x6d2b79f5) | 0;
  let t = seedState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ALPHA = 'abcdefghijklmnopqrstuvwxyz0123456789';
function label(min: number, max: number): string {
  const len = min + Math.floor(rnd() * (max - min + 1));
  let s = '';
  for (let i = 0; i < len; i++) s += ALPHA[Math.floor(rnd() * (i === 0 ? 26 : ALPHA.length))];
  return s;
}
const TLDS = ['com', 'net', 'org', 'io', 'de', 'info', 'co.uk', 'com.au', 'fr', 'xyz'];
function domain(): string {
  const labels = 1 + Math.floor(rnd() * 3); // 1–3 labels under the TLD
  const parts: string[] = [];
  for (let i = 0; i < labels; i++) parts.push(label(3, 12));
  return `${parts.join('.')}.${TLDS[Math.floor(rnd() * TLDS.length)]}`;
}

function mem() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, ab: m.arrayBuffers };
}
const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;

console.log(`generating ${N} domains…`);
const listed = new Set<string>();
while (listed.size < N) listed.add(domain());
const listedArr = [...listed];
let hosts = '# generated hosts file\n' + listedArr.map((d) => `0.0.0.0 ${d}`).join('\n') + '\n';
console.log(`hosts text: ${mb(hosts.length)} MB`);

// --- build the engine (chosen structure) ---------------------------------
const m0 = mem();
let t0 = performance.now();
const builder = new EngineBuilder(randomSeed(), N);
const counts = builder.addText({ id: 0, group: 0, allow: false, exact: false, registrable: false, maxEntries: 5_000_000 }, hosts);
const engine = new Engine(builder.finish());
const buildMs = performance.now() - t0;
hosts = '';
const m1 = mem();
const engineHeap = m1.heap - m0.heap;
const engineAb = m1.ab - m0.ab;
console.log(
  `engine build: ${buildMs.toFixed(0)} ms, entries ${engine.table.size}, refused PS ${counts.refusedPublicSuffix}, invalid ${counts.invalid}; ` +
    `heap +${mb(engineHeap)} MB, ArrayBuffers +${mb(engineAb)} MB (${((engineHeap + engineAb) / engine.table.size).toFixed(1)} B/entry)`,
);

// --- sorted-array candidate ------------------------------------------------
const triples: number[] = [];
const slots = engine.table.slots;
for (let o = 0; o < slots.length; o += 3) if (slots[o + 2]) triples.push(slots[o]!, slots[o + 1]!, slots[o + 2]!);
const tripleArr = Uint32Array.from(triples);
triples.length = 0;
const m2 = mem();
t0 = performance.now();
const sorted = new SortedDomainTable(tripleArr, engine.table.seed);
const sortedMs = performance.now() - t0;
const m3 = mem();
console.log(`sorted table: build (from hashes) ${sortedMs.toFixed(0)} ms, ArrayBuffers +${mb(m3.ab - m2.ab)} MB`);

// --- naive peer --------------------------------------------------------------
const m4 = mem();
t0 = performance.now();
const naive = new NaiveSuffixSet();
for (const d of listedArr) naive.add(d);
const naiveMs = performance.now() - t0;
const m5 = mem();
console.log(`naive Set: build ${naiveMs.toFixed(0)} ms (from ready strings), heap +${mb(m5.heap - m4.heap)} MB`);

// --- queries -----------------------------------------------------------------
const Q = 4096;
const miss: string[] = [];
while (miss.length < Q) {
  const q = `${label(2, 6)}.${label(2, 6)}.${label(3, 8)}.${label(4, 10)}.${TLDS[Math.floor(rnd() * 3)]}`;
  if (engine.decide(q, 1) === DECISION_NONE) miss.push(q);
}
const hit: string[] = [];
while (hit.length < Q) {
  const d = listedArr[Math.floor(rnd() * listedArr.length)]!;
  const labels = d.split('.').length;
  let q = d;
  for (let i = labels; i < 5; i++) q = `${label(2, 6)}.${q}`;
  if (q.split('.').length !== 5) continue;
  hit.push(q);
}
for (const q of hit) if (engine.decide(q, 1) !== DECISION_BLOCKED) throw new Error(`expected ${q} to be blocked`);
for (const q of hit) if (naive.matchCount(q) === 0) throw new Error(`naive disagrees on ${q}`);
const out = new Uint32Array(128);

let i = 0;
summary(() => {
  bench('hash table: 5-label name, not listed', () => do_not_optimize(engine.table.matchSuffixes(miss[i++ & (Q - 1)]!, out)));
  bench('sorted array: 5-label name, not listed', () => do_not_optimize(sorted.matchSuffixes(miss[i++ & (Q - 1)]!, out)));
  bench('naive Set of suffixes: 5-label name, not listed', () => do_not_optimize(naive.matchCount(miss[i++ & (Q - 1)]!)));
});
summary(() => {
  bench('hash table: 5-label name, listed', () => do_not_optimize(engine.table.matchSuffixes(hit[i++ & (Q - 1)]!, out)));
  bench('sorted array: 5-label name, listed', () => do_not_optimize(sorted.matchSuffixes(hit[i++ & (Q - 1)]!, out)));
  bench('naive Set of suffixes: 5-label name, listed', () => do_not_optimize(naive.matchCount(hit[i++ & (Q - 1)]!)));
});
summary(() => {
  bench('Engine.decide: not listed', () => do_not_optimize(engine.decide(miss[i++ & (Q - 1)]!, 1)));
  bench('Engine.decide: listed', () => do_not_optimize(engine.decide(hit[i++ & (Q - 1)]!, 1)));
});

const res = (await run()) as unknown as {
  benchmarks: { alias?: string; runs: { name: string; stats?: { avg: number; p75: number; p99: number } }[] }[];
};
const rows = res.benchmarks.map((b) => {
  const r = b.runs[0]!;
  return { name: r.name ?? b.alias, avg: r.stats?.avg ?? null, p75: r.stats?.p75 ?? null, p99: r.stats?.p99 ?? null };
});
const peerOf = (name: string) => rows.find((r) => r.name.startsWith('naive') && r.name.endsWith(name.split(': ')[1]!));
const results = rows.map((r) => {
  const peer = r.name.startsWith('naive') ? null : peerOf(r.name);
  return {
    name: r.name,
    avgNs: r.avg,
    p75Ns: r.p75,
    p99Ns: r.p99,
    peer: peer?.name ?? null,
    ratio: peer?.avg && r.avg ? Math.round((r.avg / peer.avg) * 1000) / 1000 : null,
  };
});
const summaryOut = {
  name: 'blocking',
  domains: N,
  build: {
    engineFromHostsMs: Math.round(buildMs),
    engineHeapMB: mb(engineHeap),
    engineArrayBuffersMB: mb(engineAb),
    bytesPerEntry: Math.round(((engineHeap + engineAb) / engine.table.size) * 10) / 10,
    sortedFromHashesMs: Math.round(sortedMs),
    sortedArrayBuffersMB: mb(m3.ab - m2.ab),
    naiveSetBuildMs: Math.round(naiveMs),
    naiveSetHeapMB: mb(m5.heap - m4.heap),
  },
  results,
  node: process.version,
  date: new Date().toISOString(),
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/blocking.json', import.meta.url), JSON.stringify(summaryOut, null, 2) + '\n');
console.table(results.map((r) => ({ name: r.name, 'avg ns': r.avgNs?.toFixed(1), 'p99 ns': r.p99Ns?.toFixed(1), 'vs naive': r.ratio })));
console.log(JSON.stringify(summaryOut.build));
