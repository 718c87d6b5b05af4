import { readFileSync } from 'node:fs';
import { ConfigError, rcodeFromString } from '@heimdall/core';
import { type ClientSubnetPolicy, parseSubnet, type SubnetAddress } from './edns.js';
import { STRATEGIES, type Strategy } from './group.js';
import { parseUpstreamUrl, type UpstreamSpec } from './url.js';

/** A forwarding group: its servers and how to choose among them. */
export interface GroupConfig {
  /** Upstream URLs (see the README's "Upstream URLs"). */
  servers: string[];
  /** Default: the plugin's `strategy`. */
  strategy?: Strategy;
}

/** Options of the `upstream` plugin. Every field is optional except that there must be somewhere to forward to. */
export interface UpstreamOptions {
  /** Default group: upstream URLs for every name not matched by `domains`. */
  servers?: string[];
  /** Strategy of the default group (and of domain groups without their own). Default `'sequential'`. */
  strategy?: Strategy;
  /**
   * Conditional forwarding: domain → servers (or a group config). The longest
   * matching suffix wins (`corp.example` covers `a.corp.example`). Names no
   * group covers, when `servers` is empty, go to the next middleware.
   */
  domains?: Record<string, string | string[] | GroupConfig>;
  /** Per-attempt timeout, ms. Default 2000 (10–60 000). */
  timeout?: number;
  /** Attempts per query, cycling through the group's upstreams. Default 3 (1–16). */
  maxAttempts?: number;
  /** Total time for one query, ms, further bounded by the query's deadline. Default 5000 (10–120 000). */
  budget?: number;
  /** Rcodes after which the next upstream is tried. Default `['SERVFAIL', 'REFUSED']`. */
  retryRcodes?: string[];
  /** Health tracking; see the README's "Health". */
  health?: {
    /** Consecutive failures that mark an upstream down. Default 3; 0 disables. */
    maxFailures?: number;
    /** First down period, ms. Default 1000. */
    backoff?: number;
    /** Longest down period, ms. Default 60 000. */
    maxBackoff?: number;
    /** Probe a down upstream in the background (`. NS`). Default true. */
    probe?: boolean;
    /** Rcodes (among `retryRcodes`) that count as health failures. Default `['REFUSED']`. */
    failureRcodes?: string[];
  };
  /** Client subnet (RFC 7871) policy. Default `'strip'`. */
  clientSubnet?: 'strip' | 'forward' | { mode: 'set'; address?: string; ipv4Prefix?: number; ipv6Prefix?: number };
  /** EDNS UDP payload size advertised upstream. Default 1232 (512–4096). */
  ednsPayloadSize?: number;
  /** UDP source-port pool. */
  udp?: {
    /** Sockets per upstream, each on its own random port. Default 4 (1–64). */
    sockets?: number;
    /** Queries per socket before it is replaced by a freshly bound one. Default 64 (1–16 384). */
    queriesPerSocket?: number;
  };
  /** TCP and DoT connections. */
  tcp?: {
    /** Connections per upstream. Default 2 (1–64). */
    maxConnections?: number;
    /** Pipelined queries per connection. Default 128 (1–4096). */
    maxInFlight?: number;
    /** Queries waiting for a connection slot. Default 1024 (0–65 536). */
    maxQueue?: number;
    /** Idle connection lifetime, ms. Default 10 000 (100–600 000). */
    idleTimeout?: number;
    /** Connect (+ TLS handshake) timeout, ms. Default 2000 (10–60 000). */
    connectTimeout?: number;
  };
  /** TLS for DoT and DoH. */
  tls?: {
    /** Extra trusted CA: PEM text or a path to a PEM file. Default: Node's bundled roots. */
    ca?: string;
    /** Verify certificates. Default true (set false only in tests). */
    rejectUnauthorized?: boolean;
  };
  /** DNS over HTTPS. */
  https?: {
    /** `POST` (default) or `GET`. */
    method?: 'POST' | 'GET';
    /** Idle HTTP/2 session lifetime, ms. Default 30 000 (100–600 000). */
    idleTimeout?: number;
    /** Streams in flight per upstream, further capped by the server's SETTINGS. Default 100 (1–1000). */
    maxStreams?: number;
  };
}

/** Validated options with every default filled in. */
export interface ResolvedOptions {
  groups: { name: string; servers: UpstreamSpec[]; strategy: Strategy }[];
  timeout: number;
  maxAttempts: number;
  budget: number;
  retryRcodes: Set<number>;
  health: { maxFailures: number; backoff: number; maxBackoff: number; probe: boolean; failureRcodes: Set<number> };
  clientSubnet: ClientSubnetPolicy;
  ednsPayloadSize: number;
  udp: { sockets: number; queriesPerSocket: number };
  tcp: { maxConnections: number; maxInFlight: number; maxQueue: number; idleTimeout: number; connectTimeout: number };
  tls: { ca: string | undefined; rejectUnauthorized: boolean };
  https: { method: 'POST' | 'GET'; idleTimeout: number; maxStreams: number };
}

