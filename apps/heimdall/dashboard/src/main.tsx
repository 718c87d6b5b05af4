/**
 * The Heimdall dashboard: overview, top lists, query log, controls and the
 * data of any other plugin's GET actions. Everything comes from the admin
 * API (`/actions` says what the chain offers); with `--workers N` the
 * stats actions answer per worker and `api.ts` merges them.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { answersOf, percentile, type QueryFilter, type StatsOverview, type StatsQueries, type StatsTop, type TopItem } from '../../src/stats/model.js';
import {
  ApiError,
  AuthError,
  type BlockingList,
  type BlockingStatus,
  call,
  type Endpoint,
  endpoints,
  findPlugins,
  login,
  logout,
  overview,
  type Plugins,
  queries,
  session,
  top,
  type UpstreamHealth,
  upstreamHealth,
} from './api.js';
import { clientLabel, mandatoryArgs, type ReloadResult, reloadStatus, why } from '../../src/stats/explain.js';
import { Chart } from './chart.js';

const REFRESH_MS = 2000;
const ROUTES = [
  { id: 'overview', label: 'Overview' },
  { id: 'top', label: 'Top lists' },
  { id: 'queries', label: 'Query log' },
  { id: 'controls', label: 'Controls' },
  { id: 'plugins', label: 'Plugins' },
] as const;
type Route = (typeof ROUTES)[number]['id'];

// ------------------------------------------------------------------ helpers

const nf = new Intl.NumberFormat('en');
const fmt = (n: number | null | undefined, digits = 0): string => (n == null || !Number.isFinite(n) ? '–' : nf.format(Number(n.toFixed(digits))));
const ms = (v: number | null | undefined): string => (v == null ? '–' : v < 1 ? `${v.toFixed(2)} ms` : v < 100 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);
const pct = (a: number, b: number): string => (b > 0 ? `${((100 * a) / b).toFixed(1)} %` : '–');
const time = (t: number): string => new Date(t).toLocaleTimeString();
const ago = (t: number | null): string => {
  if (t == null) return 'never';
  const s = Math.round((Date.now() - t) / 1000);
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : new Date(t).toLocaleString();
};

/** Polls `load` every `every` ms while `active`; returns the latest value and error. */
function usePoll<T>(
  load: () => Promise<T>,
  deps: unknown[],
  active = true,
  every = REFRESH_MS,
): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const onAuth = useAuthLost();
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      try {
        const v = await load();
        if (!stop) {
          setData(v);
          setError(undefined);
        }
      } catch (err) {
        if (err instanceof AuthError) return onAuth();
        if (!stop) setError((err as Error).message);
      }
      if (!stop && active) timer = setTimeout(run, every);
    };
    void run();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [...deps, active, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

let authLost: () => void = () => undefined;
const useAuthLost = () => authLost;

function Table<T>({
  caption,
  columns,
  rows,
  empty = 'Nothing yet.',
}: {
  caption: string;
  columns: Array<{ head: string; cell: (r: T) => unknown; num?: boolean; narrow?: boolean }>;
  rows: T[];
  empty?: string;
}) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must take focus to scroll with the keyboard (narrow screens)
    // biome-ignore lint/a11y/useSemanticElements: a div wrapper keeps the table's layout; the role names the scroll region
    <div class="table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" class={`${c.num ? 'num' : ''} ${c.narrow === false ? 'hide-narrow' : ''}`}>
                {c.head}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} class="muted">
                {empty}
              </td>
            </tr>
          ) : (
            rows.map((r) => (
              <tr>
                {columns.map((c) => (
                  <td class={`${c.num ? 'num' : ''} ${c.narrow === false ? 'hide-narrow' : ''}`}>{c.cell(r) as never}</td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

// ------------------------------------------------------------------ overview

function Overview({ plugins, live }: { plugins: Plugins; live: boolean }) {
  const stats = usePoll(() => (plugins.stats ? overview(plugins.stats, 5) : Promise.resolve(undefined)), [plugins.stats], live);
  const health = usePoll(() => upstreamHealth(plugins.upstreams), [plugins.upstreams.join()], live, 5000);
  const o = stats.data;
  if (!plugins.stats)
    return (
      <p>
        The chain has no <code>stats</code> plugin: add <code>{'{ "use": "stats" }'}</code> near the head of <code>plugins</code> to see numbers here.
      </p>
    );
  return (
    <>
      {stats.error && (
        <p class="error" role="alert">
          {stats.error}
        </p>
      )}
      {o && <OverviewBody o={o} health={health.data ?? []} />}
    </>
  );
}

function OverviewBody({ o, health }: { o: StatsOverview; health: UpstreamHealth[] }) {
  const w = o.window;
  const s = o.series;
  // Queries per second over the last complete point and the current one.
  const last = s.t.length - 1;
  const intoCurrent = Math.max(0, Math.min(s.step, o.now / 1000 - s.t[last]!));
  const qps = last >= 1 ? (s.queries[last]! + s.queries[last - 1]!) / (s.step + intoCurrent) : 0;
  const chartQ = useMemo(
    () => ({
      t: s.t,
      series: [
        { label: 'queries/s', color: '#0b57d0', values: s.queries.map((v) => v / s.step) },
        { label: 'cached/s', color: '#146c2e', values: s.cached.map((v) => v / s.step) },
        { label: 'blocked/s', color: '#b3261e', values: s.blocked.map((v) => v / s.step) },
        { label: 'forwarded/s', color: '#7b1fa2', values: s.forwarded.map((v) => v / s.step) },
      ],
    }),
    [o],
  );
  const chartL = useMemo(
    () => ({
      t: o.latency.t,
      series: [
        { label: 'p50', color: '#0b57d0', unit: ' ms', values: o.latency.points.map((h) => percentile(h, 0.5)) },
        { label: 'p99', color: '#b3261e', unit: ' ms', values: o.latency.points.map((h) => percentile(h, 0.99)) },
      ],
    }),
    [o],
  );
  const chartR = useMemo(
    () => ({
      t: s.t,
      series: [
        { label: 'NOERROR/s', color: '#146c2e', values: s.noerror.map((v) => v / s.step) },
        { label: 'NXDOMAIN/s', color: '#8a4b00', values: s.nxdomain.map((v) => v / s.step) },
        { label: 'SERVFAIL/s', color: '#b3261e', values: s.servfail.map((v) => v / s.step) },
        { label: 'REFUSED/s', color: '#7b1fa2', values: s.refused.map((v) => v / s.step) },
        { label: 'other/s', color: '#4d5560', values: s.otherRcode.map((v) => v / s.step) },
      ],
    }),
    [o],
  );
  // The busiest upstreams (at most 4: 8 lines stay readable), p50 and p99 per 10 s.
  const chartU = useMemo(() => {
    const ups = [...o.latency.upstreams].sort((a, b) => b.count - a.count).slice(0, 4);
    return {
      t: o.latency.t,
      series: ups.flatMap((u, i) => [
        { label: `${u.upstream} p50`, color: UPSTREAM_COLORS[i]!, unit: ' ms', values: u.points.map((h) => percentile(h, 0.5)) },
        { label: `${u.upstream} p99`, color: UPSTREAM_COLORS[i]!, dash: true, unit: ' ms', values: u.points.map((h) => percentile(h, 0.99)) },
      ]),
    };
  }, [o]);
  const mins = Math.round(o.windowSeconds / 60);
  const rows = mergeUpstreams(o, health);
  return (
    <>
      <dl class="stats" aria-label={`Last ${mins} minutes`}>
        <div>
          <dt>Queries per second</dt>
          <dd data-testid="qps">{fmt(qps, 1)}</dd>
        </div>
        <div>
          <dt>Queries ({mins} min)</dt>
          <dd data-testid="queries-window">{fmt(w.queries)}</dd>
        </div>
        <div>
          <dt>Cache hit ratio</dt>
          <dd data-testid="hit-ratio">{pct(w.cached, w.cached + w.cacheMisses)}</dd>
        </div>
        <div>
          <dt>Blocked</dt>
          <dd data-testid="blocked-share">{pct(w.blocked, w.queries)}</dd>
        </div>
        <div>
          <dt>Latency p50</dt>
          <dd>{ms(o.latency.p50)}</dd>
        </div>
        <div>
          <dt>Latency p99</dt>
          <dd>{ms(o.latency.p99)}</dd>
        </div>
        <div>
          <dt>Since start</dt>
          <dd data-testid="queries-total">{fmt(o.lifetime.queries)}</dd>
        </div>
      </dl>
      <div class="grid charts">
        <section class="card">
          <Chart title="Queries per second" yLabel="per second" t={chartQ.t} series={chartQ.series} />
        </section>
        <section class="card">
          <Chart title="Latency (per 10 s)" yLabel="ms" t={chartL.t} series={chartL.series} />
        </section>
        <section class="card">
          <Chart title="Answers by response code" yLabel="per second" t={chartR.t} series={chartR.series} />
        </section>
        {chartU.series.length > 0 && (
          <section class="card">
            <Chart title="Upstream latency (per 10 s)" yLabel="ms" t={chartU.t} series={chartU.series} />
          </section>
        )}
      </div>
      <div class="grid">
        <section class="card" aria-labelledby="rcodes-h">
          <h3 id="rcodes-h">Answers by response code ({mins} min)</h3>
          <Table
            caption="Answers by response code"
            rows={Object.entries(w.rcodes).filter(([, n]) => n > 0)}
            columns={[
              { head: 'Code', cell: ([k]) => (k === 'none' ? 'not answered' : k) },
              { head: 'Answers', num: true, cell: ([, n]) => fmt(n) },
              { head: 'Share', num: true, cell: ([, n]) => pct(n, w.queries) },
            ]}
          />
        </section>
        <section class="card" aria-labelledby="up-h">
          <h3 id="up-h">Upstreams</h3>
          <Table
            caption="Upstream health and latency"
            empty="No upstream answered yet."
            rows={rows}
            columns={[
              { head: 'Upstream', cell: (r) => <span class="name">{r.upstream}</span> },
              { head: 'Health', cell: (r) => (r.state === undefined ? '–' : <span class={`badge ${r.state === 'up' ? 'ok' : 'bad'}`}>{r.state}</span>) },
              { head: 'Answers', num: true, cell: (r) => fmt(r.count) },
              { head: 'p50', num: true, cell: (r) => ms(r.p50) },
              { head: 'p99', num: true, cell: (r) => ms(r.p99) },
              {
                head: 'RTT avg',
                num: true,
                narrow: false,
                cell: (r) => (
                  <span title={r.rttByWorker.length > 1 ? r.rttByWorker.map((w) => `worker ${w.worker}: ${ms(w.rttMs)}`).join(', ') : undefined}>
                    {ms(r.rttMs)}
                    {r.rttByWorker.length > 1 && <span class="muted"> ({r.rttByWorker.length} workers)</span>}
                  </span>
                ),
              },
            ]}
          />
        </section>
      </div>
    </>
  );
}

const UPSTREAM_COLORS = ['#0b57d0', '#b3261e', '#146c2e', '#7b1fa2'];

interface UpstreamRow {
  upstream: string;
  state?: 'up' | 'down';
  count: number;
  p50: number | null;
  p99: number | null;
  /** Every worker's RTT average combined, weighted by its requests. */
  rttMs?: number;
  rttByWorker: Array<{ worker: number; rttMs: number; requests: number }>;
}

function mergeUpstreams(o: StatsOverview, health: UpstreamHealth[]): UpstreamRow[] {
  const rows = new Map<string, UpstreamRow>();
  for (const u of o.latency.upstreams) rows.set(u.upstream, { upstream: u.upstream, count: u.count, p50: u.p50, p99: u.p99, rttByWorker: [] });
  for (const h of health) {
    const r = rows.get(h.upstream) ?? { upstream: h.upstream, count: 0, p50: null, p99: null, rttByWorker: [] };
    r.state = r.state === 'down' || h.state === 'down' ? 'down' : 'up';
    r.rttByWorker.push({ worker: h.worker ?? 0, rttMs: h.rttMs, requests: h.requests });
    rows.set(h.upstream, r);
  }
  for (const r of rows.values()) {
    const measured = r.rttByWorker.filter((w) => w.rttMs > 0);
    const weight = measured.reduce((n, w) => n + Math.max(1, w.requests), 0);
    if (measured.length > 0) r.rttMs = measured.reduce((n, w) => n + w.rttMs * Math.max(1, w.requests), 0) / weight;
  }
  return [...rows.values()];
}

// ------------------------------------------------------------------ top

function Top({ plugins, live, onFilter }: { plugins: Plugins; live: boolean; onFilter: (f: QueryFilter) => void }) {
  const [limit, setLimit] = useState(10);
  const t = usePoll<StatsTop | undefined>(() => (plugins.stats ? top(plugins.stats, limit) : Promise.resolve(undefined)), [plugins.stats, limit], live, 5000);
  if (!plugins.stats)
    return (
      <p>
        The chain has no <code>stats</code> plugin.
      </p>
    );
  const list = (title: string, id: string, items: TopItem[], filter: (k: string) => QueryFilter) => (
    <section class="card" aria-labelledby={id}>
      <h3 id={id}>{title}</h3>
      <Table
        caption={title}
        rows={items}
        columns={[
          {
            head: title.includes('clients') ? 'Client' : 'Name',
            cell: (r) => (
              <button type="button" class="link name" title="Show in the query log" onClick={() => onFilter(filter(r.key))}>
                {r.key === '' ? '(root)' : r.key}
              </button>
            ),
          },
          { head: 'Queries', num: true, cell: (r) => (r.error > 0 ? `≤ ${fmt(r.count)}` : fmt(r.count)) },
        ]}
      />
    </section>
  );
  return (
    <>
      <div class="row">
        <label>
          Entries per list
          <select value={String(limit)} onChange={(e) => setLimit(Number((e.target as HTMLSelectElement).value))}>
            {[10, 25, 50, 100].map((n) => (
              <option value={String(n)}>{n}</option>
            ))}
          </select>
        </label>
        {t.data?.anonymized && <p class="muted">Client addresses are anonymised (IPv4 /16, IPv6 /48).</p>}
      </div>
      {t.error && (
        <p class="error" role="alert">
          {t.error}
        </p>
      )}
      {t.data && (
        <div class="grid">
          {list('Top queried names', 'top-names', t.data.names, (k) => ({ name: k }))}
          {list('Top blocked names', 'top-blocked', t.data.blocked, (k) => ({ name: k, blocked: true }))}
          {list('Top clients', 'top-clients', t.data.clients, (k) => ({ client: k }))}
        </div>
      )}
    </>
  );
}

// ------------------------------------------------------------------ query log

const TRI = [
  { v: '', label: 'any' },
  { v: 'true', label: 'yes' },
  { v: 'false', label: 'no' },
];

function Queries({ plugins, live, filter, setFilter }: { plugins: Plugins; live: boolean; filter: QueryFilter; setFilter: (f: QueryFilter) => void }) {
  // The draft starts from the filter (a top-list click mounts this page with one) and is then changed only by
  // the form itself: an effect syncing it from `filter` would run after Clear's render and could overwrite a
  // selection made in between (seen as a flaky dashboard test).
  const [draft, setDraft] = useState<Record<string, string>>(() =>
    Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, v === undefined ? '' : String(v)])),
  );
  const q = usePoll<StatsQueries | undefined>(
    () => (plugins.stats ? queries(plugins.stats, { ...filter, limit: 100 }) : Promise.resolve(undefined)),
    [plugins.stats, JSON.stringify(filter)],
    live,
  );
  if (!plugins.stats)
    return (
      <p>
        The chain has no <code>stats</code> plugin.
      </p>
    );
  const text = (key: string, label: string, placeholder: string) => (
    <label>
      {label}
      <input
        name={key}
        value={draft[key] ?? ''}
        placeholder={placeholder}
        onInput={(e) => setDraft({ ...draft, [key]: (e.target as HTMLInputElement).value })}
      />
    </label>
  );
  const tri = (key: string, label: string) => (
    <label>
      {label}
      <select name={key} value={draft[key] ?? ''} onChange={(e) => setDraft({ ...draft, [key]: (e.target as HTMLSelectElement).value })}>
        {TRI.map((o) => (
          <option value={o.v}>{o.label}</option>
        ))}
      </select>
    </label>
  );
  const apply = (e: Event) => {
    e.preventDefault();
    const f: QueryFilter = {};
    for (const k of ['client', 'name', 'type', 'rcode'] as const) if (draft[k]) f[k] = draft[k]!.trim();
    for (const k of ['blocked', 'cached', 'forwarded'] as const) if (draft[k]) f[k] = draft[k] === 'true';
    setFilter(f);
  };
  return (
    <>
      <form class="card" onSubmit={apply} aria-label="Query log filters">
        <div class="row">
          {text('client', 'Client', '192.168.1.')}
          {text('name', 'Name contains', 'example.com')}
          <label>
            Type
            <select name="type" value={draft.type ?? ''} onChange={(e) => setDraft({ ...draft, type: (e.target as HTMLSelectElement).value })}>
              {['', 'A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS', 'PTR', 'SRV', 'SOA', 'HTTPS', 'SVCB', 'ANY'].map((t) => (
                <option value={t}>{t || 'any'}</option>
              ))}
            </select>
          </label>
          <label>
            Response
            <select name="rcode" value={draft.rcode ?? ''} onChange={(e) => setDraft({ ...draft, rcode: (e.target as HTMLSelectElement).value })}>
              {['', 'NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'none'].map((t) => (
                <option value={t}>{t || 'any'}</option>
              ))}
            </select>
          </label>
          {tri('blocked', 'Blocked')}
          {tri('cached', 'Cached')}
          {tri('forwarded', 'Forwarded')}
          <button type="submit">Filter</button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setDraft({});
              setFilter({});
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {q.error && (
        <p class="error" role="alert">
          {q.error}
        </p>
      )}
      {q.data && (
        <section class="card" aria-labelledby="log-h">
          <h3 id="log-h">
            Latest queries{' '}
            <span class="muted">
              ({fmt(q.data.entries.length)} shown, {fmt(q.data.kept)} kept)
            </span>
          </h3>
          <Table
            caption="Latest queries, newest first"
            empty="No query matches."
            rows={q.data.entries}
            columns={[
              { head: 'Time', cell: (e) => time(e.t) },
              { head: 'Client', narrow: false, cell: (e) => clientLabel(e) },
              { head: 'Question', cell: (e) => <span class="name">{`${e.qname} ${e.qtype}`}</span> },
              {
                head: 'Response',
                cell: (e) => (
                  <span class={`badge ${e.blocked ? 'bad' : e.rcode === 'NOERROR' ? 'ok' : 'warn'}`}>{e.blocked ? `${e.rcode} (blocked)` : e.rcode}</span>
                ),
              },
              { head: 'Why', cell: (e) => why(e) },
              { head: 'Time taken', num: true, cell: (e) => ms(e.ms) },
            ]}
          />
        </section>
      )}
    </>
  );
}

// ------------------------------------------------------------------ controls

function useAction() {
  const [status, setStatus] = useState<{ ok: boolean; text: string } | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const onAuth = useAuthLost();
  const run = useCallback(async (label: string, fn: () => Promise<string | { ok: boolean; text: string }>) => {
    setBusy(true);
    setStatus(undefined);
    try {
      const r = await fn();
      setStatus(typeof r === 'string' ? { ok: true, text: r } : r);
    } catch (err) {
      if (err instanceof AuthError) return onAuth();
      setStatus({ ok: false, text: `${label} failed: ${(err as Error).message}` });
    } finally {
      setBusy(false);
    }
  }, []);
  return { status, busy, run };
}

function Status({ s }: { s: { ok: boolean; text: string } | undefined }) {
  return (
    <p class={`status ${s && !s.ok ? 'error' : ''}`} role="status" aria-live="polite">
      {s?.text ?? ''}
    </p>
  );
}

const DURATIONS = [
  { v: '30s', label: '30 seconds' },
  { v: '1m', label: '1 minute' },
  { v: '5m', label: '5 minutes' },
  { v: '15m', label: '15 minutes' },
  { v: '1h', label: '1 hour' },
  { v: '', label: 'until enabled again' },
];

function BlockingControls({ plugin, live }: { plugin: string; live: boolean }) {
  const st = usePoll(() => call<BlockingStatus>(`/${plugin}/status`), [plugin], live, 3000);
  const lists = usePoll(() => call<BlockingList[]>(`/${plugin}/lists`), [plugin], live, 10_000);
  const [duration, setDuration] = useState('1m');
  const act = useAction();
  const s = st.data;
  const after = () => {
    st.reload();
    lists.reload();
  };
  return (
    <section class="card" aria-labelledby="blocking-h">
      <h3 id="blocking-h">Blocking</h3>
      <p data-testid="blocking-state">
        {s === undefined ? (
          '…'
        ) : s.enabled ? (
          <span class="badge ok">enabled</span>
        ) : (
          <span class="badge bad">{s.disabledUntil ? `disabled until ${time(s.disabledUntil)}` : 'disabled'}</span>
        )}
        {s?.domains !== undefined && <span class="muted"> {fmt(s.domains)} names listed</span>}
      </p>
      <div class="row">
        <label>
          Disable for
          <select value={duration} onChange={(e) => setDuration((e.target as HTMLSelectElement).value)}>
            {DURATIONS.map((d) => (
              <option value={d.v}>{d.label}</option>
            ))}
          </select>
        </label>
        <button
          type="button"
          class="danger"
          disabled={act.busy}
          onClick={() =>
            act.run('Disable', async () => {
              const r = await call<BlockingStatus>(`/${plugin}/disable`, { method: 'POST', body: duration ? { duration } : {} });
              after();
              return r.disabledUntil ? `Blocking disabled until ${time(r.disabledUntil)}.` : 'Blocking disabled.';
            })
          }
        >
          Disable blocking
        </button>
        <button
          type="button"
          disabled={act.busy}
          onClick={() =>
            act.run('Enable', async () => {
              await call(`/${plugin}/enable`, { method: 'POST' });
              after();
              return 'Blocking enabled.';
            })
          }
        >
          Enable blocking
        </button>
        <button
          type="button"
          class="secondary"
          disabled={act.busy}
          onClick={() =>
            act.run('Reload', async () => {
              const r = await call<unknown>(`/${plugin}/reload`, { method: 'POST' });
              after();
              return reloadStatus(answersOf<ReloadResult>(r).map((a) => a.result));
            })
          }
        >
          Reload lists
        </button>
      </div>
      <Status s={act.status} />
      <h3>Lists</h3>
      {lists.error && <p class="error">{lists.error}</p>}
      <Table
        caption="Block and allow lists"
        rows={lists.data ?? []}
        empty="No lists."
        columns={[
          { head: 'List', cell: (l) => `${l.name} (${l.kind}, group ${l.group})` },
          { head: 'Source', cell: (l) => <span class="name">{l.source}</span> },
          { head: 'Entries', num: true, cell: (l) => fmt(l.entries) },
          { head: 'Refreshed', cell: (l) => ago(l.lastRefresh) },
          { head: 'Last error', cell: (l) => (l.lastError ? <span class="error">{l.lastError}</span> : '–') },
        ]}
      />
    </section>
  );
}

function CacheControls({ plugin }: { plugin: string }) {
  const [scope, setScope] = useState<'all' | 'name' | 'suffix'>('name');
  const [value, setValue] = useState('');
  const act = useAction();
  const stats = usePoll(() => call<{ entries: number; hits?: number; misses?: number }>(`/${plugin}/stats`), [plugin], true, 5000);
  return (
    <section class="card" aria-labelledby="cache-h">
      <h3 id="cache-h">Cache</h3>
      <p class="muted">{stats.data ? `${fmt(stats.data.entries)} entries` : '…'}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          act.run('Flush', async () => {
            if (scope !== 'all' && value.trim() === '') throw new Error(`enter a ${scope}`);
            const body = scope === 'all' ? {} : { [scope]: value.trim() };
            const r = await call<{ removed: number }>(`/${plugin}/flush`, { method: 'POST', body });
            stats.reload();
            return `Flushed ${scope === 'all' ? 'everything' : value.trim()}: ${fmt(r.removed)} ${r.removed === 1 ? 'entry' : 'entries'} removed.`;
          });
        }}
      >
        <fieldset>
          <legend>Flush</legend>
          <div class="row" role="radiogroup" aria-label="What to flush">
            {(['name', 'suffix', 'all'] as const).map((s) => (
              <label class="radio">
                <span>
                  <input type="radio" name="scope" value={s} checked={scope === s} onChange={() => setScope(s)} />{' '}
                  {s === 'all' ? 'everything' : s === 'name' ? 'one name' : 'a name and below'}
                </span>
              </label>
            ))}
          </div>
          <div class="row">
            <label>
              Name
              <input
                name="flush-name"
                value={value}
                disabled={scope === 'all'}
                placeholder="example.com"
                onInput={(e) => setValue((e.target as HTMLInputElement).value)}
              />
            </label>
            <button type="submit" disabled={act.busy}>
              Flush cache
            </button>
          </div>
        </fieldset>
      </form>
      <Status s={act.status} />
    </section>
  );
}

