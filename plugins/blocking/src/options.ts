/**
 * Options of the blocking plugin, their defaults and their validation. Every
 * error is a `ConfigError` whose message starts with the path of the field
 * (`blocking.groups.ads.block[1]: …`).
 */
import { isIP } from 'node:net';
import { ConfigError } from '@heimdall/core';
import { MAX_GROUPS, MAX_SOURCES } from './engine.js';
import { parseCidr } from './groups.js';
import { DEFAULT_REGEX_LIMITS, type RegexLimits } from './regex-guard.js';

/** One list: a path, an http(s) URL, or an object with per-list switches. */
export type ListOption =
  | string
  | {
      /** Path of a local file or an `http://`/`https://` URL. Exactly one of `source`/`inline`. */
      source?: string;
      /** The list text itself (one entry per line). */
      inline?: string;
      /** Name in status, metrics and logs. Default: the source (or `<group>.<kind>[i]` for inline lists). */
      name?: string;
      /** Hosts/plain-domain entries block only the name, not its subdomains. Default false. */
      exact?: boolean;
      /** Widen every entry to its registrable domain (`a.ads.example.co.uk` → `example.co.uk`). Default false. */
      registrable?: boolean;
      /** Overrides `refresh.maxEntries` for this list. */
      maxEntries?: number;
    };

/** A group: block lists and allow lists applied together to some clients. */
export interface GroupOptions {
  block?: ListOption[];
  allow?: ListOption[];
}

/** How a blocked query is answered. */
export type ResponseMode = 'nxdomain' | 'nodata' | 'zero' | 'custom' | 'refused';

/** Options of `blocking()`. */
export interface BlockingOptions {
  /** Named groups of lists. At least one. At most 32. */
  groups: Record<string, GroupOptions>;
  /**
   * Which groups apply to which clients: keys are an IP address, a CIDR
   * (`192.168.1.0/24`, `fd00::/8`) or `default`; values are group names. The
   * most specific prefix wins. Omitted: every client gets every group.
   * Given without `default`: unmatched clients are not filtered.
   */
  clients?: Record<string, string[]>;
  response?: {
    /** Default `'nxdomain'`. */
    mode?: ResponseMode;
    /** TTL of blocked answers and of the synthetic SOA (negative-caching time). Default 10 s. */
    ttl?: number;
    /** Addresses for `mode: 'custom'` A answers. */
    ipv4?: string[];
    /** Addresses for `mode: 'custom'` AAAA answers. */
    ipv6?: string[];
    /** Attach EDE 15 "Blocked" (RFC 8914) when the query has EDNS. Default true. */
    ede?: boolean;
  };
  /** Block responses whose CNAME chain passes through a blocked name. Default true. */
  cnameInspection?: boolean;
  /** Start enabled. Default true. */
  enabled?: boolean;
  refresh?: {
    /** Milliseconds between reloads of every list; 0 disables periodic reloads. Default 4 h. */
    interval?: number;
    /** Milliseconds before retrying after a failed download. Default 5 min. */
    retry?: number;
    /** Per-download timeout (connect + body), ms. Default 30 s. */
    timeoutMs?: number;
    /** Largest accepted list, in bytes. Default 64 MiB. */
    maxBytes?: number;
    /** Most entries taken from one list. Default 5,000,000. */
    maxEntries?: number;
    /** Downloads in parallel. Default 4. */
    concurrency?: number;
  };
  /** Directory where downloaded lists are kept, so a restart without network still blocks. Default: none (a private temp dir). */
  cacheDir?: string;
  /** Build lists in a `worker_threads` worker (default) or on the main thread in chunks that yield. */
  build?: 'worker' | 'inline';
  /** Bounds for `/regex/` entries. */
  regex?: Partial<RegexLimits>;
}

/** A list after validation. */
export interface ResolvedList {
  readonly id: number;
  readonly name: string;
  readonly group: string;
  readonly groupIndex: number;
  readonly allow: boolean;
  readonly kind: 'file' | 'url' | 'inline';
  /** Path, URL or the inline text. */
  readonly location: string;
  readonly exact: boolean;
  readonly registrable: boolean;
  readonly maxEntries: number;
  /** The name was given in the options (not derived from the source). */
  readonly explicitName: boolean;
}

