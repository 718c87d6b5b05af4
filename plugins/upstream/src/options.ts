/**
 * Options of the `upstream` plugin: one TypeBox schema (names, defaults,
 * bounds, descriptions) checked by core's `parseOptions`, and a pure
 * derivation of the values the client works with (parsed URLs, rcode sets,
 * the client-subnet policy), which throws `ConfigError` with the exact field
 * path for what a schema cannot say.
 */
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { ConfigError, type OptionsInput, options, Rcode, type Static, Type } from '@heimdall/core';
import { parseCidr } from '@heimdall/core/wire';
import type { ClientSubnetPolicy, SubnetAddress } from './edns.js';
import { parseUpstreamUrl, UPSTREAM_URL_PATTERN, type UpstreamSpec } from './url.js';

/** How a group picks the order in which its upstreams are tried (see the README's "Strategies"). */
export type Strategy = 'sequential' | 'round-robin' | 'random' | 'fastest' | 'parallel';

const STRATEGY = Type.Union(
  [Type.Literal('sequential'), Type.Literal('round-robin'), Type.Literal('random'), Type.Literal('fastest'), Type.Literal('parallel')],
  { description: 'sequential (failover in order), round-robin, random, fastest (by RTT average) or parallel (two at once).' },
);

const SERVER = Type.String({
  pattern: UPSTREAM_URL_PATTERN,
  errorMessage:
    'must be an upstream address: IP, IP:port, [IPv6]:port, udp://IP, tcp://IP, tls://host[:port][#tls-name] or https://host[:port]/path[#tls-name] (host names only with tls:// and https://)',
  description: 'Upstream URL (see the README\'s "Upstream URLs").',
});
const SERVERS = Type.Array(SERVER, { maxItems: 64 });

const DOMAIN_PATTERN = '^(\\.|(?=[^ ]{1,254}$)[A-Za-z0-9_*]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\\.?)$';
const DOMAIN = Type.String({ pattern: DOMAIN_PATTERN, errorMessage: 'must be a domain name such as corp.example (or "." for the root)' });

const RCODE = Type.Union(
  ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'].map((n) => Type.Literal(n)),
  { description: 'A header rcode name.' },
);

const GROUP = options({
  servers: Type.Union([SERVER, SERVERS], { description: 'Upstream URLs of this domain.' }),
  strategy: Type.Optional(STRATEGY),
});

/** A nested options object, filled from its fields' defaults when absent. */
function section<P extends Parameters<typeof options>[0]>(properties: P, description: string) {
  const meta = { description, default: {} };
  return options(properties, meta);
}

const ms = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ minimum: min, maximum: max, default: def, description: `${description} (ms).` });