function UpstreamControls({ plugins, live }: { plugins: Plugins; live: boolean }) {
  const h = usePoll(() => upstreamHealth(plugins.upstreams), [plugins.upstreams.join()], live, 3000);
  const workers = (h.data ?? []).some((r) => r.worker !== undefined);
  return (
    <section class="card" aria-labelledby="upstreams-h">
      <h3 id="upstreams-h">Upstreams</h3>
      {h.error && <p class="error">{h.error}</p>}
      <Table
        caption="Upstream health"
        rows={h.data ?? []}
        columns={[
          ...(workers ? [{ head: 'Worker', cell: (r: UpstreamHealth) => r.worker }] : []),
          { head: 'Upstream', cell: (r: UpstreamHealth) => <span class="name">{r.upstream}</span> },
          {
            head: 'State',
            cell: (r: UpstreamHealth) => (
              <span class={`badge ${r.state === 'up' ? 'ok' : 'bad'}`}>{r.state === 'down' ? `down (retry in ${Math.ceil(r.retryInMs / 1000)} s)` : 'up'}</span>
            ),
          },
          { head: 'RTT avg', num: true, cell: (r: UpstreamHealth) => ms(r.rttMs) },
          { head: 'Requests', num: true, cell: (r: UpstreamHealth) => fmt(r.requests) },
          { head: 'Failures', num: true, cell: (r: UpstreamHealth) => fmt(r.failures.timeout + r.failures.network + r.failures.protocol + r.failures.rcode) },
          { head: 'In flight', num: true, narrow: false, cell: (r: UpstreamHealth) => fmt(r.inFlight) },
        ]}
      />
    </section>
  );
}

