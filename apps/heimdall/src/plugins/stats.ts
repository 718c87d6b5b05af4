/**
 * The `stats` plugin: what the dashboard shows, kept in memory with fixed
 * bounds, and served as admin actions (core's `ADMIN_ACTIONS`):
 *
 * | action | |
 * | --- | --- |
 * | `GET /stats/overview` | counters and rcodes over the window and since start, per-`step` series, latency histograms (overall, per 10 s, per upstream) with p50/p99 |
 * | `GET /stats/top` | top queried names, top blocked names, top clients (space-saving, `topSize` counters each) |
 * | `GET /stats/queries` | the latest answered queries (a ring of `logSize`), newest first, filtered by client, name, type, rcode, blocked, cached, forwarded; each with why it was answered so |
 * | `POST /stats/reset` | forget everything counted so far |
 *
 * Every action is `combine: 'all'`: with `--workers N` the answer is
 * `[{ worker, result }, …]` and the dashboard merges them (counters and
 * histograms added, percentiles recomputed, top lists added, queries
 * interleaved by time: `src/stats/model.ts`).
 *
 * Why a query was answered so comes from core's shared state keys, read
 * after the chain returned, exactly as the `query-log` plugin does: BLOCKED
 * (list, group, reason), CACHE_RESULT, UPSTREAM_USED and `ctx.original`
 * (a rewrite). Place it near the head of the chain to see every answer.
 *
 * `anonymizeClients` masks client addresses before anything is stored, as
 * AdGuard Home's `anonymize_client_ip` does: IPv4 to /16 (`192.0.2.7` →
 * `192.0.0.0`), IPv6 to /48.
 */
import net from 'node:net';
import {
  ADMIN_ACTIONS,
  type AdminAction,
  type AdminActions,
  BLOCKED,
  CACHE_RESULT,
  CLOCK,
  type Clock,
  type DnsContext,
  definePlugin,
  type Middleware,
  options,
  PLUGIN,
  PLUGIN_OPTIONS,
  type PluginInfo,
  type Static,
  Type,
  UPSTREAM_USED,
} from '@heimdall/core';
import { ContainerModule, inject, injectable } from '@heimdall/core/di';
import { bucketOf, matchesQuery, percentile, type QueryEntry, type QueryFilter, type StatsOverview, type StatsQueries, type StatsTop } from '../stats/model.js';
import { C_BLOCKED, C_CACHED, C_FORWARDED, C_MISSES, C_QUERIES, rcodeCounter, StatsSeries } from '../stats/series.js';
import { SpaceSaving } from '../stats/topk.js';
import { queryLogLine } from './query-log.js';

/** Options of the {@link stats} plugin. */
export const statsOptionsSchema = options({
  windowSeconds: Type.Integer({
    minimum: 60,
    maximum: 3600,
    default: 900,
    description: 'Seconds of per-second counters and latency kept for the overview charts (15 minutes by default).',
  }),
  topSize: Type.Integer({
    minimum: 10,
    maximum: 100_000,
    default: 1000,
    description:
      'Counters per top list (names, blocked names, clients; space-saving algorithm): memory is fixed by this, not by the number of distinct names. A name asked more than 1/topSize of all queries is always listed.',
  }),
  logSize: Type.Integer({ minimum: 0, maximum: 100_000, default: 1000, description: 'Latest queries kept for the query log (a ring; 0 keeps none).' }),
  anonymizeClients: Type.Boolean({
    default: false,
    description: "Store client addresses masked, as AdGuard Home's anonymize_client_ip does: IPv4 to /16, IPv6 to /48 (in top clients and the query log).",
  }),
});

/** The stats plugin's options, defaults filled in. */
export type StatsOptions = Static<typeof statsOptionsSchema>;

/** A client address masked as AdGuard Home does: IPv4 /16 (last two bytes zeroed), IPv6 /48 (last ten bytes zeroed). */
export function anonymizeAddress(address: string): string {
  if (net.isIPv4(address)) {
    const [a, b] = address.split('.');
    return `${a}.${b}.0.0`;
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return `::ffff:${anonymizeAddress(mapped[1]!)}`;
  if (net.isIPv6(address)) {
    // Expand to 8 groups, keep the first 3 (48 bits).
    const groups = expand6(address.replace(/%.*$/, ''));
    return compress6([...groups.slice(0, 3), 0, 0, 0, 0, 0]);
  }
  return address;
}

function expand6(a: string): number[] {
  // An embedded IPv4 tail (`64:ff9b::192.0.2.1`) is two groups.
  a = a.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, w, x, y, z) => `${((+w << 8) | +x).toString(16)}:${((+y << 8) | +z).toString(16)}`);
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':').filter(Boolean) : [];
  const t = tail ? tail.split(':').filter(Boolean) : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => Number.parseInt(g, 16));
}

