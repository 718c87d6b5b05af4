/**
 * Parsing of the plugin's `url` into what ioredis needs: a standalone
 * server, Sentinels and a master name, or Cluster seed nodes.
 */
import { ConfigError } from '@heimdall/core';

/** One host and port. */
export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/** What a `url` names. */
export type RedisTarget =
  | {
      readonly mode: 'standalone';
      readonly tls: boolean;
      readonly node: RedisNode;
      readonly db: number;
      readonly username?: string;
      readonly password?: string;
    }
  | {
      readonly mode: 'sentinel';
      readonly tls: boolean;
      readonly sentinels: readonly RedisNode[];
      readonly masterName: string;
      readonly db: number;
      readonly username?: string;
      readonly password?: string;
    }
  | { readonly mode: 'cluster'; readonly tls: boolean; readonly nodes: readonly RedisNode[]; readonly username?: string; readonly password?: string };

const URL_RE = /^(rediss?)(?:\+(sentinel|cluster))?:\/\/(?:([^@/]*)@)?([^/?#]*)(\/[^?#]*)?$/i;

/** Parses `host[:port]` / `[v6]:port` lists. */
function parseHosts(list: string, defaultPort: number, path: string): RedisNode[] {
  const out: RedisNode[] = [];
  for (const part of list.split(',')) {
    const m = /^\[([0-9a-fA-F:.%\w-]+)\](?::(\d{1,5}))?$/.exec(part) ?? /^([^:[\]\s]+)(?::(\d{1,5}))?$/.exec(part);
    if (m === null) throw new ConfigError(path, `bad host ${JSON.stringify(part)}: use host, host:port or [v6]:port`);
    const port = m[2] === undefined ? defaultPort : Number(m[2]);
    if (port < 1 || port > 65535) throw new ConfigError(path, `port must be an integer in 1..65535, got ${port}`);
    out.push({ host: m[1]!, port });
  }
  return out;
}

function parseDb(s: string | undefined, path: string): number {
  if (s === undefined || s === '') return 0;
  if (!/^\d{1,2}$/.test(s)) throw new ConfigError(path, `database must be a number, got ${JSON.stringify(s)}`);
  return Number(s);
}

/**
 * Parses a plugin URL. Throws `ConfigError` at `path` (the option's path,
 * `redis.url`) naming what is wrong; the password never appears in messages.
 */
export function parseRedisUrl(url: string, path = 'redis.url'): RedisTarget {
  const m = URL_RE.exec(url);
  if (m === null)
    throw new ConfigError(path, 'must be redis[s]://host[:port][/db], redis[s]+sentinel://host[:port],…/masterName[/db] or redis[s]+cluster://host[:port],…');
  const tls = m[1]!.toLowerCase() === 'rediss';
  const mode = (m[2]?.toLowerCase() ?? 'standalone') as RedisTarget['mode'];
  let username: string | undefined;
  let password: string | undefined;
  if (m[3] !== undefined && m[3] !== '') {
    const at = m[3].indexOf(':');
    const user = at < 0 ? m[3] : m[3].slice(0, at);
    const pass = at < 0 ? undefined : m[3].slice(at + 1);
    try {
      if (user !== '') username = decodeURIComponent(user);
      if (pass !== undefined && pass !== '') password = decodeURIComponent(pass);
    } catch {
      throw new ConfigError(path, 'user or password is not valid percent-encoding');
    }
  }
  const hosts = m[4]!;
  if (hosts === '') throw new ConfigError(path, 'names no host');
  const segments = (m[5] ?? '').split('/').filter((s) => s !== '');
  const auth = { ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) };
  if (mode === 'standalone') {
    const nodes = parseHosts(hosts, 6379, path);
    if (nodes.length !== 1) throw new ConfigError(path, 'a redis:// URL names one server (use redis+sentinel:// or redis+cluster:// for several)');
    if (segments.length > 1) throw new ConfigError(path, 'path must be /db');
    return { mode, tls, node: nodes[0]!, db: parseDb(segments[0], path), ...auth };
  }
  if (mode === 'sentinel') {
    if (segments.length < 1 || segments.length > 2) throw new ConfigError(path, 'a redis+sentinel:// URL needs the master name as its path: /masterName[/db]');
    return { mode, tls, sentinels: parseHosts(hosts, 26379, path), masterName: decodeURIComponent(segments[0]!), db: parseDb(segments[1], path), ...auth };
  }
  if (segments.length > 0) throw new ConfigError(path, 'a redis+cluster:// URL has no path (Cluster has one database)');
  return { mode, tls, nodes: parseHosts(hosts, 6379, path), ...auth };
}

/** The URL with its password replaced by `***` (for logs). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}