function Controls({ plugins, live }: { plugins: Plugins; live: boolean }) {
  return (
    <>
      {plugins.blocking ? (
        <BlockingControls plugin={plugins.blocking} live={live} />
      ) : (
        <p class="card">
          Blocking is not in the chain (start with <code>--blocklist FILE</code>).
        </p>
      )}
      {plugins.cache && <CacheControls plugin={plugins.cache} />}
      {plugins.upstreams.length > 0 && <UpstreamControls plugins={plugins} live={live} />}
    </>
  );
}

// ------------------------------------------------------------------ other plugins

function PluginData({ list }: { list: Endpoint[] }) {
  const gets = list.filter((e) => e.method === 'GET' && /^\/[^/]+\/[^/]+$/.test(e.path) && mandatoryArgs(e.args).length === 0);
  const [shown, setShown] = useState<Record<string, string>>({});
  const onAuth = useAuthLost();
  return (
    <section class="card" aria-labelledby="plugins-h">
      <h3 id="plugins-h">What every plugin offers</h3>
      <p class="muted">
        Every read-only admin action of the chain (any plugin, including third-party ones, adds its own here). Actions that change things are under Controls.
      </p>
      <ul>
        {gets.map((e) => (
          <li>
            <button
              type="button"
              class="secondary"
              aria-expanded={shown[e.path] !== undefined}
              onClick={async () => {
                if (shown[e.path] !== undefined) {
                  const { [e.path]: _, ...rest } = shown;
                  return setShown(rest);
                }
                try {
                  setShown({ ...shown, [e.path]: JSON.stringify(await call(e.path), null, 2) });
                } catch (err) {
                  if (err instanceof AuthError) return onAuth();
                  setShown({ ...shown, [e.path]: (err as Error).message });
                }
              }}
            >
              {e.path}
            </button>{' '}
            <span class="muted">{e.description}</span>
            {shown[e.path] !== undefined && (
              // biome-ignore lint/a11y/noNoninteractiveTabindex: scrollable output must take focus to scroll with the keyboard
              <pre tabIndex={0}>{shown[e.path]}</pre>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

// ------------------------------------------------------------------ shell

function Login({ onDone }: { onDone: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <main class="login">
      <section class="card">
        <h2>Heimdall</h2>
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            const r = await login(token);
            setBusy(false);
            if (r === true) onDone();
            else {
              setError(r === 'wrong token' ? 'Wrong token.' : r);
              input.current?.select();
            }
          }}
        >
          <label>
            Admin token
            <input
              ref={input}
              type="password"
              name="token"
              autoComplete="current-password"
              required
              value={token}
              onInput={(e) => setToken((e.target as HTMLInputElement).value)}
              aria-describedby="login-help"
              aria-invalid={error !== undefined}
            />
          </label>
          <p id="login-help" class="muted">
            The <code>admin.token</code> of the configuration. The session lasts 12 hours in this browser.
          </p>
          <button type="submit" disabled={busy || token === ''}>
            Log in
          </button>
          <p class="error" role="alert">
            {error ?? ''}
          </p>
        </form>
      </section>
    </main>
  );
}

const routeOf = (): Route => {
  const id = location.hash.replace(/^#/, '');
  return (ROUTES.find((r) => r.id === id)?.id ?? 'overview') as Route;
};

function App() {
  const [state, setState] = useState<'loading' | 'login' | 'ready' | 'error'>('loading');
  const [error, setError] = useState<string | undefined>(undefined);
  const [tokenRequired, setTokenRequired] = useState(false);
  const [list, setList] = useState<Endpoint[]>([]);
  const [route, setRoute] = useState<Route>(routeOf());
  const [live, setLive] = useState(true);
  const [filter, setFilter] = useState<QueryFilter>({});
  const heading = useRef<HTMLHeadingElement>(null);

  const start = useCallback(async () => {
    try {
      const s = await session();
      setTokenRequired(s.tokenRequired);
      if (!s.authenticated) return setState('login');
      setList(await endpoints());
      setState('ready');
    } catch (err) {
      if (err instanceof AuthError) return setState('login');
      setError(err instanceof ApiError ? err.message : String(err));
      setState('error');
    }
  }, []);
  authLost = () => setState('login');

  useEffect(() => {
    void start();
    const onHash = () => setRoute(routeOf());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    const r = ROUTES.find((x) => x.id === route)!;
    document.title = `${r.label} · Heimdall`;
  }, [route]);

  const plugins = useMemo(() => findPlugins(list), [list]);
  if (state === 'loading') return <p class="muted">Loading…</p>;
  if (state === 'login') return <Login onDone={() => void start()} />;
  if (state === 'error') return <p class="error">The admin API did not answer: {error}</p>;
  const go = (r: Route) => {
    location.hash = r;
    setRoute(r);
    heading.current?.focus();
  };
  const current = ROUTES.find((r) => r.id === route)!;
  return (
    <>
      <a class="skip" href="#content">
        Skip to content
      </a>
      <header class="top">
        <h1>Heimdall</h1>
        <nav aria-label="Sections">
          <ul>
            {ROUTES.map((r) => (
              <li>
                <a
                  href={`#${r.id}`}
                  aria-current={r.id === route ? 'page' : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    go(r.id);
                  }}
                >
                  {r.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="spacer" />
        <button type="button" aria-pressed={!live} onClick={() => setLive(!live)}>
          {live ? 'Pause updates' : 'Resume updates'}
        </button>
        {tokenRequired && (
          <button
            type="button"
            onClick={async () => {
              await logout().catch(() => undefined);
              setState('login');
            }}
          >
            Log out
          </button>
        )}
      </header>
      <main id="content">
        <h2 ref={heading} tabIndex={-1}>
          {current.label}
        </h2>
        {route === 'overview' && <Overview plugins={plugins} live={live} />}
        {route === 'top' && (
          <Top
            plugins={plugins}
            live={live}
            onFilter={(f) => {
              setFilter(f);
              go('queries');
            }}
          />
        )}
        {route === 'queries' && <Queries plugins={plugins} live={live} filter={filter} setFilter={setFilter} />}
        {route === 'controls' && <Controls plugins={plugins} live={live} />}
        {route === 'plugins' && <PluginData list={list} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