/** The schema of `upstream(options)`: every field, its default and its bounds. */
export const upstreamOptionsSchema = options(
  {
    servers: Type.Array(SERVER, {
      maxItems: 64,
      default: [],
      description: 'Default group: upstream URLs for names no `domains` entry covers. Required unless `domains` is given. At most 64.',
    }),
    strategy: Type.Union(STRATEGY.anyOf, { default: 'sequential', description: STRATEGY.description }),
    zones: Type.Array(DOMAIN, {
      maxItems: 1024,
      default: [],
      description:
        'Names this instance forwards: those at or below one of these suffixes (`lan` covers `nas.lan`). Other names go to the next middleware, so several instances can split the name space. Empty: every name.',
    }),
    domains: Type.Record(Type.String(), Type.Union([SERVER, SERVERS, GROUP]), {
      default: {},
      description:
        "Conditional forwarding: `{ 'corp.example': ['10.0.0.53'] }` or `{ 'corp.example': { servers, strategy } }`. Longest suffix wins; `'.'` replaces the default group. With no `servers`, other names go to the next middleware.",
    }),
    timeout: ms(2000, 10, 60_000, 'Per-attempt timeout: after it the next attempt starts; the slow one may still answer within the budget'),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 16,
      default: 3,
      description: "Attempts per query, cycling through the group's upstreams in strategy order.",
    }),
    budget: ms(5000, 10, 120_000, "Total time for one query, further bounded by the query's deadline minus `deadlineMargin`"),
    deadlineMargin: ms(
      100,
      0,
      10_000,
      "Time kept before core's query deadline: the plugin gives up this early so that its own SERVFAIL (with the extended error saying why) reaches the client, not core's bare one",
    ),
    retryRcodes: Type.Array(RCODE, {
      default: ['SERVFAIL', 'REFUSED'],
      description:
        'Answers with these rcodes make the next upstream be tried (the upstream is not marked down for it); if nothing better comes, the last of them is returned.',
    }),
    maxInFlight: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      // Each query in flight holds ~7 KB live (context, attempt, promises) and,
      // since it lives for seconds when upstreams are down, promotes it all to the
      // old generation: 2048 keeps an outage's RSS under 2× idle (README, Outage).
      default: 2048,
      description: 'Queries this instance forwards at once; past it a query is answered SERVFAIL at once (extended error 0, "upstream capacity exceeded").',
    }),
    maxInFlightPerUpstream: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      // unbound's num-queries-per-thread is 1024 too (dnsmasq's dns-forward-max: 150).
      default: 1024,
      description:
        'Attempts outstanding to one upstream (slow ones included); a saturated upstream is skipped, and a query no upstream can take is answered SERVFAIL at once.',
    }),
    health: section(
      {
        maxFailures: Type.Integer({
          minimum: 0,
          maximum: 1000,
          default: 3,
          description:
            'Consecutive failed attempts (timeouts, network/TLS/HTTP errors, malformed replies) that mark an upstream down. 0 disables health tracking.',
        }),
        backoff: ms(1000, 10, 3_600_000, 'First down period; doubles after each failed probe'),
        maxBackoff: ms(60_000, 10, 86_400_000, 'Longest down period (at least `backoff`)'),
        probe: Type.Boolean({
          default: true,
          description: 'Probe a down upstream with `. NS` when its period ends; false: let the next real query through instead (half-open).',
        }),
        logInterval: ms(
          10_000,
          0,
          3_600_000,
          'At most one health log line per upstream per interval; changes in between are summarised in the next line. 0: log every change',
        ),
      },
      'Passive health tracking (see the README\'s "Health").',
    ),
    clientSubnet: Type.Union(
      [
        Type.Literal('strip'),
        Type.Literal('forward'),
        options({
          mode: Type.Literal('set'),
          address: Type.Optional(Type.String({ pattern: '^[0-9A-Fa-f:.]+/[0-9]{1,3}$', errorMessage: 'must be an address/prefix such as 192.0.2.0/24' })),
          ipv4Prefix: Type.Integer({ minimum: 0, maximum: 32, default: 24 }),
          ipv6Prefix: Type.Integer({ minimum: 0, maximum: 128, default: 56 }),
        }),
      ],
      {
        default: 'strip',
        description:
          "RFC 7871 policy: 'strip' (never send ECS), 'forward' (pass the client's), or { mode: 'set', ipv4Prefix, ipv6Prefix, address? } (derive from the client address, or a fixed subnet).",
      },
    ),
    ednsPayloadSize: Type.Integer({ minimum: 512, maximum: 4096, default: 1232, description: 'UDP payload size advertised upstream.' }),
    udp: section(
      {
        sockets: Type.Integer({ minimum: 1, maximum: 64, default: 4, description: 'UDP sockets per upstream, each on its own kernel-random source port.' }),
        queriesPerSocket: Type.Integer({
          minimum: 1,
          maximum: 16_384,
          default: 64,
          description: 'Queries per socket before it is retired and a fresh port bound.',
        }),
      },
      'UDP source-port pool.',
    ),
    tcp: section(
      {
        maxConnections: Type.Integer({ minimum: 1, maximum: 64, default: 2, description: 'TCP/DoT connections per upstream.' }),
        maxInFlight: Type.Integer({ minimum: 1, maximum: 4096, default: 128, description: 'Pipelined queries per connection.' }),
        maxQueue: Type.Integer({
          minimum: 0,
          maximum: 65_536,
          default: 1024,
          description: 'Queries waiting for a connection slot (or a DoH stream); beyond it the attempt fails.',
        }),
        idleTimeout: ms(10_000, 100, 600_000, 'Idle TCP/DoT connection lifetime'),
        connectTimeout: ms(2000, 10, 60_000, 'TCP connect + TLS handshake timeout (also for DoH sessions)'),
      },
      'TCP and DoT connections.',
    ),
    tls: section(
      {
        ca: Type.Optional(Type.String({ minLength: 1, description: "Extra trusted CA for DoT/DoH: PEM text or a path to a PEM file. Default: Node's roots." })),
        rejectUnauthorized: Type.Boolean({ default: true, description: 'Verify certificates (turn off only in tests).' }),
      },
      'TLS for DoT and DoH.',
    ),
    https: section(
      {
        method: Type.Union([Type.Literal('POST'), Type.Literal('GET')], { default: 'POST', description: "DoH method: 'POST' or 'GET' (`?dns=` base64url)." }),
        idleTimeout: ms(30_000, 100, 600_000, 'Idle HTTP/2 session lifetime'),
        maxStreams: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 100,
          description: "DoH streams in flight per upstream, further capped by the server's SETTINGS_MAX_CONCURRENT_STREAMS.",
        }),
      },
      'DNS over HTTPS.',
    ),
  },
  { description: 'Forwarding to upstream resolvers over UDP, TCP, DoT and DoH.' },
);

/** Options of the `upstream` plugin with every default filled in (what `PLUGIN_OPTIONS` holds). */
export type UpstreamOptions = Static<typeof upstreamOptionsSchema>;

/** What `upstream(options)` takes: every field optional (defaults fill them in). */
export type UpstreamOptionsInput = OptionsInput<UpstreamOptions>;

