/**
 * What the `stats` plugin's admin actions answer, and the pure functions
 * both sides need: latency buckets and percentiles, and the merge of
 * several workers' answers (`--workers N`: the actions are `combine: 'all'`,
 * the dashboard merges with {@link mergeOverview}, {@link mergeTop} and
 * {@link mergeQueries}). No Node.js imports: the dashboard bundles this file.
 */

/** Latency histogram: bucket `k` (0..{@link LATENCY_OVERFLOW}-1) holds times ≤ {@link bucketUpperMs}(k); the last one everything above. */
export const LATENCY_BUCKETS = 81;
/** Index of the overflow bucket (above ~8.8 s). */
export const LATENCY_OVERFLOW = LATENCY_BUCKETS - 1;
const BASE_MS = 0.01;

/** Upper bound (ms) of bucket `k`: 0.01 ms × 2^(k/4) (4 buckets per doubling: ≤ 19 % apart). */
export function bucketUpperMs(k: number): number {
  return k >= LATENCY_OVERFLOW ? Number.POSITIVE_INFINITY : BASE_MS * 2 ** (k / 4);
}

/** The bucket of a duration in milliseconds. */
export function bucketOf(ms: number): number {
  if (!(ms > BASE_MS)) return 0;
  const k = Math.ceil(4 * Math.log2(ms / BASE_MS) - 1e-9);
  return k > LATENCY_OVERFLOW ? LATENCY_OVERFLOW : k;
}

/** A sparse histogram: `[bucket, count]` pairs, buckets ascending. */
export type SparseHist = Array<[number, number]>;

/** Sparse form of a dense histogram (or of `length` buckets of it from `offset`). */
export function sparse(dense: ArrayLike<number>, offset = 0, length = LATENCY_BUCKETS): SparseHist {
  const out: SparseHist = [];
  for (let k = 0; k < length; k++) {
    const n = dense[offset + k]!;
    if (n > 0) out.push([k, n]);
  }
  return out;
}

/** Sum of sparse histograms. */
export function addHists(hists: readonly SparseHist[]): SparseHist {
  const dense = new Float64Array(LATENCY_BUCKETS);
  for (const h of hists) for (const [k, n] of h) dense[k]! += n;
  return sparse(dense);
}

/** Number of samples in a histogram. */
export function histCount(h: SparseHist): number {
  let n = 0;
  for (const [, c] of h) n += c;
  return n;
}

/**
 * The `q` quantile (0..1) of a histogram, in ms, interpolated
 * geometrically inside its bucket; null without samples. The overflow
 * bucket reports its lower bound.
 */
export function percentile(h: SparseHist, q: number): number | null {
  const total = histCount(h);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (const [k, n] of h) {
    if (seen + n >= rank) {
      const upper = bucketUpperMs(k);
      const lower = k === 0 ? BASE_MS / 2 : bucketUpperMs(k - 1);
      if (!Number.isFinite(upper)) return lower;
      const frac = n === 0 ? 1 : Math.min(1, Math.max(0, (rank - seen) / n));
      return lower * (upper / lower) ** frac;
    }
    seen += n;
  }
  return bucketUpperMs(h[h.length - 1]![0]);
}

/** Counters of answered queries. */
export interface StatsCounters {
  queries: number;
  /** Answered from a cache (`hit` or `stale`). */
  cached: number;
  /** Reached a cache that had no answer. */
  cacheMisses: number;
  blocked: number;
  /** Answered by an upstream. */
  forwarded: number;
  /** By response code: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, other, none (the chain did not answer). */
  rcodes: Record<string, number>;
}

/** The order of the counters in the per-second ring (see `stats/series.ts`). */
export const COUNTERS = ['queries', 'cached', 'cacheMisses', 'blocked', 'forwarded', 'NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'other', 'none'] as const;
/** Response-code counters, in {@link COUNTERS} order from index {@link RCODE_FIRST}. */
export const RCODES = ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'other', 'none'] as const;
export const RCODE_FIRST = 5;

/** Latency of the queries one upstream answered. */
export interface UpstreamLatency {
  upstream: string;
  count: number;
  hist: SparseHist;
  p50: number | null;
  p99: number | null;
  /** Per 10 s span, on the overview's `latency.t` grid (empty where it answered nothing). */
  points: SparseHist[];
}

/** The per-point series of the overview, in the order the merge adds them. */
export const SERIES_KEYS = ['queries', 'cached', 'blocked', 'forwarded', 'failed', 'noerror', 'nxdomain', 'servfail', 'refused', 'otherRcode'] as const;
/** One per-point series of the overview. */
export type SeriesKey = (typeof SERIES_KEYS)[number];
/** The overview's series: per `step` seconds over the window; `t` is each point's start (epoch seconds). */
export type StatsSeriesPoints = { step: number; t: number[] } & Record<SeriesKey, number[]>;

