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
 * (list, group, reason, rule), CACHE_RESULT, UPSTREAM_USED and `ctx.original`
 * (a rewrite). Place it near the head of the chain to see every answer.
 *
 * `anonymizeClients` masks client addresses before anything is stored, as
 * AdGuard Home's `anonymize_client_ip` does: IPv4 to /16 (`192.0.2.7` →
 * `192.0.0.0`), IPv6 to /48.
 */
import { performance } from 'node:perf_hooks';
import {
  ADMIN_ACTIONS,
  type AdminAction,
  type AdminActions,
  BLOCKED,
  type BlockedInfo,
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
import { type MessageReader, rcodeToString, typeToString } from '@heimdall/core/packet';
import { CoarseClock } from '@heimdall/core/pipeline';
import { formatIPv4, formatIPv6, ipToBytes, maskBytes } from '@heimdall/core/wire';
import { bucketOf, matchesQuery, percentile, type QueryEntry, type QueryFilter, type StatsOverview, type StatsQueries, type StatsTop } from '../stats/model.js';
import { C_BLOCKED, C_CACHED, C_FORWARDED, C_MISSES, C_QUERIES, rcodeCounter, StatsSeries } from '../stats/series.js';
import { MISS, NameMemo, NOT_MEMOIZABLE } from '../stats/name-memo.js';
import { SpaceSaving } from '../stats/topk.js';

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
  const bytes = ipToBytes(address);
  if (bytes === null) return address;
  if (bytes.length === 4) {
    maskBytes(bytes, 16);
    const v4 = formatIPv4(bytes, 0);
    return address.includes(':') ? `::ffff:${v4}` : v4;
  }
  maskBytes(bytes, 48);
  return formatIPv6(bytes, 0);
}

/** Everything counted: series, top lists, recent queries. */
@injectable()
export class StatsStore {
  readonly series: StatsSeries;
  readonly names: SpaceSaving;
  readonly blockedNames: SpaceSaving;
  readonly clients: SpaceSaving;
  /**
   * Ring of recent queries as parallel arrays (no object per query: the
   * entries are built when someone reads the log).
   */
  private readonly log: QueryRing;
  private next = 0;
  private count = 0;
  startedAt: number;
  /** Client address → stored form (identity unless anonymising). */
  readonly client: (address: string) => string;
  /** The clock read per query: 10 ms resolution, no clock call on the hot path. */
  private readonly coarse: CoarseClock;
  /** Question names by their octets: a repeated name is not decoded again. */
  private readonly nameMemo = new NameMemo();

  constructor(
    @inject(PLUGIN_OPTIONS) readonly options: StatsOptions,
    @inject(CLOCK) readonly clock: Clock,
  ) {
    this.series = new StatsSeries(options.windowSeconds);
    this.names = new SpaceSaving(options.topSize);
    this.blockedNames = new SpaceSaving(options.topSize);
    this.clients = new SpaceSaving(options.topSize);
    this.log = new QueryRing(options.logSize);
    this.coarse = CoarseClock.shared(clock);
    this.startedAt = clock.now();
    this.client = options.anonymizeClients ? anonymizeAddress : (a) => a;
  }