/** One forwarding group, derived from `servers` or a `domains` entry. */
export interface GroupSettings {
  /** `''` for the default group, else the normalized domain (`''` also for `'.'`). */
  readonly name: string;
  readonly servers: readonly UpstreamSpec[];
  readonly strategy: Strategy;
}

/** What the client works with: the options plus parsed URLs, rcode sets and policies. */
export interface UpstreamSettings {
  readonly options: UpstreamOptions;
  readonly groups: readonly GroupSettings[];
  /** Normalized `zones` (lowercase, no trailing dot; `''` is the root). */
  readonly zones: ReadonlySet<string>;
  readonly retryRcodes: ReadonlySet<number>;
  readonly maxBackoff: number;
  readonly clientSubnet: ClientSubnetPolicy;
  /** PEM text of `tls.ca`, read from the file when a path was given. */
  readonly ca: string | undefined;
}

/** Lowercased, without the trailing dot; `""` for the root. */
export function normalizeDomain(d: string): string {
  return d.trim().toLowerCase().replace(/\.$/, '');
}

function specs(path: string, value: string | readonly string[]): UpstreamSpec[] {
  const list = typeof value === 'string' ? [value] : value;
  return list.map((s, i) => {
    try {
      return parseUpstreamUrl(s);
    } catch (e) {
      throw new ConfigError(typeof value === 'string' ? path : `${path}[${i}]`, (e as Error).message, s);
    }
  });
}

const DOMAIN_RE = new RegExp(DOMAIN_PATTERN);

/**
 * Derives the client's settings from validated options. Throws `ConfigError`
 * (path prefixed with `path`, the instance name) for what the schema cannot
 * say: an IP that is not one, a port out of range, a domain listed twice, no
 * upstream at all, an unreadable CA file.
 */
export function deriveSettings(o: UpstreamOptions, path: string): UpstreamSettings {
  const groups: GroupSettings[] = [];
  const defaultServers = specs(`${path}.servers`, o.servers);
  if (defaultServers.length > 0) groups.push({ name: '', servers: defaultServers, strategy: o.strategy });
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(o.domains)) {
    const at = `${path}.domains[${JSON.stringify(key)}]`;
    if (!DOMAIN_RE.test(key.trim())) throw new ConfigError(at, `"${key}" is not a domain name`);
    const name = normalizeDomain(key);
    if (seen.has(name) || (name === '' && defaultServers.length > 0)) throw new ConfigError(at, `domain "${name || '.'}" is listed twice`);
    seen.add(name);
    const isGroup = typeof value === 'object' && !Array.isArray(value);
    const servers = isGroup ? specs(`${at}.servers`, (value as { servers: string | string[] }).servers) : specs(at, value as string | string[]);
    if (servers.length === 0) throw new ConfigError(at, 'needs at least one upstream');
    groups.push({ name, servers, strategy: (isGroup ? (value as { strategy?: Strategy }).strategy : undefined) ?? o.strategy });
  }
  if (groups.length === 0) throw new ConfigError(`${path}.servers`, 'needs at least one upstream (or a domains entry)');

  const retryRcodes = new Set(o.retryRcodes.map((n) => Rcode[n as keyof typeof Rcode] as number));

  let clientSubnet: ClientSubnetPolicy;
  const cs = o.clientSubnet;
  if (cs === 'strip') clientSubnet = { mode: 'strip' };
  else if (cs === 'forward') clientSubnet = { mode: 'forward' };
  else {
    let address: SubnetAddress | undefined;
    if (cs.address !== undefined) {
      const c = parseCidr(cs.address);
      if (c === null)
        throw new ConfigError(
          `${path}.clientSubnet.address`,
          `"${cs.address}" is not an address/prefix such as 192.0.2.0/24 (prefix at most 32 for IPv4, 128 for IPv6)`,
          cs.address,
        );
      address = { family: c.family === 4 ? 1 : 2, prefix: c.prefix, bytes: Buffer.from(c.bytes.subarray(0, Math.ceil(c.prefix / 8))) };
    }
    clientSubnet = { mode: 'set', ipv4Prefix: cs.ipv4Prefix, ipv6Prefix: cs.ipv6Prefix, ...(address ? { address } : {}) };
  }

  let ca: string | undefined;
  const caOption = o.tls.ca;
  if (caOption !== undefined) {
    if (caOption.includes('-----BEGIN')) ca = caOption;
    else {
      try {
        ca = readFileSync(caOption, 'utf8');
      } catch (e) {
        throw new ConfigError(`${path}.tls.ca`, `cannot read ${caOption}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, caOption);
      }
      if (!ca.includes('-----BEGIN')) throw new ConfigError(`${path}.tls.ca`, `${caOption} holds no PEM certificate`, caOption);
    }
  }

  return {
    options: o,
    groups,
    zones: new Set(o.zones.map((z) => normalizeDomain(z))),
    retryRcodes,
    maxBackoff: Math.max(o.health.maxBackoff, o.health.backoff),
    clientSubnet,
    ca,
  };
}