/** `GET /stats/overview`. */
export interface StatsOverview {
  /** The worker's clock (epoch ms) when it answered. */
  now: number;
  /** When counting started (epoch ms). */
  startedAt: number;
  windowSeconds: number;
  /** Since start. */
  lifetime: StatsCounters;
  /** Over the last `windowSeconds`. */
  window: StatsCounters;
  /**
   * Per `step` seconds over the window; `t` is each point's start (epoch
   * seconds). `failed`: SERVFAIL or not answered; `noerror`…`refused`: answers
   * by response code, `otherRcode` every other code and the unanswered.
   */
  series: StatsSeriesPoints;
  latency: {
    /** Over the window, every answered query. */
    hist: SparseHist;
    p50: number | null;
    p99: number | null;
    /** Per `step` seconds (a multiple of 10). */
    step: number;
    t: number[];
    points: SparseHist[];
    upstreams: UpstreamLatency[];
  };
  /** Set when client addresses are anonymised. */
  anonymized: boolean;
}

/** One counted key of a top list. `error`: the count may be over by at most this much (space-saving). */
export interface TopItem {
  key: string;
  count: number;
  error: number;
}

/** `GET /stats/top`. */
export interface StatsTop {
  names: TopItem[];
  blocked: TopItem[];
  clients: TopItem[];
  /** Counters per list (the space-saving capacity). */
  capacity: number;
  anonymized: boolean;
}

/** One line of the query log (the `query-log` plugin writes it; the `stats` plugin keeps the recent ones). */
export interface QueryLogLine {
  client: string;
  /** The client's id when it sent one (a DoH path `/dns-query/<id>`). */
  clientId?: string;
  transport: string;
  id: number;
  /** The client's question. */
  qname: string;
  qtype: string;
  /** `none` when the chain did not answer (core then answers SERVFAIL or REFUSED). */
  rcode: string;
  answers: number;
  ms: number;
  /**
   * Set when a blocking plugin blocked the query (`name`: the CNAME target
   * that matched, for `reason: 'cname'`; `rule`: the entry that matched — a
   * listed domain or a `/regex/` — when the plugin says).
   */
  blocked?: { list: string; group: string; reason: string; name?: string; rule?: string };
  /** How a cache answered. */
  cache?: 'hit' | 'stale' | 'miss';
  /** Which upstream answered. */
  upstream?: string;
  /** The question the chain worked on, when a plugin rewrote it. */
  rewrite?: { qname: string; qtype: string };
}

/** One query of the recent log (the query log's line plus when it was answered). */
export interface QueryEntry extends QueryLogLine {
  /** Epoch ms when the answer was ready. */
  t: number;
  /** Worker id, set by {@link mergeQueries}. */
  worker?: number;
}

/** `GET /stats/queries`. */
export interface StatsQueries {
  /** Newest first. */
  entries: QueryEntry[];
  /** Queries held in the ring now. */
  kept: number;
  capacity: number;
}

/** Filters of `stats/queries` (every one optional). */
export interface QueryFilter {
  /** Client address: exact, or a prefix ending in `.` / `:`. */
  client?: string;
  /** Substring of the question name (case-insensitive). */
  name?: string;
  type?: string;
  rcode?: string;
  blocked?: boolean;
  cached?: boolean;
  forwarded?: boolean;
  limit?: number;
}

/** Whether an entry passes a filter. */
export function matchesQuery(e: QueryEntry, f: QueryFilter): boolean {
  if (f.client !== undefined && f.client !== '') {
    const c = f.client;
    if (!(e.client === c || e.clientId === c || (/[.:]$/.test(c) && e.client.startsWith(c)))) return false;
  }
  if (f.name !== undefined && f.name !== '' && !e.qname.toLowerCase().includes(f.name.toLowerCase().replace(/\.$/, ''))) return false;
  if (f.type !== undefined && f.type !== '' && e.qtype !== f.type.toUpperCase()) return false;
  if (f.rcode !== undefined && f.rcode !== '' && e.rcode !== f.rcode.toUpperCase()) return false;
  if (f.blocked !== undefined && (e.blocked !== undefined) !== f.blocked) return false;
  if (f.cached !== undefined && (e.cache === 'hit' || e.cache === 'stale') !== f.cached) return false;
  if (f.forwarded !== undefined && (e.upstream !== undefined) !== f.forwarded) return false;
  return true;
}

// ------------------------------------------------------------ cluster merge

/** One worker's answer to a `combine: 'all'` action. */
export interface WorkerAnswer<T> {
  worker: number;
  result: T;
}

/** Whether `value` is a cluster answer (`[{ worker, result }, …]`) rather than one process's result. */
export function isWorkerAnswers<T>(value: unknown): value is Array<WorkerAnswer<T>> {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((v) => typeof v === 'object' && v !== null && typeof (v as { worker?: unknown }).worker === 'number' && 'result' in v)
  );
}

/** The results inside an answer: one process's result, or every worker's. */
export function answersOf<T>(value: unknown): Array<WorkerAnswer<T>> {
  return isWorkerAnswers<T>(value) ? value : [{ worker: 0, result: value as T }];
}