function compress6(groups: number[]): string {
  // Longest run of zeros → '::'.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Everything counted: series, top lists, recent queries. */
@injectable()
export class StatsStore {
  readonly series: StatsSeries;
  readonly names: SpaceSaving;
  readonly blockedNames: SpaceSaving;
  readonly clients: SpaceSaving;
  /** Ring of recent queries. */
  private readonly log: Array<QueryEntry | undefined>;
  private next = 0;
  private count = 0;
  startedAt: number;
  /** Client address → stored form (identity unless anonymising). */
  readonly client: (address: string) => string;

  constructor(
    @inject(PLUGIN_OPTIONS) readonly options: StatsOptions,
    @inject(CLOCK) readonly clock: Clock,
  ) {
    this.series = new StatsSeries(options.windowSeconds);
    this.names = new SpaceSaving(options.topSize);
    this.blockedNames = new SpaceSaving(options.topSize);
    this.clients = new SpaceSaving(options.topSize);
    this.log = new Array<QueryEntry | undefined>(options.logSize);
    this.startedAt = clock.now();
    this.client = options.anonymizeClients ? anonymizeAddress : (a) => a;
  }

  /** Counts one answered query (called after the chain returned). */
  record(ctx: DnsContext, ms: number): void {
    const now = this.clock.now();
    const sec = Math.floor(now / 1000);
    const series = this.series;
    const row = series.row(sec);
    series.inc(row, C_QUERIES);
    const res = ctx.response;
    series.inc(row, rcodeCounter(res === null || res.length < 12 ? -1 : res[3]! & 15));
    const blocked = ctx.get(BLOCKED);
    const cache = ctx.get(CACHE_RESULT);
    const upstream = ctx.get(UPSTREAM_USED);
    if (blocked !== undefined) series.inc(row, C_BLOCKED);
    if (cache === 'hit' || cache === 'stale') series.inc(row, C_CACHED);
    else if (cache === 'miss') series.inc(row, C_MISSES);
    if (upstream !== undefined) series.inc(row, C_FORWARDED);
    series.time(sec, bucketOf(ms), upstream);
    const asked = ctx.original?.query ?? ctx.query;
    let qname: string;
    try {
      qname = asked.qname.toLowerCase();
    } catch {
      qname = '';
    }
    const client = this.client(ctx.client.address);
    this.names.add(qname);
    this.clients.add(client);
    if (blocked !== undefined) this.blockedNames.add(qname);
    if (this.log.length > 0) {
      const line = queryLogLine(ctx, ms) as QueryEntry;
      line.t = now;
      line.client = client;
      this.log[this.next] = line;
      this.next = (this.next + 1) % this.log.length;
      if (this.count < this.log.length) this.count++;
    }
  }

  overview(step: number): StatsOverview {
    const now = this.clock.now();
    const sec = Math.floor(now / 1000);
    const { window, series } = this.series.window(sec, step);
    const lat = this.series.latencyWindow(sec);
    return {
      now,
      startedAt: this.startedAt,
      windowSeconds: this.options.windowSeconds,
      lifetime: this.series.total(),
      window,
      series: { step, ...series },
      latency: {
        hist: lat.hist,
        p50: percentile(lat.hist, 0.5),
        p99: percentile(lat.hist, 0.99),
        step: 10,
        t: lat.t,
        points: lat.points,
        upstreams: lat.upstreams.map((u) => ({
          upstream: u.upstream,
          hist: u.hist,
          count: u.hist.reduce((s, [, n]) => s + n, 0),
          p50: percentile(u.hist, 0.5),
          p99: percentile(u.hist, 0.99),
        })),
      },
      anonymized: this.options.anonymizeClients,
    };
  }

  top(limit: number): StatsTop {
    return {
      names: this.names.top(limit),
      blocked: this.blockedNames.top(limit),
      clients: this.clients.top(limit),
      capacity: this.options.topSize,
      anonymized: this.options.anonymizeClients,
    };
  }

  queries(filter: QueryFilter): StatsQueries {
    const limit = filter.limit ?? 100;
    const entries: QueryEntry[] = [];
    const size = this.log.length;
    for (let i = 1; i <= this.count && entries.length < limit; i++) {
      const e = this.log[(this.next - i + size) % size]!;
      if (matchesQuery(e, filter)) entries.push(e);
    }
    return { entries, kept: this.count, capacity: size };
  }

  reset(): void {
    this.series.reset();
    this.names.reset();
    this.blockedNames.reset();
    this.clients.reset();
    this.log.fill(undefined);
    this.next = 0;
    this.count = 0;
    this.startedAt = this.clock.now();
  }
}

/** Times the rest of the chain, then counts the answer. */
@injectable()
class StatsMiddleware {
  readonly handle: Middleware;

  constructor(@inject(StatsStore) store: StatsStore) {
    this.handle = (ctx, next) => {
      const t0 = performance.now();
      const r = next();
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        return (r as Promise<void>).then(
          () => store.record(ctx, performance.now() - t0),
          (err: unknown) => {
            store.record(ctx, performance.now() - t0);
            throw err;
          },
        );
      }
      store.record(ctx, performance.now() - t0);
    };
  }
}

