/**
 * The ratios `npm run bench -- --compare` compares (bench/run-all.ts): each
 * results file's ratios to an in-run peer, with which way is better and
 * whether a change beyond the tolerance fails the command.
 */

type Json = Record<string, unknown>;

/** One ratio of a results file. */
export interface Ratio {
  /** The ratio; for a load scenario measured in rounds, the median of its rounds. */
  value: number;
  /** Whether lower is better (ours / peer in time), else higher is (QPS or CPU speed-ups). */
  lowerBetter: boolean;
  /**
   * Whether a worse value fails the comparison. Micro-benchmarks: always.
   * Load scenarios: only the app's cache-hit CPU per query against the bare
   * servers in JavaScript (`raw-dgram`, `raw-native`: the same runtime, the
   * same kernel path); the rest is printed, not gated. On 2026-12-01 one
   * run's p99 ratio spanned 0.24–3.10, and the app / dnsmasq ratio moved by
   * 12 % between two runs of the same code (dnsmasq's own cost varies).
   */
  gate: boolean;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * name → ratio, of one results file: a micro-benchmark's `results[].ratio`
 * and `ratios` (ours / peer: lower is better, gated), or with `load` a load
 * scenario's `ratios` (a number or one per round; see {@link Ratio.gate}).
 */
export function ratiosOf(json: Json | null, load = false): Map<string, Ratio> {
  const out = new Map<string, Ratio>();
  if (json === null) return out;
  for (const r of (Array.isArray(json.results) ? json.results : []) as Json[]) {
    if (typeof r?.name === 'string' && typeof r.ratio === 'number' && r.ratio > 0) out.set(r.name, { value: r.ratio, lowerBetter: true, gate: true });
  }
  for (const [k, v] of Object.entries((json.ratios ?? {}) as Json)) {
    const rounds = (Array.isArray(v) ? v : [v]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0);
    if (rounds.length === 0) continue;
    const value = Number(median(rounds).toFixed(3));
    if (!load) out.set(k, { value, lowerBetter: true, gate: true });
    else
      out.set(k, { value, lowerBetter: /p99|CPU µs\/query of the process tree/.test(k), gate: /^cache-hit: heimdall \/ raw-(dgram|native), by CPU/.test(k) });
  }
  return out;
}

/** How much worse `is` is than `was` (> 0: worse, as a fraction). */
export function changeOf(was: number, is: number, lowerBetter: boolean): number {
  return lowerBetter ? is / was - 1 : was / is - 1;
}
