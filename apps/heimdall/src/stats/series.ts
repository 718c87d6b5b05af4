/**
 * Fixed-size rings of recent activity: per-second counters ({@link COUNTERS})
 * and per-10-second latency histograms, overall and per upstream. A slot
 * remembers which second (or 10-second span) it holds and is cleared when
 * time comes round to it again, so nothing needs a timer.
 *
 * Memory (15-minute window): 900 × 11 × 4 bytes of counters + 90 × 81 × 4
 * bytes of latency per series (overall, and each upstream seen, at most
 * {@link MAX_UPSTREAMS}).
 */
import { COUNTERS, LATENCY_BUCKETS, RCODE_FIRST, RCODES, SERIES_KEYS, type SparseHist, type StatsCounters, type StatsSeriesPoints, sparse } from './model.js';

const NC = COUNTERS.length;
/** Seconds per latency slot. */
export const LATENCY_STEP = 10;
/** Upstreams with their own latency ring; more are counted under `other`. */
export const MAX_UPSTREAMS = 32;

/** Counter indices. */
export const C_QUERIES = 0;
export const C_CACHED = 1;
export const C_MISSES = 2;
export const C_BLOCKED = 3;
export const C_FORWARDED = 4;

/** Counter index of a response code (0..15), or of `none` (no answer: -1). */
export function rcodeCounter(rcode: number): number {
  if (rcode < 0) return RCODE_FIRST + 5;
  switch (rcode) {
    case 0:
      return RCODE_FIRST;
    case 3:
      return RCODE_FIRST + 1;
    case 2:
      return RCODE_FIRST + 2;
    case 5:
      return RCODE_FIRST + 3;
    default:
      return RCODE_FIRST + 4;
  }
}

function countersOf(values: ArrayLike<number>, offset: number): StatsCounters {
  const rcodes: Record<string, number> = {};
  RCODES.forEach((r, i) => {
    rcodes[r] = values[offset + RCODE_FIRST + i]!;
  });
  return {
    queries: values[offset + C_QUERIES]!,
    cached: values[offset + C_CACHED]!,
    cacheMisses: values[offset + C_MISSES]!,
    blocked: values[offset + C_BLOCKED]!,
    forwarded: values[offset + C_FORWARDED]!,
    rcodes,
  };
}

/** A ring of `slots` histograms, one per {@link LATENCY_STEP} seconds. */
class LatencyRing {
  readonly span: Float64Array;
  readonly hist: Uint32Array;
  constructor(readonly slots: number) {
    this.span = new Float64Array(slots).fill(-1);
    this.hist = new Uint32Array(slots * LATENCY_BUCKETS);
  }

  add(span: number, bucket: number): void {
    const s = span % this.slots;
    if (this.span[s] !== span) {
      this.span[s] = span;
      this.hist.fill(0, s * LATENCY_BUCKETS, (s + 1) * LATENCY_BUCKETS);
    }
    this.hist[s * LATENCY_BUCKETS + bucket]!++;
  }

  /** Sum over the spans in `[from, to]`. */
  window(from: number, to: number): SparseHist {
    const dense = new Float64Array(LATENCY_BUCKETS);
    for (let s = 0; s < this.slots; s++) {
      const span = this.span[s]!;
      if (span < from || span > to) continue;
      for (let k = 0; k < LATENCY_BUCKETS; k++) dense[k]! += this.hist[s * LATENCY_BUCKETS + k]!;
    }
    return sparse(dense);
  }

  /** The histogram of one span (empty when the slot holds another). */
  at(span: number): SparseHist {
    const s = span % this.slots;
    return this.span[s] === span ? sparse(this.hist, s * LATENCY_BUCKETS) : [];
  }

  clear(): void {
    this.span.fill(-1);
    this.hist.fill(0);
  }
}

/** Per-second counters and latency of the last `windowSeconds`, plus lifetime totals. */
export class StatsSeries {
  private readonly second: Float64Array;
  private readonly counters: Uint32Array;
  readonly lifetime = new Float64Array(NC);
  private readonly latency: LatencyRing;
  private readonly upstreams = new Map<string, LatencyRing>();
  private readonly spans: number;

  constructor(readonly windowSeconds: number) {
    this.second = new Float64Array(windowSeconds).fill(-1);
    this.counters = new Uint32Array(windowSeconds * NC);
    this.spans = Math.ceil(windowSeconds / LATENCY_STEP) + 1;
    this.latency = new LatencyRing(this.spans);
  }