const overviewArgs = options({
  step: Type.Integer({ minimum: 1, maximum: 300, default: 5, description: 'Seconds per point of the series.' }),
});
const topArgs = options({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'Entries per list.' }),
});
const queriesArgs = options({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Entries at most (newest first).' }),
  client: Type.Optional(Type.String({ maxLength: 64, description: 'Client address, exact or a prefix ending in "." or ":".' })),
  name: Type.Optional(Type.String({ maxLength: 255, description: 'Part of the question name (case-insensitive).' })),
  type: Type.Optional(Type.String({ maxLength: 16, description: 'Query type (A, AAAA, …).' })),
  rcode: Type.Optional(Type.String({ maxLength: 16, description: 'Response code (NOERROR, NXDOMAIN, …; none: not answered).' })),
  blocked: Type.Optional(Type.Boolean({ description: 'Only blocked (true) or not blocked (false) queries.' })),
  cached: Type.Optional(Type.Boolean({ description: 'Only queries answered from a cache (true) or not (false).' })),
  forwarded: Type.Optional(Type.Boolean({ description: 'Only queries an upstream answered (true) or not (false).' })),
});

/** `ADMIN_ACTIONS`: overview, top, queries, reset. */
@injectable()
class StatsAdmin implements AdminActions {
  readonly plugin: string;
  readonly actions: readonly AdminAction[];

  constructor(@inject(PLUGIN) info: PluginInfo, @inject(StatsStore) store: StatsStore) {
    this.plugin = info.name;
    this.actions = [
      {
        name: 'overview',
        method: 'GET',
        description: 'Queries, cache hits, blocked, forwarded and rcodes over the window and since start; series per `step` s; latency histograms with p50/p99, overall and per upstream',
        args: overviewArgs,
        combine: 'all',
        run: (a: Static<typeof overviewArgs>) => store.overview(a.step),
      },
      {
        name: 'top',
        method: 'GET',
        description: 'Top queried names, top blocked names and top clients (space-saving counts; `error` bounds the over-count)',
        args: topArgs,
        combine: 'all',
        run: (a: Static<typeof topArgs>) => store.top(a.limit),
      },
      {
        name: 'queries',
        method: 'GET',
        description: 'Latest answered queries, newest first, with why (blocked list/rule, cache, upstream, rewrite); filters client, name, type, rcode, blocked, cached, forwarded',
        args: queriesArgs,
        combine: 'all',
        run: (a: Static<typeof queriesArgs>) => store.queries(a),
      },
      {
        name: 'reset',
        method: 'POST',
        description: 'Forget every count, top list and logged query',
        combine: 'sum',
        run: () => {
          store.reset();
          return { reset: 1 };
        },
      },
    ];
  }
}

/** The stats plugin: bounded in-memory statistics for the dashboard. */
export const stats = definePlugin({
  name: 'stats',
  description: 'In-memory statistics for the dashboard: per-second counters, latency, top names/blocked/clients, the latest queries with why (admin actions stats/overview, stats/top, stats/queries).',
  options: statsOptionsSchema,
  setup: () => ({
    module: new ContainerModule(({ bind }) => {
      bind(StatsStore).toSelf();
      bind(StatsMiddleware).toSelf();
      bind(StatsAdmin).toSelf();
    }),
    provides: [{ token: ADMIN_ACTIONS, use: StatsAdmin }],
    middleware: (scope) => scope.get(StatsMiddleware).handle,
  }),
});

export default stats;
