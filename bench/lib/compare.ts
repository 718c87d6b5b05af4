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
   * Whether a worse value fails the comparison. Micro-benchmarks: unless our
   * side runs under {@link MIN_GATED_NS}.
   * Load scenarios: only the app's cache-hit CPU per query against the bare
   * servers in JavaScript (`raw-dgram`, `raw-native`: the same runtime, the
   * same kernel path); the rest is printed, not gated. On 2026-12-01 one
   * run's p99 ratio spanned 0.24–3.10, and the app / dnsmasq ratio moved by
   * 12 % between two runs of the same code (dnsmasq's own cost varies).
   */
  gate: boolean;
  /** With `gate: false`: why the ratio is printed only. */
  why?: string;
}

/** A ratio more than this much worse (as a fraction) than its reference fails the comparison. */
export const TOLERANCE = 0.1;

/** The median of a non-empty list (the upper one of an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * A micro-benchmark whose own side averages under this many ns is not gated:
 * V8 has optimised the call nearly away (pipeline's "chain of 1" runs in
 * 1.7–2.0 ns, "compose dispatch" in 1.1), so a few tenths of a ns, not our
 * code, move its ratio by more than 10 % (pipeline "chain of 1": 75.9 → 67.3
 * on unchanged code, 2026-12-01).
 */
export const MIN_GATED_NS = 5;

/**
 * Whether a micro-benchmark results file's ratios are peer / ours (higher is
 * better: codec, pipeline, upstream say `better: 'higher'`) rather than ours /
 * peer. Results files written before that field say so in their `note`.
 */
export function higherBetter(json: Json): boolean {
  return json.better === 'higher' || (json.better === undefined && /higher is better/.test(String(json.note ?? '')));
}

/**
 * name → ratio, of one results file: a micro-benchmark's `results[].ratio`
 * and `ratios` (ours / peer, lower is better, or peer / ours where the file
 * says so: {@link higherBetter}; all gated), or with `load` a load
 * scenario's `ratios` (a number or one per round; see {@link Ratio.gate}).
 */
export function ratiosOf(json: Json | null, load = false): Map<string, Ratio> {
  const out = new Map<string, Ratio>();
  if (json === null) return out;
  const micro = !higherBetter(json);
  for (const r of (Array.isArray(json.results) ? json.results : []) as Json[]) {
    if (typeof r?.name === 'string' && typeof r.ratio === 'number' && r.ratio > 0)
      out.set(
        r.name,
        typeof r.avgNs === 'number' && r.avgNs < MIN_GATED_NS
          ? { value: r.ratio, lowerBetter: micro, gate: false, why: `ours runs in under ${MIN_GATED_NS} ns` }
          : { value: r.ratio, lowerBetter: micro, gate: true },
      );
  }
  for (const [k, v] of Object.entries((json.ratios ?? {}) as Json)) {
    const rounds = (Array.isArray(v) ? v : [v]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0);
    if (rounds.length === 0) continue;
    const value = Number(median(rounds).toFixed(3));
    if (!load) out.set(k, { value, lowerBetter: micro, gate: true });
    else {
      const gate = /^cache-hit: heimdall \/ raw-(dgram|native), by CPU/.test(k);
      out.set(k, {
        value,
        lowerBetter: /p99|CPU µs\/query of the process tree/.test(k),
        gate,
        ...(gate ? {} : { why: "of the load ratios only the app's cache-hit CPU against raw-dgram and raw-native is gated" }),
      });
    }
  }
  return out;
}

/** How much worse `is` is than `was` (> 0: worse, as a fraction). */
export function changeOf(was: number, is: number, lowerBetter: boolean): number {
  return lowerBetter ? is / was - 1 : was / is - 1;
}

/** What a micro-benchmark baseline is valid for: its ratios move with the CPU model and V8. */
export interface BaselineMachine {
  cpu: string;
  /** Node's major version (V8's optimiser changes between them). */
  node: number;
}

/**
 * `bench/results/baseline.json`, written by `npm run bench -- --baseline`:
 * every micro-benchmark run `runs` times, interleaved (all of them, then
 * all again), and each ratio's value in every run, per machine. A single
 * run's ratio moves by more than 10 % on a shared machine (a GC or a
 * preempted sample in ours or in the peer), so a single-run baseline made
 * `--compare` flag unchanged code.
 */
export interface Baseline {
  machines: {
    machine: BaselineMachine;
    /** The latest baseline run for this machine (a subset run updates only some benchmarks: see `measured`). */
    date: string;
    commit: string;
    runs: number;
    ratios: Record<string, Record<string, number[]>>;
    /** When and at which commit each benchmark's ratios were measured. */
    measured?: Record<string, { date: string; commit: string }>;
  }[];
}

