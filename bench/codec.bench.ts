/**
 * Codec micro-benchmarks, @heimdall/core's packet module beside dns-packet.
 *
 *   cd /work/main && npx turbo run build --filter=@heimdall/core && node --expose-gc --import tsx bench/codec.bench.ts
 *
 * Cases (same inputs for both libraries, in one run):
 * 1. header + question + cache key of a 33-byte A query (`www.example.com`),
 *    vs dns-packet's full decode (the only way it reads a question);
 * 2. full decode of a response with 2 A records + OPT;
 * 3. encode of that response (ours compresses to 76 bytes; dns-packet does not
 *    compress and writes 106 bytes).
 *
 * Writes bench/results/codec.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { decode, encode, MessageReader } from '@heimdall/core/packet';
import { RecordType } from '@heimdall/core';
import dnsPacket from 'dns-packet';
import { bench, do_not_optimize, run, summary } from 'mitata';

const QUERY = Buffer.from('abcd0100000100000000000003777777076578616d706c6503636f6d0000010001', 'hex');

const RESPONSE_MSG = {
  id: 0xabcd,
  qr: true,
  rd: true,
  ra: true,
  questions: [{ name: 'www.example.com', type: RecordType.A }],
  answers: [
    { name: 'www.example.com', type: RecordType.A, ttl: 300, data: '93.184.216.34' },
    { name: 'www.example.com', type: RecordType.A, ttl: 300, data: '93.184.216.35' },
  ],
  edns: { udpPayloadSize: 1232 },
};
const RESPONSE = encode(RESPONSE_MSG);
const DP_MSG: dnsPacket.Packet = {
  id: 0xabcd,
  type: 'response',
  flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
  questions: [{ name: 'www.example.com', type: 'A', class: 'IN' }],
  answers: [
    { name: 'www.example.com', type: 'A', class: 'IN', ttl: 300, data: '93.184.216.34' },
    { name: 'www.example.com', type: 'A', class: 'IN', ttl: 300, data: '93.184.216.35' },
  ],
  additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 1232, flags: 0, options: [] } as unknown as dnsPacket.Answer],
};
const DP_BYTES = dnsPacket.encode(DP_MSG);
if (QUERY.length !== 33) throw new Error(`query is ${QUERY.length} bytes`);
if (RESPONSE.length !== 76) throw new Error(`response is ${RESPONSE.length} bytes`);
console.log(`query ${QUERY.length} B; response ours ${RESPONSE.length} B, dns-packet ${DP_BYTES.length} B`);

const CASES = [
  { key: 'query', name: 'header+question+cacheKey, 33-byte A query', target: 'avg <= 120 ns' },
  { key: 'decode', name: 'decode response, 2 A + OPT', target: '>= 5x dns-packet' },
  { key: 'encode', name: 'encode response, 2 A + OPT (76 B compressed)', target: '>= 5x dns-packet' },
] as const;

summary(() => {
  bench('heimdall: query header+question+cacheKey', () => {
    const r = new MessageReader(QUERY);
    do_not_optimize(r.id);
    do_not_optimize(r.rd);
    do_not_optimize(r.qtype);
    do_not_optimize(r.qclass);
    do_not_optimize(r.cacheKey());
  });
  bench('dns-packet: query decode', () => do_not_optimize(dnsPacket.decode(QUERY)));
});
summary(() => {
  bench('heimdall: decode response', () => do_not_optimize(decode(RESPONSE)));
  bench('dns-packet: decode response', () => do_not_optimize(dnsPacket.decode(RESPONSE)));
});
summary(() => {
  bench('heimdall: encode response', () => do_not_optimize(encode(RESPONSE_MSG)));
  bench('dns-packet: encode response', () => do_not_optimize(dnsPacket.encode(DP_MSG)));
});

// Besides mitata's wall-clock figures: CPU time per operation in a tight loop
// (best of 7 rounds). On a machine shared with other work, CPU time is far
// less disturbed by preemption than wall time.
function cpuNs(fn: () => unknown, n: number): number {
  for (let i = 0; i < n / 5; i++) fn();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 7; r++) {
    const t = process.cpuUsage();
    for (let i = 0; i < n; i++) do_not_optimize(fn());
    const d = process.cpuUsage(t);
    best = Math.min(best, ((d.user + d.system) * 1000) / n);
  }
  return Math.round(best * 10) / 10;
}
const queryPath = () => {
  const r = new MessageReader(QUERY);
  do_not_optimize(r.id);
  do_not_optimize(r.rd);
  do_not_optimize(r.qtype);
  do_not_optimize(r.qclass);
  return r.cacheKey();
};
const cpu = [
  [cpuNs(queryPath, 1e6), cpuNs(() => dnsPacket.decode(QUERY), 2e5)],
  [cpuNs(() => decode(RESPONSE), 5e5), cpuNs(() => dnsPacket.decode(RESPONSE), 2e5)],
  [cpuNs(() => encode(RESPONSE_MSG), 5e5), cpuNs(() => dnsPacket.encode(DP_MSG), 1e5)],
];

type Stats = { avg: number; p50: number; p75: number; p99: number };
const res = (await run()) as unknown as { benchmarks: { alias?: string; runs: { name: string; stats?: Stats }[] }[] };
const byName = new Map<string, Stats>();
for (const b of res.benchmarks) for (const r of b.runs) if (r.stats) byName.set(r.name ?? b.alias, r.stats);

const ours = ['heimdall: query header+question+cacheKey', 'heimdall: decode response', 'heimdall: encode response'];
const peers = ['dns-packet: query decode', 'dns-packet: decode response', 'dns-packet: encode response'];
const results = CASES.map((c, i) => {
  const a = byName.get(ours[i]);
  const p = byName.get(peers[i]);
  return {
    name: c.name,
    avgNs: a ? Math.round(a.avg * 10) / 10 : null,
    p50Ns: a ? Math.round(a.p50 * 10) / 10 : null,
    p75Ns: a ? Math.round(a.p75 * 10) / 10 : null,
    p99Ns: a ? Math.round(a.p99 * 10) / 10 : null,
    peer: 'dns-packet',
    peerAvgNs: p ? Math.round(p.avg * 10) / 10 : null,
    peerP50Ns: p ? Math.round(p.p50 * 10) / 10 : null,
    ratio: a && p ? Math.round((p.avg / a.avg) * 10) / 10 : null,
    ratioP50: a && p ? Math.round((p.p50 / a.p50) * 10) / 10 : null,
    cpuNs: cpu[i][0],
    peerCpuNs: cpu[i][1],
    ratioCpu: Math.round((cpu[i][1] / cpu[i][0]) * 10) / 10,
    target: c.target,
  };
});
const out = {
  bench: 'codec',
  date: new Date().toISOString(),
  node: process.version,
  better: 'higher',
  note: 'ratio = dns-packet avg / heimdall avg, ratioP50 = the same on medians, ratioCpu = on CPU time per op in a tight loop (best of 7); higher is better.',
  loadAverage1m: Math.round(loadavg()[0] * 100) / 100,
  sizes: { query: QUERY.length, responseOurs: RESPONSE.length, responseDnsPacket: DP_BYTES.length },
  results,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/codec.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
console.table(
  results.map((r) => ({
    case: r.name,
    'avg ns': r.avgNs,
    'p50 ns': r.p50Ns,
    'p99 ns': r.p99Ns,
    'dns-packet avg ns': r.peerAvgNs,
    'x faster (avg)': r.ratio,
    'x faster (p50)': r.ratioP50,
    'cpu ns': r.cpuNs,
    'dns-packet cpu ns': r.peerCpuNs,
    'x faster (cpu)': r.ratioCpu,
  })),
);
console.log(`load average (1 min): ${out.loadAverage1m}`);