const P = 'upstream';
const DOMAIN = /^(?=.{1,253}$)([a-z0-9_*]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function int(path: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(path, `must be an integer from ${min} to ${max}`, v);
  return v;
}

function bool(path: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw new ConfigError(path, 'must be true or false', v);
  return v;
}

function obj(path: string, v: unknown, keys: readonly string[]): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(path, 'must be an object', v);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw new ConfigError(`${path}.${k}`, `unknown option (expected one of: ${keys.join(', ')})`);
  return v as Record<string, unknown>;
}

function rcodes(path: string, v: unknown, def: string[]): Set<number> {
  const list = v === undefined ? def : v;
  if (!Array.isArray(list)) throw new ConfigError(path, 'must be a list of rcode names such as SERVFAIL', v);
  const out = new Set<number>();
  list.forEach((name, i) => {
    let code: number | undefined;
    try {
      code = typeof name === 'string' ? rcodeFromString(name.toUpperCase()) : undefined;
    } catch {
      code = undefined;
    }
    if (code === undefined || code < 0 || code > 15) throw new ConfigError(`${path}[${i}]`, 'must be a header rcode name (NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED…)', name);
    out.add(code);
  });
  return out;
}

function strategy(path: string, v: unknown, def: Strategy): Strategy {
  if (v === undefined) return def;
  if (!STRATEGIES.includes(v as Strategy)) throw new ConfigError(path, `must be one of ${STRATEGIES.join(', ')}`, v);
  return v as Strategy;
}

function serverList(path: string, v: unknown): UpstreamSpec[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw new ConfigError(path, 'must be a list of upstream URLs', v);
  if (list.length > 64) throw new ConfigError(path, 'at most 64 upstreams per group', list.length);
  return list.map((s, i) => {
    try {
      return parseUpstreamUrl(s);
    } catch (e) {
      throw new ConfigError(typeof v === 'string' ? path : `${path}[${i}]`, (e as Error).message, s);
    }
  });
}

/** Lowercased, without the trailing dot; `""` for the root. */
export function normalizeDomain(d: string): string {
  return d.trim().toLowerCase().replace(/\.$/, '');
}

/**
 * Validates `upstream(options)` and fills in defaults.
 * @throws {ConfigError} naming the field (`upstream.servers[1]: invalid upstream "…": …`)
 */