  /** Counts one answered query (called after the chain returned). Allocation-free for a name seen recently (the name memo). */
  record(ctx: DnsContext, ms: number): void {
    const now = this.coarse.read();
    const sec = Math.floor(now / 1000);
    const series = this.series;
    const row = series.row(sec);
    series.inc(row, C_QUERIES);
    const res = ctx.response;
    const rcode = res === null || res.length < 12 ? -1 : res[3]! & 15;
    series.inc(row, rcodeCounter(rcode));
    const blocked = ctx.get(BLOCKED);
    const cache = ctx.get(CACHE_RESULT);
    const upstream = ctx.get(UPSTREAM_USED);
    if (blocked !== undefined) series.inc(row, C_BLOCKED);
    if (cache === 'hit' || cache === 'stale') series.inc(row, C_CACHED);
    else if (cache === 'miss') series.inc(row, C_MISSES);
    if (upstream !== undefined) series.inc(row, C_FORWARDED);
    series.time(sec, bucketOf(ms), upstream);
    const asked = ctx.original?.query ?? ctx.query;
    let asName = '';
    let qname = '';
    let qtype = 0;
    const memo = this.nameMemo;
    let at = NOT_MEMOIZABLE;
    try {
      qtype = asked.qtype;
      // By the question key first, when the chain computed it (the blocking list and the cache key on it): one
      // Map lookup. Only for a name without capitals (the key then holds the query's own octets), and a key is
      // only ever linked to a slot that find() matched octet for octet: the slot's text is this query's text.
      const key = ctx.original === null ? ctx.knownQuestionKey : null;
      const byKey = key !== undefined && key !== null && !ctx.questionNameFolded;
      if (byKey) at = memo.findKey(key);
      if (at < 0) {
        // The name's text from the memo when these octets were seen (no decoding), else decoded once more.
        at = asked.qdcount === 0 ? NOT_MEMOIZABLE : memo.find(asked.buffer, asked.questionNameOffset);
        if (at === MISS) {
          asName = asked.qname;
          qname = asName.toLowerCase();
          at = memo.store(asked.buffer, asked.questionNameOffset, asName, qname);
        }
        if (byKey && at >= 0) memo.linkKey(key, at);
      }
      if (at >= 0) {
        asName = memo.text[at]!;
        qname = memo.lower[at]!;
      } else {
        asName = asked.qname;
        qname = asName.toLowerCase();
      }
    } catch {
      // unparseable question: count what we have
    }
    const client = this.client(ctx.client.address);
    // The memo slot remembers the name's counter: a repeated name skips the top list's Map.
    if (at >= 0) memo.hint[at] = this.names.add(qname, memo.hint[at]!);
    else this.names.add(qname);
    this.clients.add(client);
    if (blocked !== undefined) this.blockedNames.add(qname);
    const log = this.log;
    if (log.size > 0) {
      const i = this.next;
      log.t[i] = now;
      log.ms[i] = ms;
      log.id[i] = ctx.query.id;
      log.qtype[i] = qtype;
      log.rcode[i] = rcode;
      log.answers[i] = res === null || res.length < 12 ? 0 : res.readUInt16BE(6);
      log.client[i] = client;
      log.clientId[i] = ctx.client.clientId;
      log.transport[i] = ctx.client.transport;
      log.qname[i] = asName;
      log.blocked[i] = blocked;
      log.cache[i] = cache;
      log.upstream[i] = upstream;
      log.rewritten[i] = ctx.original === null ? undefined : ctx.query;
      this.next = i + 1 === log.size ? 0 : i + 1;
      if (this.count < log.size) this.count++;
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
      series,
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
          points: u.points,
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
    const size = this.log.size;
    for (let i = 1; i <= this.count && entries.length < limit; i++) {
      const e = this.log.entry((this.next - i + size) % size);
      if (matchesQuery(e, filter)) entries.push(e);
    }
    return { entries, kept: this.count, capacity: size };
  }

  /** Nothing to stop: the coarse clock is shared, and stops a second after its last read. */
  stop(): void {}

  reset(): void {
    this.series.reset();
    this.names.reset();
    this.blockedNames.reset();
    this.clients.reset();
    this.log.clear();
    this.next = 0;
    this.count = 0;
    this.startedAt = this.clock.now();
  }
}

/** The query log's ring: one slot per array index, entries built on read. */
class QueryRing {
  readonly t: Float64Array;
  readonly ms: Float32Array;
  readonly id: Uint16Array;
  readonly qtype: Uint16Array;
  readonly rcode: Int8Array;
  readonly answers: Uint16Array;
  readonly client: string[];
  /** The client's id (DoH `/dns-query/<id>`), when it sent one. */
  readonly clientId: Array<string | undefined>;
  readonly transport: string[];
  readonly qname: string[];
  readonly blocked: Array<BlockedInfo | undefined>;
  readonly cache: Array<'hit' | 'stale' | 'miss' | undefined>;
  readonly upstream: Array<string | undefined>;
  /** The question the chain worked on, when the client's was rewritten. */
  readonly rewritten: Array<MessageReader | undefined>;

  constructor(readonly size: number) {
    this.t = new Float64Array(size);
    this.ms = new Float32Array(size);
    this.id = new Uint16Array(size);
    this.qtype = new Uint16Array(size);
    this.rcode = new Int8Array(size);
    this.answers = new Uint16Array(size);
    this.client = new Array<string>(size).fill('');
    this.clientId = new Array<string | undefined>(size).fill(undefined);
    this.transport = new Array<string>(size).fill('');
    this.qname = new Array<string>(size).fill('');
    this.blocked = new Array<BlockedInfo | undefined>(size).fill(undefined);
    this.cache = new Array<'hit' | 'stale' | 'miss' | undefined>(size).fill(undefined);
    this.upstream = new Array<string | undefined>(size).fill(undefined);
    this.rewritten = new Array<MessageReader | undefined>(size).fill(undefined);
  }