/** Validated options with defaults applied. */
export interface ResolvedOptions {
  readonly groups: readonly string[];
  readonly lists: readonly ResolvedList[];
  /** CIDR → group mask rules, and the default mask. */
  readonly clients: { readonly rules: readonly { cidr: string; mask: number }[]; readonly defaultMask: number };
  readonly response: {
    readonly mode: ResponseMode;
    readonly ttl: number;
    readonly ipv4: readonly string[];
    readonly ipv6: readonly string[];
    readonly ede: boolean;
  };
  readonly cnameInspection: boolean;
  readonly enabled: boolean;
  readonly refresh: {
    readonly interval: number;
    readonly retry: number;
    readonly timeoutMs: number;
    readonly maxBytes: number;
    readonly maxEntries: number;
    readonly concurrency: number;
  };
  readonly cacheDir: string | null;
  readonly build: 'worker' | 'inline';
  readonly regex: RegexLimits;
}

const P = 'blocking';
const GROUP_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MODES: readonly ResponseMode[] = ['nxdomain', 'nodata', 'zero', 'custom', 'refused'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(path: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(path, `must be an integer between ${min} and ${max}`, v);
  }
  return v;
}

function bool(path: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw new ConfigError(path, 'must be true or false', v);
  return v;
}

function unknownKeys(path: string, o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new ConfigError(`${path}.${k}`, `unknown option (expected one of: ${allowed.join(', ')})`);
}

