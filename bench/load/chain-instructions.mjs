/**
 * The reference app's cache-hit path without sockets, for instruction counts
 * that a busy machine does not move (`valgrind --tool=callgrind` counts
 * instructions, not time): the app's default chain as `load:native` runs it
 * (metrics, stats, the localOnly acl, special-use, blocking with a 100k-entry
 * list, cache, dedup), with a last step answering like an upstream so that
 * the cache fills, then `count` queries through `resolver.process()` over
 * 1000 cached names, each query copied and given a client object as the UDP
 * transport does.
 *
 *   node bench/load/chain-instructions.mjs [count] [repo]      (prints µs/query, wall and CPU, for a quick look)
 *   flock /tmp/heimdall-load.lock bash bench/load/chain-instructions.sh [--top N] [repo…]   (callgrind: instructions per query)
 *
 * `ONLY=metrics,cache` keeps only those plugins of the chain (the last step still answers; `ONLY=none`: no
 * plugin). `FIXED=1`: the last step answers with precomputed bytes instead of encoding an answer.
 *
 * `repo` (default: this checkout) is where the built packages are taken
 * from: another worktree gives an A/B in instructions.
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const count = Number(process.argv[2] ?? 100_000);
const repo = resolve(process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), '../..'));
const app = await import(pathToFileURL(join(repo, 'apps/heimdall/dist/index.js')).href);
const core = await import(pathToFileURL(join(repo, 'packages/core/dist/index.js')).href);
const { encode } = await import(pathToFileURL(join(repo, 'packages/core/dist/packet/index.js')).href);

const tmp = mkdtempSync(join(os.tmpdir(), 'heimdall-instr-'));
const list = join(tmp, 'block.txt');
writeFileSync(list, Array.from({ length: 100_000 }, (_, i) => `0.0.0.0 ads${i.toString(36)}.tracker${i % 97}.example`).join('\n'));
const ALL = [
  { use: 'metrics' },
  { use: 'stats' },
  { use: 'acl', options: { preset: 'localOnly', announce: false } },
  { use: 'special-use' },
  { use: 'blocking', options: { groups: { default: { block: [list] } } } },
  { use: 'cache', options: { maxEntries: 250_000 } },
  { use: 'dedup' },
];
// ONLY=cache,stats: a subset of the chain (the cache-hit check is then skipped when no cache answers).
const only = (process.env.ONLY ?? '').split(',').filter(Boolean);
const plugins = await app.buildPlugins(only.length > 0 ? ALL.filter((p) => only.includes(p.use)) : ALL, tmp);
// The upstream's answer: one A record, TTL 3600 (the load harness's dnsmasq upstream answers so). With FIXED=1:
// the query's own bytes with QR set, precomputed (what `npm run bench -- --compare` counts as the peer, with
// ONLY=none: the resolver and one step, nothing encoded per query).
const fixed = process.env.FIXED === '1';
plugins.push({
  name: 'answer',
  middleware: () =>
    fixed
      ? (ctx) => {
          ctx.response = precomputed[ctx.query.id];
        }
      : (ctx) => {
          ctx.answer([{ name: ctx.query.qname, type: 1, ttl: 3600, data: '192.0.2.1' }], { ra: true });
        },
});
const silent = { level: 'silent', info() {}, warn() {}, error() {}, debug() {}, trace() {}, fatal() {}, child: () => silent };
const resolver = core.createResolver({ plugins, logger: silent });
await resolver.start();
const names = Array.from({ length: 1000 }, (_, i) => `n${i.toString(36)}.hit.bench.example`);
const queries = names.map((name, i) => encode({ id: i, rd: true, questions: [{ name, type: 1 }], edns: { udpPayloadSize: 1232 } }));
const precomputed = queries.map((q) => {
  const r = Buffer.from(q);
  r[2] |= 0x80;
  r[3] = 0x80;
  return r;
});
let answered = 0;
const run = (n) => {
  for (let i = 0; i < n; i++) {
    const q = queries[i % 1000];
    const msg = Buffer.allocUnsafe(q.length);
    for (let j = 0; j < q.length; j++) msg[j] = q[j];
    const client = { address: '127.0.0.1', port: 40000 + (i & 3), family: 4, transport: 'udp', localAddress: '127.0.0.1', localPort: 53 };
    const r = resolver.process(msg, client);
    if (r !== null && !(r instanceof Promise) && r[3] === 0x80) answered++;
  }
};
run(1000); // fills the cache (the last step answers)
run(50_000); // warms the JIT
answered = 0;
// A full GC first (with --expose-gc, as chain-instructions.sh runs it), then warm again (the forced GC makes V8
// compile some functions anew): an old-generation marking cycle that starts inside the measured window would add
// 7,000+ instructions per query, depending only on when it starts.
if (globalThis.gc !== undefined) {
  globalThis.gc();
  run(20_000);
  answered = 0;
}
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
// Under callgrind (CG=1) the measured loop runs inside Array.prototype.reduceRight, a builtin nothing else
// calls here: `--toggle-collect=Builtins_ArrayReduceRight` then counts exactly these queries, not the start-up,
// list loading and timer-driven GC around them (which made counts by difference of two runs move by 100M+).
if (process.env.CG) [0].reduceRight(() => run(count), 0);
else run(count);
const t1 = process.hrtime.bigint();
const c1 = process.cpuUsage(c0);
if (answered !== count && (only.length === 0 || only.includes('cache'))) throw new Error(`only ${answered} of ${count} answered from the cache`);
console.log(JSON.stringify({ count, usPerQuery: Number(t1 - t0) / 1000 / count, cpuUsPerQuery: (c1.user + c1.system) / count }));
await resolver.stop();
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
