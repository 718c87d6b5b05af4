/**
 * Pieces the mitata micro-benchmarks share: the upstream stand-in the cache
 * tier benchmarks resolve through, and the `results` rows (ours beside an
 * in-run peer, with their ratio) that bench/results/<name>.json holds and
 * `npm run bench -- --compare` reads.
 */
import { definePlugin } from '@heimdall/core';
import { RecordType } from '@heimdall/core/packet';

/** An upstream stand-in: two A records, TTL 1 h. */
export const answering = definePlugin({
  name: 'answer',
  setup: () => ({
    middleware: () => (ctx) => {
      ctx.answer([
        { name: ctx.query.qname, type: RecordType.A, ttl: 3600, data: '93.184.216.34' },
        { name: ctx.query.qname, type: RecordType.A, ttl: 3600, data: '93.184.216.35' },
      ]);
    },
  }),
});

/** A benchmark's figures (ns) as mitata reports them. */
export type BenchStats = { avg: number; p50: number; p75: number; p99: number };

/** One row of a results file: our benchmark beside its peer; `ratio` = ours / peer (average; lower is better). */
export interface ResultRow {
  name: string;
  avgNs: number | null;
  p50Ns: number | null;
  p75Ns?: number | null;
  p99Ns: number | null;
  /** With `tight` (resultRows): ns per call in tight loops, best of 9 (`bestOfInterleaved`), ours and the peer's. */
  tightNs?: number;
  peerTightNs?: number;
  peer: string | null;
  peerAvgNs: number | null;
  peerP50Ns: number | null;
  ratio: number | null;
  target?: string;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

/**
 * The figures of mitata's `run()` result by benchmark name, and `row(name,
 * ours, peer, target?)` building a results row from them (`p75: true` adds
 * `p75Ns`). `tight`: ns per call by benchmark name from
 * {@link bestOfInterleaved}; a row whose two sides are both in it takes its
 * ratio from those (and carries `tightNs`, `peerTightNs`), else from
 * mitata's averages.
 */
export function resultRows(runResult: unknown, { p75 = false, tight = {} }: { p75?: boolean; tight?: Record<string, number> } = {}) {
  const res = runResult as { benchmarks: { alias?: string; runs: { name: string; stats?: BenchStats }[] }[] };
  const byName = new Map<string, BenchStats>();
  for (const b of res.benchmarks) for (const r of b.runs) if (r.stats) byName.set(r.name ?? b.alias, r.stats);
  const row = (name: string, ours: string, peerName: string | null, target?: string): ResultRow => {
    const a = byName.get(ours);
    const p = peerName ? byName.get(peerName) : undefined;
    const tightPair = peerName !== null && tight[ours] !== undefined && tight[peerName] !== undefined;
    return {
      name,
      avgNs: a ? r1(a.avg) : null,
      p50Ns: a ? r1(a.p50) : null,
      ...(p75 ? { p75Ns: a ? r1(a.p75) : null } : {}),
      p99Ns: a ? r1(a.p99) : null,
      peer: peerName,
      peerAvgNs: p ? r1(p.avg) : null,
      peerP50Ns: p ? r1(p.p50) : null,
      ...(tightPair ? { tightNs: r1(tight[ours]!), peerTightNs: r1(tight[peerName!]!) } : {}),
      ratio: tightPair ? Math.round((tight[ours]! / tight[peerName!]!) * 100) / 100 : a && p ? Math.round((a.avg / p.avg) * 100) / 100 : null,
      ...(target ? { target } : {}),
    };
  };
  return { byName, row };
}

/**
 * ns per call of each case, the best of `rounds` tight loops of `iterations`
 * calls, the cases taking turns (A B C … A B C …): a slow second of a shared
 * machine lands on every case, and the best round is the undisturbed cost.
 * The steady figure a ratio to an in-run peer should use: mitata's average
 * and median move with a peer that allocates (a scavenge now and then) or one
 * whose cost is tens of ns.
 */
export function bestOfInterleaved(cases: Record<string, () => unknown>, iterations: number, rounds = 9): Record<string, number> {
  const best: Record<string, number> = {};
  for (const name of Object.keys(cases)) best[name] = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn] of Object.entries(cases)) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) if (fn() === sink) sink++;
      const ns = Number(process.hrtime.bigint() - t0) / iterations;
      if (ns < best[name]!) best[name] = ns;
    }
  }
  if (sink === -1) console.log(sink);
  return best;
}