/** Validates `options` and applies defaults. Throws `ConfigError` naming the first bad field. */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (!isObject(options)) throw new ConfigError(P, 'options must be an object', options);
  unknownKeys(P, options, ['groups', 'clients', 'response', 'cnameInspection', 'enabled', 'refresh', 'cacheDir', 'build', 'regex']);

  // refresh first: list maxEntries defaults come from it.
  const r = options.refresh ?? {};
  if (!isObject(r)) throw new ConfigError(`${P}.refresh`, 'must be an object', r);
  unknownKeys(`${P}.refresh`, r, ['interval', 'retry', 'timeoutMs', 'maxBytes', 'maxEntries', 'concurrency']);
  const DAY = 86_400_000;
  const refresh = {
    interval: int(`${P}.refresh.interval`, r.interval, 4 * 3_600_000, 0, 30 * DAY),
    retry: int(`${P}.refresh.retry`, r.retry, 300_000, 1000, DAY),
    timeoutMs: int(`${P}.refresh.timeoutMs`, r.timeoutMs, 30_000, 100, 600_000),
    maxBytes: int(`${P}.refresh.maxBytes`, r.maxBytes, 64 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    maxEntries: int(`${P}.refresh.maxEntries`, r.maxEntries, 5_000_000, 1, 50_000_000),
    concurrency: int(`${P}.refresh.concurrency`, r.concurrency, 4, 1, 64),
  };
  if (refresh.interval !== 0 && refresh.interval < 60_000) {
    throw new ConfigError(`${P}.refresh.interval`, 'must be 0 (never) or at least 60000 ms', r.interval);
  }

  const g = options.groups;
  if (!isObject(g) || Object.keys(g).length === 0) throw new ConfigError(`${P}.groups`, 'must be an object with at least one group', g);
  const groupNames = Object.keys(g);
  if (groupNames.length > MAX_GROUPS) throw new ConfigError(`${P}.groups`, `at most ${MAX_GROUPS} groups`, groupNames.length);
  const lists: ResolvedList[] = [];
  groupNames.forEach((name, groupIndex) => {
    const gp = `${P}.groups.${name}`;
    if (!GROUP_NAME.test(name)) throw new ConfigError(gp, 'group names use letters, digits, _ . - (1–64 characters)', name);
    const group = g[name];
    if (!isObject(group)) throw new ConfigError(gp, 'must be an object with block and/or allow lists', group);
    unknownKeys(gp, group, ['block', 'allow']);
    for (const kind of ['block', 'allow'] as const) {
      const arr = group[kind];
      if (arr === undefined) continue;
      if (!Array.isArray(arr)) throw new ConfigError(`${gp}.${kind}`, 'must be an array of lists', arr);
      arr.forEach((item, i) => {
        const lp = `${gp}.${kind}[${i}]`;
        lists.push(resolveList(lp, item, lists.length, name, groupIndex, kind === 'allow', refresh.maxEntries));
      });
    }
  });
  if (lists.length > MAX_SOURCES) throw new ConfigError(`${P}.groups`, `at most ${MAX_SOURCES} lists in total`, lists.length);
  // The same path/URL in several groups: default names get the group as a prefix.
  const seen = new Map<string, number>();
  for (const l of lists) seen.set(l.name, (seen.get(l.name) ?? 0) + 1);
  lists.forEach((l, i) => {
    if (!l.explicitName && seen.get(l.name)! > 1) lists[i] = { ...l, name: `${l.group}.${l.allow ? 'allow' : 'block'}:${l.name}` };
  });
  const names = new Set<string>();
  for (const l of lists) {
    if (names.has(l.name)) throw new ConfigError(`${P}.groups.${l.group}`, `list name '${l.name}' is used twice: give one a distinct name`);
    names.add(l.name);
  }

  const maskOf = (path: string, v: unknown): number => {
    if (!Array.isArray(v)) throw new ConfigError(path, 'must be an array of group names', v);
    let m = 0;
    v.forEach((gname, i) => {
      const idx = groupNames.indexOf(gname as string);
      if (typeof gname !== 'string' || idx < 0) throw new ConfigError(`${path}[${i}]`, `unknown group (groups: ${groupNames.join(', ')})`, gname);
      m |= 1 << idx;
    });
    return m >>> 0;
  };
  let clients: ResolvedOptions['clients'];
  if (options.clients === undefined) {
    clients = { rules: [], defaultMask: groupNames.length === 32 ? 0xffffffff : ((1 << groupNames.length) - 1) >>> 0 };
  } else {
    const c = options.clients;
    if (!isObject(c)) throw new ConfigError(`${P}.clients`, 'must be an object of CIDR → group names', c);
    const rules: { cidr: string; mask: number }[] = [];
    let defaultMask = 0;
    for (const [key, v] of Object.entries(c)) {
      const cp = `${P}.clients.${key}`;
      if (key === 'default') {
        defaultMask = maskOf(cp, v);
        continue;
      }
      const cidr = key.includes('/') ? key : `${key}/${isIP(key) === 6 ? 128 : 32}`;
      if (parseCidr(cidr) === null) throw new ConfigError(`${P}.clients`, `'${key}' is not an IP address, a CIDR or 'default'`, key);
      rules.push({ cidr, mask: maskOf(cp, v) });
    }
    clients = { rules, defaultMask };
  }

  const resp = options.response ?? {};
  if (!isObject(resp)) throw new ConfigError(`${P}.response`, 'must be an object', resp);
  unknownKeys(`${P}.response`, resp, ['mode', 'ttl', 'ipv4', 'ipv6', 'ede']);
  const mode = (resp.mode ?? 'nxdomain') as ResponseMode;
  if (!MODES.includes(mode)) throw new ConfigError(`${P}.response.mode`, `must be one of ${MODES.join(', ')}`, resp.mode);
  const addrs = (path: string, v: unknown, family: 4 | 6): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.length > 16) throw new ConfigError(path, 'must be an array of at most 16 addresses', v);
    return v.map((a, i) => {
      if (typeof a !== 'string' || isIP(a) !== family) throw new ConfigError(`${path}[${i}]`, `must be an IPv${family} address`, a);
      return a;
    });
  };
  const ipv4 = addrs(`${P}.response.ipv4`, resp.ipv4, 4);
  const ipv6 = addrs(`${P}.response.ipv6`, resp.ipv6, 6);
  if (mode === 'custom' && ipv4.length === 0 && ipv6.length === 0) {
    throw new ConfigError(`${P}.response.ipv4`, "mode 'custom' needs at least one address in ipv4 or ipv6");
  }
  const response = {
    mode,
    ttl: int(`${P}.response.ttl`, resp.ttl, 10, 0, 86_400 * 7),
    ipv4,
    ipv6,
    ede: bool(`${P}.response.ede`, resp.ede, true),
  };

  const cacheDir = options.cacheDir;
  if (cacheDir !== undefined && (typeof cacheDir !== 'string' || cacheDir.length === 0)) {
    throw new ConfigError(`${P}.cacheDir`, 'must be a directory path', cacheDir);
  }
  const build = options.build ?? 'worker';
  if (build !== 'worker' && build !== 'inline') throw new ConfigError(`${P}.build`, "must be 'worker' or 'inline'", build);
  const rx = options.regex ?? {};
  if (!isObject(rx)) throw new ConfigError(`${P}.regex`, 'must be an object', rx);
  unknownKeys(`${P}.regex`, rx, ['maxLength', 'maxUnbounded']);
  return {
    groups: groupNames,
    lists,
    clients,
    response,
    cnameInspection: bool(`${P}.cnameInspection`, options.cnameInspection, true),
    enabled: bool(`${P}.enabled`, options.enabled, true),
    refresh,
    cacheDir: cacheDir ?? null,
    build,
    regex: {
      maxLength: int(`${P}.regex.maxLength`, rx.maxLength, DEFAULT_REGEX_LIMITS.maxLength, 1, 4096),
      maxUnbounded: int(`${P}.regex.maxUnbounded`, rx.maxUnbounded, DEFAULT_REGEX_LIMITS.maxUnbounded, 0, 8),
    },
  };
}