/** The baseline entry for `machine`, if one was measured on the same CPU model and Node major. */
export function baselineFor(baseline: Baseline | null, machine: BaselineMachine): Baseline['machines'][number] | null {
  return baseline?.machines.find((m) => m.machine.cpu === machine.cpu && m.machine.node === machine.node) ?? null;
}

/** `baseline` with `entry` in place of any entry for the same machine. */
export function withBaseline(baseline: Baseline | null, entry: Baseline['machines'][number]): Baseline {
  const others = (baseline?.machines ?? []).filter((m) => !(m.machine.cpu === entry.machine.cpu && m.machine.node === entry.machine.node));
  return { machines: [...others, entry] };
}

/**
 * The reference a new ratio is held against: the worst of the baseline's
 * runs (the highest for a lower-is-better ratio). A ratio regresses when the
 * median of its new runs is worse than that by more than the tolerance: the
 * baseline's own run-to-run spread is not a regression.
 */
export function referenceOf(runs: number[], lowerBetter: boolean): number {
  return lowerBetter ? Math.max(...runs) : Math.min(...runs);
}

/** The relative spread of a ratio's runs ((worst − best) / best), to say how noisy it is. */
export function spreadOf(runs: number[]): number {
  const lo = Math.min(...runs);
  return lo > 0 ? (Math.max(...runs) - lo) / lo : 0;
}

/**
 * A ratio whose baseline runs spread by more than this (relative) is too
 * noisy for a 10 % rule: it is printed with its spread, not gated. On
 * 2026-12-01 (AMD EPYC VM) that was the case where the peer itself moves:
 * blocking's peer (a naive Set of suffixes, allocating a string per label:
 * 1.07–2.88 µs while the engine stayed at 179–189 ns) and the chain
 * benchmark's one-step baseline (60–120 ns at p50).
 */
export const NOISY_SPREAD = 0.2;

/** Whether a ratio held against these baseline runs is gated (a single committed value: yes). */
export function gatedBy(runs: number[]): boolean {
  return runs.length < 2 || spreadOf(runs) <= NOISY_SPREAD;
}

/** What one ratio's comparison says: its reference, how much worse the new value is, whether that fails, and why not. */
export interface Verdict {
  reference: number;
  /** > 0: worse, as a fraction of the reference. */
  change: number;
  /** Worse by more than {@link TOLERANCE} and gated. */
  fails: boolean;
  /** Why a ratio is not gated (null: it is). */
  why: string | null;
}

/**
 * The comparison of a new value `is` (the median of its runs) with a
 * committed ratio held against `refRuns` (the baseline's runs, or the
 * results file's one value), `otherMachine` when the committed figures come
 * from another machine than this run's.
 */
export function verdictOf(ratio: Ratio, refRuns: number[], is: number, otherMachine = false): Verdict {
  const reference = referenceOf(refRuns, ratio.lowerBetter);
  const change = changeOf(reference, is, ratio.lowerBetter);
  const why = !ratio.gate
    ? (ratio.why ?? 'not gated')
    : !gatedBy(refRuns)
      ? `its baseline runs spread ${(spreadOf(refRuns) * 100).toFixed(0)} %, over ${NOISY_SPREAD * 100} %`
      : otherMachine
        ? 'the committed figures come from another machine'
        : null;
  return { reference, change, fails: change > TOLERANCE && why === null, why };
}

/**
 * The `--runs N` of `npm run bench -- --baseline` (default 3, 2 to 20) and
 * the benchmarks named. Through npm, `--runs 5` reaches the script as npm's
 * config `runs=true` with `5` among the arguments: a number there is the count.
 */
export function benchArgs(argv: string[], env: Record<string, string | undefined>): { runs: number; only: string[] } {
  const positional = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--runs');
  const at = argv.indexOf('--runs');
  const fromNpm = env.npm_config_runs === 'true' ? positional.find((a) => /^\d+$/.test(a)) : env.npm_config_runs;
  const runs = Number(at >= 0 ? argv[at + 1] : (fromNpm ?? 3));
  if (!Number.isInteger(runs) || runs < 2 || runs > 20)
    throw new RangeError(`--runs must be an integer from 2 to 20 (got ${at >= 0 ? argv[at + 1] : fromNpm})`);
  return { runs, only: positional.filter((a) => !/^\d+$/.test(a)) };
}
