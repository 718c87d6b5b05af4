/**
 * Options of the ratelimit plugin: one TypeBox schema (defaults, bounds,
 * descriptions), and the derived values the service works with.
 */
import { ConfigError, options, type Static, Type } from '@heimdall/core';
import { cidrSchema, transportSchema } from '@heimdall/core/transport';
import { type Cidr, parseCidr } from '@heimdall/core/wire';

const CIDR = cidrSchema;

const transport = transportSchema;

export const ratelimitOptionsSchema = options({
  rate: Type.Number({
    exclusiveMinimum: 0,
    maximum: 1_000_000,
    default: 100,
    description: 'Queries per second allowed per client prefix (the bucket refill rate).',
  }),
  burst: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: 'Bucket size: queries a quiet prefix may send at once. Default: `rate` (one second of queries), at least 1.',
    }),
  ),
  ipv4Prefix: Type.Integer({
    minimum: 8,
    maximum: 32,
    default: 24,
    description: 'IPv4 clients are counted per prefix of this length (/24: a whole LAN or a NAT shares one bucket).',
  }),
  ipv6Prefix: Type.Integer({
    minimum: 16,
    maximum: 128,
    default: 56,
    description: 'IPv6 clients are counted per prefix of this length (/56: a typical customer allocation).',
  }),
  allow: Type.Array(CIDR, {
    maxItems: 1024,
    default: [],
    description: 'Clients never limited (addresses or CIDR prefixes), e.g. your own networks or monitoring.',
  }),
  transports: Type.Array(transport, {
    minItems: 1,
    uniqueItems: true,
    default: ['udp'],
    description:
      "Transports that are limited. UDP only by default: TCP and encrypted clients prove their address, and 'truncate' sends excess UDP clients there.",
  }),
  action: Type.Union([Type.Literal('truncate'), Type.Literal('drop')], {
    default: 'truncate',
    description:
      "What excess queries get: 'truncate' an empty answer with TC=1 (real clients retry over TCP, spoofed floods get nothing bigger than their query), 'drop' no answer. TC=1 means nothing on a stream: over TCP, DoT and DoH (when in `transports`) excess queries are always dropped (a DoH client gets 403).",
  }),
  maxTracked: Type.Integer({
    minimum: 1000,
    maximum: 10_000_000,
    default: 100_000,
    description: 'Most prefixes tracked at once (about 100 bytes each). At the bound, an idle (refilled) or else the least recently seen prefix is forgotten.',
  }),
});

/** Options of the ratelimit plugin, defaults filled in. */
export type RatelimitOptions = Static<typeof ratelimitOptionsSchema>;

/** What the service works with: the options compiled. */
export interface RatelimitConfig {
  /** Bucket refill per millisecond, in milli-queries (= queries per second). */
  readonly perMs: number;
  /** Bucket size in milli-queries. */
  readonly capacity: number;
  readonly rate: number;
  readonly burst: number;
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
  readonly allow: readonly Cidr[];
  readonly transports: ReadonlySet<string>;
  readonly truncate: boolean;
  readonly maxTracked: number;
}

/** A config-field CIDR (`a.b.c.d` means /32, `x::y` /128). Throws `ConfigError` at `path`. */
export function cidrOption(text: string, path: string): Cidr {
  const cidr = parseCidr(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
  if (cidr === null) throw new ConfigError(path, 'must be an IP address or a CIDR prefix (192.0.2.0/24, 2001:db8::/32)', text);
  return cidr;
}

/** Derives the service's values from validated options; `path` is where they live in a config. */
export function compileRatelimit(o: RatelimitOptions, path: string): RatelimitConfig {
  const burst = o.burst ?? Math.max(1, Math.ceil(o.rate));
  return {
    perMs: o.rate,
    capacity: burst * 1000,
    rate: o.rate,
    burst,
    ipv4Prefix: o.ipv4Prefix,
    ipv6Prefix: o.ipv6Prefix,
    allow: o.allow.map((c, i) => cidrOption(c, `${path}.allow[${i}]`)),
    transports: new Set(o.transports),
    truncate: o.action === 'truncate',
    maxTracked: o.maxTracked,
  };
}