function resolveList(
  path: string,
  item: unknown,
  id: number,
  group: string,
  groupIndex: number,
  allow: boolean,
  defaultMaxEntries: number,
): ResolvedList {
  const o: Record<string, unknown> = typeof item === 'string' ? { source: item } : isObject(item) ? item : {};
  if (typeof item !== 'string' && !isObject(item)) throw new ConfigError(path, 'must be a path, an http(s) URL or an object { source | inline, … }', item);
  unknownKeys(path, o, ['source', 'inline', 'name', 'exact', 'registrable', 'maxEntries']);
  let kind: ResolvedList['kind'];
  let location: string;
  if (o.inline !== undefined) {
    if (o.source !== undefined) throw new ConfigError(path, 'give either source or inline, not both');
    if (typeof o.inline !== 'string') throw new ConfigError(`${path}.inline`, 'must be a string', o.inline);
    kind = 'inline';
    location = o.inline;
  } else {
    const s = o.source;
    if (typeof s !== 'string' || s.trim().length === 0) throw new ConfigError(typeof item === 'string' ? path : `${path}.source`, 'must be a path or http(s) URL', s);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        throw new ConfigError(typeof item === 'string' ? path : `${path}.source`, 'must be a path or http(s) URL', s);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new ConfigError(typeof item === 'string' ? path : `${path}.source`, 'must be a path or http(s) URL', s);
      }
      kind = 'url';
      location = u.href;
    } else {
      kind = 'file';
      location = s;
    }
  }
  const kindName = allow ? 'allow' : 'block';
  const name = o.name ?? (kind === 'inline' ? `${group}.${kindName}[${path.slice(path.lastIndexOf('[') + 1, -1)}]` : location);
  if (typeof name !== 'string' || name.length === 0 || name.length > 512) throw new ConfigError(`${path}.name`, 'must be a non-empty string', o.name);
  return {
    id,
    name,
    group,
    groupIndex,
    allow,
    kind,
    location,
    exact: bool(`${path}.exact`, o.exact, false),
    registrable: bool(`${path}.registrable`, o.registrable, false),
    maxEntries: int(`${path}.maxEntries`, o.maxEntries, defaultMaxEntries, 1, 50_000_000),
    explicitName: o.name !== undefined,
  };
}
