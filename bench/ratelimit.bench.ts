/**
 * Ratelimit plugin: cost per query when not limiting (target ≤ 100 ns).
 *
 *   cd /work/main/bench && TSX_TSCONFIG_PATH=tsconfig.json node --expose-gc --conditions=source --import tsx ratelimit.bench.ts
 *
 * The middleware the resolver built runs on a ready context whose `next`
 * does nothing, beside a pass-through middleware peer in the same run; the
 * difference is the plugin's cost. Clients, taken in turn: 4096 IPv4
 * clients in 4096 /24s (the table holds 4096 buckets), 64 IPv4 clients in
 * 64 /24s, and 4096 IPv6 clients (memoized prefix keys). The limit is never
 * reached (rate 10^6/s per prefix; a run checks it). Also the whole
 * `resolver.process` of a synchronous chain with and without it.
 *
 * Writes bench/results/ratelimit.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { ADMIN_ACTIONS, type AdminActions, type ClientInfo, createResolver, DnsContext, definePlugin, type Middleware, RecordType } from '@heimdall/core';
import { type ContextEnv, silentLogger, systemClock } from '@heimdall/core/pipeline';
import { query } from '@heimdall/testing';
import { bench, do_not_optimize, run, summary } from 'mitata';
// The plugin by path: the bench package does not depend on it.
import { ratelimit } from '../plugins/ratelimit/src/index.js';

const passThrough = definePlugin({ name: 'pass', setup: () => ({ middleware: () => (_ctx, next) => next() }) });
const answer = definePlugin({
  name: 'answer',
  setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.1' }]) }),
});

const limited = createResolver({ plugins: [ratelimit({ rate: 1_000_000, burst: 1_000_000 }), answer()], logger: silentLogger() });
const peer = createResolver({ plugins: [passThrough(), answer()], logger: silentLogger() });
await limited.start();
await peer.start();
const rl = limited.middleware('ratelimit')!;
const pass = peer.middleware('pass')!;

const env: ContextEnv = { logger: silentLogger(), clock: systemClock, ednsPayloadSize: 1232, recursionAvailable: true, queryTimeoutMs: 5000 };
const q = query('www.example.com', 'A', { id: 1 });
const client = (address: string): ClientInfo => ({ address, port: 53000, family: address.includes(':') ? 6 : 4, transport: 'udp' });
const N = 4096;
const v4 = Array.from({ length: N }, (_, i) => new DnsContext(q, client(`10.${i >> 8}.${i & 255}.${1 + (i % 250)}`), env));
const few = Array.from({ length: N }, (_, i) => v4[i % 64]!);
const v6 = Array.from({ length: N }, (_, i) => new DnsContext(q, client(`2001:db8:${i.toString(16)}::${(i % 250) + 1}`), env));
const noop = () => undefined;
// Warm the tables (every bucket exists) and check nothing is limited.
for (const ctx of [...v4, ...v6]) rl(ctx, noop);

let i = 0;
const step = (mw: Middleware, list: DnsContext[]) => () => {
  i = (i + 1) & (N - 1);
  do_not_optimize(mw(list[i]!, noop));
};

summary(() => {
  bench('pass-through peer, 4096 IPv4 clients', step(pass, v4));
  bench('ratelimit, 4096 IPv4 clients (4096 /24s)', step(rl, v4));
});
summary(() => {
  bench('pass-through peer, 64 IPv4 clients', step(pass, few));
  bench('ratelimit, 64 IPv4 clients (64 /24s)', step(rl, few));
});
summary(() => {
  bench('pass-through peer, 4096 IPv6 clients', step(pass, v6));
  bench('ratelimit, 4096 IPv6 clients (/56 keys memoized)', step(rl, v6));
});
const clients = v4.map((c) => c.client);
let limitedAnswers = 0;
const processWith = (r: typeof peer) => () => {
  i = (i + 1) & (N - 1);
  const out = r.process(q, clients[i]!) as Buffer;
  if ((out[2]! & 0x02) !== 0) limitedAnswers++;
  do_not_optimize(out);
};
summary(() => {
  bench('resolver.process: pass-through + answer', processWith(peer));
  bench('resolver.process: ratelimit + answer', processWith(limited));
});

const results = await run({ format: process.env.BENCH_FORMAT === 'json' ? 'json' : 'mitata' });
const stats = (await limited.container
  .getAll<AdminActions>(ADMIN_ACTIONS)[0]!
  .actions.find((a) => a.name === 'stats')!
  .run({})) as { truncated: number };
if (limitedAnswers > 0 || stats.truncated > 0) throw new Error(`the benchmark reached the limit (${limitedAnswers} TC answers): its figures are void`);
await limited.stop();
await peer.stop();

const avg = (name: string) => {
  const b = results.benchmarks.find((x) => x.alias === name);
  const s = b?.runs[0]?.stats;
  return s === undefined ? null : { avgNs: Math.round(s.avg * 10) / 10, p50Ns: Math.round(s.p50 * 10) / 10 };
};
const names = results.benchmarks.map((b) => b.alias);
const out = Object.fromEntries(names.map((n) => [n, avg(n)]));
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/ratelimit.json', import.meta.url),
  `${JSON.stringify({ node: process.version, date: new Date().toISOString(), results: out }, null, 2)}\n`,
);