  /** The counter row of second `sec` (cleared when the slot held an older second). */
  row(sec: number): number {
    const s = sec % this.windowSeconds;
    const base = s * NC;
    if (this.second[s] !== sec) {
      this.second[s] = sec;
      this.counters.fill(0, base, base + NC);
    }
    return base;
  }

  /** Adds 1 to counter `c` of row `base` (from {@link row}). */
  inc(base: number, c: number): void {
    this.counters[base + c]!++;
    this.lifetime[c]!++;
  }

  /** Records one answer's duration at second `sec`, overall and for `upstream`. */
  time(sec: number, bucket: number, upstream: string | undefined): void {
    const span = Math.floor(sec / LATENCY_STEP);
    this.latency.add(span, bucket);
    if (upstream === undefined) return;
    let ring = this.upstreams.get(upstream);
    if (ring === undefined) {
      if (this.upstreams.size >= MAX_UPSTREAMS) {
        upstream = 'other';
        ring = this.upstreams.get(upstream);
      }
      if (ring === undefined) {
        ring = new LatencyRing(this.spans);
        this.upstreams.set(upstream, ring);
      }
    }
    ring.add(span, bucket);
  }

  /** Lifetime counters. */
  total(): StatsCounters {
    return countersOf(this.lifetime, 0);
  }

  /**
   * Counters over the window ending at second `now`, and per `step`-second
   * points on a grid aligned to epoch multiples of `step` (so workers'
   * points line up).
   */
  window(now: number, step: number): { window: StatsCounters; series: StatsSeriesPoints } {
    const from = now - this.windowSeconds + 1;
    const sums = new Float64Array(NC);
    const first = Math.floor(from / step) * step;
    const n = Math.floor(now / step) - first / step + 1;
    const t = Array.from({ length: n }, (_, i) => first + i * step);
    const series = { step, t } as StatsSeriesPoints;
    for (const k of SERIES_KEYS) series[k] = zeros(n);
    for (let s = 0; s < this.windowSeconds; s++) {
      const sec = this.second[s]!;
      if (sec < from || sec > now) continue;
      const base = s * NC;
      for (let c = 0; c < NC; c++) sums[c]! += this.counters[base + c]!;
      const p = Math.floor(sec / step) - first / step;
      series.queries[p]! += this.counters[base + C_QUERIES]!;
      series.cached[p]! += this.counters[base + C_CACHED]!;
      series.blocked[p]! += this.counters[base + C_BLOCKED]!;
      series.forwarded[p]! += this.counters[base + C_FORWARDED]!;
      series.failed[p]! += this.counters[base + RCODE_FIRST + 2]! + this.counters[base + RCODE_FIRST + 5]!;
      series.noerror[p]! += this.counters[base + RCODE_FIRST]!;
      series.nxdomain[p]! += this.counters[base + RCODE_FIRST + 1]!;
      series.servfail[p]! += this.counters[base + RCODE_FIRST + 2]!;
      series.refused[p]! += this.counters[base + RCODE_FIRST + 3]!;
      series.otherRcode[p]! += this.counters[base + RCODE_FIRST + 4]! + this.counters[base + RCODE_FIRST + 5]!;
    }
    return { window: countersOf(sums, 0), series };
  }

  /** Latency over the window ending at second `now`: overall, per 10 s span, per upstream. */
  latencyWindow(now: number): {
    hist: SparseHist;
    t: number[];
    points: SparseHist[];
    upstreams: Array<{ upstream: string; hist: SparseHist; points: SparseHist[] }>;
  } {
    const last = Math.floor(now / LATENCY_STEP);
    const firstSpan = Math.floor((now - this.windowSeconds + 1) / LATENCY_STEP);
    const t: number[] = [];
    const points: SparseHist[] = [];
    for (let span = firstSpan; span <= last; span++) {
      t.push(span * LATENCY_STEP);
      points.push(this.latency.at(span));
    }
    return {
      hist: this.latency.window(firstSpan, last),
      t,
      points,
      upstreams: [...this.upstreams]
        .map(([upstream, ring]) => ({ upstream, hist: ring.window(firstSpan, last), points: t.map((s) => ring.at(s / LATENCY_STEP)) }))
        .filter((u) => u.hist.length > 0),
    };
  }

  reset(): void {
    this.second.fill(-1);
    this.counters.fill(0);
    this.lifetime.fill(0);
    this.latency.clear();
    this.upstreams.clear();
  }
}

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}
