/**
 * Talking to the admin API from the page: every request carries the
 * `X-Heimdall-Request` header (and POSTs a JSON body), as the admin
 * server's cross-site protections require; the session cookie set by
 * `POST /login` goes along by itself (same origin).
 */
import type { UpstreamHealth as PluginUpstreamHealth } from '@heimdall/plugin-upstream';
import {
  answersOf,
  mergeOverview,
  mergeQueries,
  mergeTop,
  type QueryFilter,
  type StatsOverview,
  type StatsQueries,
  type StatsTop,
  type WorkerAnswer,
} from '../../src/stats/model.js';

/** The admin server said 401: the page shows the login form. */
export class AuthError extends Error {}

/** An admin API error with its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Endpoint {
  method: 'GET' | 'POST';
  path: string;
  description: string;
  combine?: 'sum' | 'first' | 'all';
  args?: { properties?: Record<string, { type?: string; description?: string; default?: unknown }>; required?: string[] };
}

function query(args: Record<string, unknown> | undefined): string {
  if (args === undefined) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(args)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
}

/** GET (query-string arguments) or POST (JSON body) `path`. */
export async function call<T>(
  path: string,
  init: { method?: 'GET' | 'POST'; args?: Record<string, unknown>; body?: Record<string, unknown> } = {},
): Promise<T> {
  const method = init.method ?? 'GET';
  const res = await fetch(`${path}${query(init.args)}`, {
    method,
    credentials: 'same-origin',
    headers: { 'x-heimdall-request': '1', accept: 'application/json', ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
    ...(method === 'POST' ? { body: JSON.stringify(init.body ?? {}) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.status === 401 && path !== '/login') throw new AuthError('log in');
  if (!res.ok) throw new ApiError(res.status, (json as { error?: string } | undefined)?.error ?? `${res.status} ${res.statusText}`);
  return json as T;
}

export interface Session {
  tokenRequired: boolean;
  authenticated: boolean;
}

export const session = (): Promise<Session> => call<Session>('/session');

/** Logs in; resolves false for a wrong token. */
export async function login(token: string): Promise<true | string> {
  try {
    await call('/login', { method: 'POST', body: { token } });
    return true;
  } catch (err) {
    return (err as Error).message;
  }
}

export const logout = (): Promise<unknown> => call('/logout', { method: 'POST' });

export const endpoints = async (): Promise<Endpoint[]> => (await call<{ endpoints: Endpoint[] }>('/actions')).endpoints;

/** Where each known plugin's actions live (`/<instance>/…`), found in `/actions`. */
export interface Plugins {
  stats?: string;
  blocking?: string;
  cache?: string;
  upstreams: string[];
}

export function findPlugins(list: readonly Endpoint[]): Plugins {
  const by = new Map<string, Set<string>>();
  for (const e of list) {
    const m = /^\/([^/]+)\/([^/]+)$/.exec(e.path);
    if (!m) continue;
    const set = by.get(m[1]!) ?? new Set<string>();
    set.add(m[2]!);
    by.set(m[1]!, set);
  }
  const find = (...names: string[]): string[] => [...by].filter(([, s]) => names.every((n) => s.has(n))).map(([p]) => p);
  return {
    stats: find('overview', 'top', 'queries')[0],
    blocking: find('status', 'disable', 'enable', 'lists')[0],
    cache: find('flush', 'stats')[0],
    upstreams: find('health'),
  };
}

export async function overview(plugin: string, step: number): Promise<StatsOverview> {
  const r = await call<unknown>(`/${plugin}/overview`, { args: { step } });
  return mergeOverview(answersOf<StatsOverview>(r).map((a) => a.result));
}

export async function top(plugin: string, limit: number): Promise<StatsTop> {
  // Each worker is asked for more than shown, so the merged top is closer to exact.
  const r = await call<unknown>(`/${plugin}/top`, { args: { limit: limit * 3 } });
  const merged = mergeTop(
    answersOf<StatsTop>(r).map((a) => a.result),
    limit,
  );
  return { ...merged, names: merged.names.slice(0, limit), blocked: merged.blocked.slice(0, limit), clients: merged.clients.slice(0, limit) };
}

export async function queries(plugin: string, filter: QueryFilter): Promise<StatsQueries> {
  const r = await call<unknown>(`/${plugin}/queries`, { args: filter as Record<string, unknown> });
  return mergeQueries(answersOf<StatsQueries>(r), filter.limit ?? 100);
}

/** One upstream of the upstream plugin's `health` action, and which worker answered (`--workers N`). */
export type UpstreamHealth = PluginUpstreamHealth & { worker?: number };

/** Health of every upstream of every instance (per worker with `--workers`). */
export async function upstreamHealth(plugins: readonly string[]): Promise<UpstreamHealth[]> {
  const all = await Promise.all(
    plugins.map(async (p) => {
      const r = await call<unknown>(`/${p}/health`);
      const answers =
        Array.isArray(r) && r.every((x) => typeof x === 'object' && x !== null && 'worker' in x && 'result' in x)
          ? (r as Array<WorkerAnswer<UpstreamHealth[]>>)
          : [{ worker: 0, result: r as UpstreamHealth[] }];
      return answers.flatMap((a) => (a.result ?? []).map((h) => ({ ...h, ...(answers.length > 1 ? { worker: a.worker } : {}) })));
    }),
  );
  return all.flat();
}

export interface BlockingStatus {
  enabled: boolean;
  disabledUntil: number | null;
  domains?: number;
}

export interface BlockingList {
  name: string;
  group: string;
  kind: 'block' | 'allow';
  type: string;
  source: string;
  required: boolean;
  entries: number;
  lastRefresh: number | null;
  lastError: string | null;
}