function addCounters(list: readonly StatsCounters[]): StatsCounters {
  const out: StatsCounters = { queries: 0, cached: 0, cacheMisses: 0, blocked: 0, forwarded: 0, rcodes: {} };
  for (const c of list) {
    out.queries += c.queries;
    out.cached += c.cached;
    out.cacheMisses += c.cacheMisses;
    out.blocked += c.blocked;
    out.forwarded += c.forwarded;
    for (const [k, v] of Object.entries(c.rcodes)) out.rcodes[k] = (out.rcodes[k] ?? 0) + v;
  }
  return out;
}

/** Sums per-point series that share a time grid (points missing in one worker count 0). */
function mergeSeries<K extends string>(parts: ReadonlyArray<{ t: number[] } & Record<K, number[]>>, keys: readonly K[]): { t: number[] } & Record<K, number[]> {
  const ts = [...new Set(parts.flatMap((p) => p.t))].sort((a, b) => a - b);
  const at = new Map(ts.map((t, i) => [t, i]));
  const out = { t: ts } as { t: number[] } & Record<K, number[]>;
  for (const k of keys) {
    const arr = new Array<number>(ts.length).fill(0);
    for (const p of parts) for (let i = 0; i < p.t.length; i++) arr[at.get(p.t[i]!)!]! += p[k][i] ?? 0;
    (out as Record<K, number[]>)[k] = arr;
  }
  return out;
}

/** Merges several workers' overviews: counters and series added, histograms added and percentiles recomputed. */
export function mergeOverview(list: readonly StatsOverview[]): StatsOverview {
  if (list.length === 1) return list[0]!;
  const first = list[0]!;
  const series = mergeSeries(
    list.map((o) => o.series),
    SERIES_KEYS,
  );
  const lt = [...new Set(list.flatMap((o) => o.latency.t))].sort((a, b) => a - b);
  const points = lt.map((t) => addHists(list.map((o) => o.latency.points[o.latency.t.indexOf(t)] ?? [])));
  const hist = addHists(list.map((o) => o.latency.hist));
  const byUpstream = new Map<string, Array<{ hist: SparseHist; points: SparseHist[]; t: number[] }>>();
  for (const o of list)
    for (const u of o.latency.upstreams)
      byUpstream.set(u.upstream, [...(byUpstream.get(u.upstream) ?? []), { hist: u.hist, points: u.points ?? [], t: o.latency.t }]);
  const upstreams = [...byUpstream].map(([upstream, parts]) => {
    const h = addHists(parts.map((p) => p.hist));
    const pts = lt.map((t) => addHists(parts.map((p) => p.points[p.t.indexOf(t)] ?? [])));
    return { upstream, count: histCount(h), hist: h, p50: percentile(h, 0.5), p99: percentile(h, 0.99), points: pts };
  });
  return {
    now: Math.max(...list.map((o) => o.now)),
    startedAt: Math.min(...list.map((o) => o.startedAt)),
    windowSeconds: first.windowSeconds,
    lifetime: addCounters(list.map((o) => o.lifetime)),
    window: addCounters(list.map((o) => o.window)),
    series: { step: first.series.step, ...series },
    latency: { hist, p50: percentile(hist, 0.5), p99: percentile(hist, 0.99), step: first.latency.step, t: lt, points, upstreams },
    anonymized: list.some((o) => o.anonymized),
  };
}

function mergeItems(lists: readonly TopItem[][], limit: number): TopItem[] {
  const by = new Map<string, TopItem>();
  for (const list of lists) {
    for (const it of list) {
      const m = by.get(it.key);
      if (m) {
        m.count += it.count;
        m.error += it.error;
      } else by.set(it.key, { ...it });
    }
  }
  return [...by.values()].sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1)).slice(0, limit);
}

/**
 * Merges several workers' top lists: counts of a key added. Approximate: a
 * key just below each worker's `limit` everywhere is not seen (ask for more
 * than you show).
 */
export function mergeTop(list: readonly StatsTop[], limit: number): StatsTop {
  if (list.length === 1) return list[0]!;
  return {
    names: mergeItems(
      list.map((t) => t.names),
      limit,
    ),
    blocked: mergeItems(
      list.map((t) => t.blocked),
      limit,
    ),
    clients: mergeItems(
      list.map((t) => t.clients),
      limit,
    ),
    capacity: list[0]!.capacity,
    anonymized: list.some((t) => t.anonymized),
  };
}

/** Merges several workers' recent queries: newest first, `limit` of them, each tagged with its worker. */
export function mergeQueries(list: ReadonlyArray<WorkerAnswer<StatsQueries>>, limit: number): StatsQueries {
  if (list.length === 1) return list[0]!.result;
  const entries = list.flatMap((w) => w.result.entries.map((e) => ({ ...e, worker: w.worker })));
  entries.sort((a, b) => b.t - a.t);
  return {
    entries: entries.slice(0, limit),
    kept: list.reduce((s, w) => s + w.result.kept, 0),
    capacity: list.reduce((s, w) => s + w.result.capacity, 0),
  };
}