export function resolveOptions(input: UpstreamOptions | undefined): ResolvedOptions {
  const o = obj(P, input ?? {}, [
    'servers',
    'strategy',
    'domains',
    'timeout',
    'maxAttempts',
    'budget',
    'retryRcodes',
    'health',
    'clientSubnet',
    'ednsPayloadSize',
    'udp',
    'tcp',
    'tls',
    'https',
  ]) as UpstreamOptions;
  const defStrategy = strategy(`${P}.strategy`, o.strategy, 'sequential');
  const groups: ResolvedOptions['groups'] = [];
  if (o.servers !== undefined) {
    const servers = serverList(`${P}.servers`, o.servers);
    if (servers.length > 0) groups.push({ name: '', servers, strategy: defStrategy });
  }
  const domains = obj(`${P}.domains`, o.domains, Object.keys(o.domains ?? {}));
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(domains)) {
    const path = `${P}.domains[${JSON.stringify(key)}]`;
    const name = normalizeDomain(key);
    if (name !== '' && !DOMAIN.test(name)) throw new ConfigError(path, `"${key}" is not a domain name`);
    if (seen.has(name) || (name === '' && groups.some((g) => g.name === ''))) throw new ConfigError(path, `domain "${name || '.'}" is listed twice`);
    seen.add(name);
    let servers: UpstreamSpec[];
    let strat = defStrategy;
    if (typeof value === 'string' || Array.isArray(value)) servers = serverList(path, value);
    else {
      const g = obj(path, value, ['servers', 'strategy']);
      servers = serverList(`${path}.servers`, g.servers);
      strat = strategy(`${path}.strategy`, g.strategy, defStrategy);
    }
    if (servers.length === 0) throw new ConfigError(path, 'needs at least one upstream');
    groups.push({ name, servers, strategy: strat });
  }
  if (groups.length === 0) throw new ConfigError(`${P}.servers`, 'needs at least one upstream (or a domains entry)');

  const retryRcodes = rcodes(`${P}.retryRcodes`, o.retryRcodes, ['SERVFAIL', 'REFUSED']);
  const h = obj(`${P}.health`, o.health, ['maxFailures', 'backoff', 'maxBackoff', 'probe', 'failureRcodes']);
  const backoff = int(`${P}.health.backoff`, h.backoff, 1000, 10, 3_600_000);
  const health = {
    maxFailures: int(`${P}.health.maxFailures`, h.maxFailures, 3, 0, 1000),
    backoff,
    maxBackoff: int(`${P}.health.maxBackoff`, h.maxBackoff, Math.max(60_000, backoff), backoff, 86_400_000),
    probe: bool(`${P}.health.probe`, h.probe, true),
    failureRcodes: rcodes(`${P}.health.failureRcodes`, h.failureRcodes, ['REFUSED']),
  };

  let clientSubnet: ClientSubnetPolicy;
  const cs = o.clientSubnet;
  if (cs === undefined || cs === 'strip') clientSubnet = { mode: 'strip' };
  else if (cs === 'forward') clientSubnet = { mode: 'forward' };
  else if (typeof cs === 'object' && cs !== null && (cs as { mode?: unknown }).mode === 'set') {
    const c = obj(`${P}.clientSubnet`, cs, ['mode', 'address', 'ipv4Prefix', 'ipv6Prefix']);
    let address: SubnetAddress | undefined;
    if (c.address !== undefined) {
      try {
        address = parseSubnet(String(c.address));
      } catch (e) {
        throw new ConfigError(`${P}.clientSubnet.address`, (e as Error).message, c.address);
      }
    }
    clientSubnet = {
      mode: 'set',
      ipv4Prefix: int(`${P}.clientSubnet.ipv4Prefix`, c.ipv4Prefix, 24, 0, 32),
      ipv6Prefix: int(`${P}.clientSubnet.ipv6Prefix`, c.ipv6Prefix, 56, 0, 128),
      ...(address ? { address } : {}),
    };
  } else throw new ConfigError(`${P}.clientSubnet`, "must be 'strip', 'forward' or { mode: 'set', address?, ipv4Prefix?, ipv6Prefix? }", cs);

  const u = obj(`${P}.udp`, o.udp, ['sockets', 'queriesPerSocket']);
  const t = obj(`${P}.tcp`, o.tcp, ['maxConnections', 'maxInFlight', 'maxQueue', 'idleTimeout', 'connectTimeout']);
  const tl = obj(`${P}.tls`, o.tls, ['ca', 'rejectUnauthorized']);
  const hs = obj(`${P}.https`, o.https, ['method', 'idleTimeout', 'maxStreams']);
  let ca: string | undefined;
  if (tl.ca !== undefined) {
    if (typeof tl.ca !== 'string' || tl.ca.trim() === '') throw new ConfigError(`${P}.tls.ca`, 'must be PEM text or a path to a PEM file', tl.ca);
    if (tl.ca.includes('-----BEGIN')) ca = tl.ca;
    else {
      try {
        ca = readFileSync(tl.ca, 'utf8');
      } catch (e) {
        throw new ConfigError(`${P}.tls.ca`, `cannot read ${tl.ca}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, tl.ca);
      }
      if (!ca.includes('-----BEGIN')) throw new ConfigError(`${P}.tls.ca`, `${tl.ca} holds no PEM certificate`, tl.ca);
    }
  }
  if (hs.method !== undefined && hs.method !== 'POST' && hs.method !== 'GET') throw new ConfigError(`${P}.https.method`, "must be 'POST' or 'GET'", hs.method);
  const timeout = int(`${P}.timeout`, o.timeout, 2000, 10, 60_000);
  return {
    groups,
    timeout,
    maxAttempts: int(`${P}.maxAttempts`, o.maxAttempts, 3, 1, 16),
    budget: int(`${P}.budget`, o.budget, 5000, 10, 120_000),
    retryRcodes,
    health,
    clientSubnet,
    ednsPayloadSize: int(`${P}.ednsPayloadSize`, o.ednsPayloadSize, 1232, 512, 4096),
    udp: { sockets: int(`${P}.udp.sockets`, u.sockets, 4, 1, 64), queriesPerSocket: int(`${P}.udp.queriesPerSocket`, u.queriesPerSocket, 64, 1, 16_384) },
    tcp: {
      maxConnections: int(`${P}.tcp.maxConnections`, t.maxConnections, 2, 1, 64),
      maxInFlight: int(`${P}.tcp.maxInFlight`, t.maxInFlight, 128, 1, 4096),
      maxQueue: int(`${P}.tcp.maxQueue`, t.maxQueue, 1024, 0, 65_536),
      idleTimeout: int(`${P}.tcp.idleTimeout`, t.idleTimeout, 10_000, 100, 600_000),
      connectTimeout: int(`${P}.tcp.connectTimeout`, t.connectTimeout, 2000, 10, 60_000),
    },
    tls: { ca, rejectUnauthorized: bool(`${P}.tls.rejectUnauthorized`, tl.rejectUnauthorized, true) },
    https: {
      method: (hs.method as 'POST' | 'GET' | undefined) ?? 'POST',
      idleTimeout: int(`${P}.https.idleTimeout`, hs.idleTimeout, 30_000, 100, 600_000),
      maxStreams: int(`${P}.https.maxStreams`, hs.maxStreams, 100, 1, 1000),
    },
  };
}