  entry(i: number): QueryEntry {
    const e: QueryEntry = {
      t: this.t[i]!,
      client: this.client[i]!,
      transport: this.transport[i]!,
      id: this.id[i]!,
      qname: this.qname[i]!,
      qtype: typeToString(this.qtype[i]!),
      rcode: this.rcode[i]! < 0 ? 'none' : rcodeToString(this.rcode[i]!),
      answers: this.answers[i]!,
      ms: Number(this.ms[i]!.toFixed(3)),
    };
    const clientId = this.clientId[i];
    if (clientId !== undefined) e.clientId = clientId;
    const blocked = this.blocked[i];
    if (blocked !== undefined) {
      e.blocked = { list: blocked.list, group: blocked.group, reason: blocked.reason };
      if (blocked.reason === 'cname') e.blocked.name = blocked.name;
      if (blocked.rule !== undefined) e.blocked.rule = blocked.rule;
    }
    if (this.cache[i] !== undefined) e.cache = this.cache[i];
    if (this.upstream[i] !== undefined) e.upstream = this.upstream[i];
    const rw = this.rewritten[i];
    if (rw !== undefined) e.rewrite = { qname: rw.qname, qtype: typeToString(rw.qtype) };
    return e;
  }

  clear(): void {
    this.blocked.fill(undefined);
    this.rewritten.fill(undefined);
    this.clientId.fill(undefined);
    this.upstream.fill(undefined);
    this.cache.fill(undefined);
  }
}

/**
 * Times the rest of the chain, then counts the answer. An answer completed
 * synchronously (cache hit, block, refusal) is recorded as 0 ms without
 * reading a clock; an asynchronous one is timed from the moment the chain
 * went asynchronous to its end.
 */
@injectable()
class StatsMiddleware {
  readonly handle: Middleware;

  constructor(@inject(StatsStore) store: StatsStore) {
    this.handle = (ctx, next) => {
      const r = next();
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') return timed(store, ctx, r as Promise<void>);
      store.record(ctx, 0);
    };
  }
}

/**
 * The asynchronous end of a query, outside the middleware: a closure there
 * would make V8 allocate a context for `ctx` on every query, answered
 * synchronously or not.
 */
function timed(store: StatsStore, ctx: DnsContext, r: Promise<void>): Promise<void> {
  const t0 = performance.now();
  return r.then(
    () => store.record(ctx, performance.now() - t0),
    (err: unknown) => {
      store.record(ctx, performance.now() - t0);
      throw err;
    },
  );
}

const overviewArgs = options({
  step: Type.Integer({ minimum: 1, maximum: 300, default: 5, description: 'Seconds per point of the series.' }),
});
const topArgs = options({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'Entries per list.' }),
});
const queriesArgs = options({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Entries at most (newest first).' }),
  client: Type.Optional(Type.String({ maxLength: 64, description: 'Client address, exact or a prefix ending in "." or ":", or a client id (DoH).' })),
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
        description:
          'Queries, cache hits, blocked, forwarded and rcodes over the window and since start; series per `step` s; latency histograms with p50/p99, overall and per upstream',
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
        description:
          'Latest answered queries, newest first, with why (blocked list/rule, cache, upstream, rewrite); filters client, name, type, rcode, blocked, cached, forwarded',
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
  // Sees every query and answer, core's own CHAOS/AXFR/ANY answers included.
  role: 'observer',
  description:
    'In-memory statistics for the dashboard: per-second counters, latency, top names/blocked/clients, the latest queries with why (admin actions stats/overview, stats/top, stats/queries).',
  options: statsOptionsSchema,
  setup: () => ({
    module: new ContainerModule(({ bind }) => {
      bind(StatsStore).toSelf();
      bind(StatsMiddleware).toSelf();
      bind(StatsAdmin).toSelf();
    }),
    provides: [{ token: ADMIN_ACTIONS, use: StatsAdmin }],
    middleware: (scope) => scope.get(StatsMiddleware).handle,
    stop: (scope) => scope.get(StatsStore).stop(),
  }),
});

export default stats;
