/**
 * Options of the rrl plugin (BIND's `rate-limit` clause, in camelCase), and
 * the values the service works with.
 */
import { ConfigError, options, type Static, Type } from '@heimdall/core';
import { cidrSchema, transportSchema } from '@heimdall/core/transport';
import { type Cidr, parseCidr } from '@heimdall/core/wire';

const CIDR = cidrSchema;
const transport = transportSchema;
const perSecond = (what: string) =>
  Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      description: `${what} per second per client prefix; 0 turns this limit off. Default: \`responsesPerSecond\`.`,
    }),
  );

export const rrlOptionsSchema = options({
  responsesPerSecond: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 5,
    description: 'Identical answers (same name and type) per second per client prefix (BIND `responses-per-second`); 0 turns this limit off.',
  }),
  nodataPerSecond: perSecond('Empty answers (NODATA) for one name'),
  nxdomainsPerSecond: perSecond('NXDOMAIN answers for one zone (the SOA owner, or the parent of the name)'),
  referralsPerSecond: perSecond('Referrals (no answer, NS records) for one delegation'),
  errorsPerSecond: perSecond('Error answers (SERVFAIL, REFUSED, FORMERR, …), all names together'),
  allPerSecond: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 0,
    description: 'All responses per second per client prefix, whatever their class (BIND `all-per-second`); 0: no such limit. Set it well above the others.',
  }),
  window: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 15,
    description: 'Seconds over which rates are averaged: a prefix over its limit stays limited until its rate over this window falls below it.',
  }),
  slip: Type.Integer({
    minimum: 0,
    maximum: 10,
    default: 2,
    description:
      'Every Nth limited response is sent as an empty TC=1 answer instead of being dropped, so real clients retry over TCP. 0: drop all; 1: truncate all.',
  }),
  ipv4Prefix: Type.Integer({
    minimum: 8,
    maximum: 32,
    default: 24,
    description: 'IPv4 clients are accounted per prefix of this length (BIND `ipv4-prefix-length`).',
  }),
  ipv6Prefix: Type.Integer({
    minimum: 16,
    maximum: 128,
    default: 56,
    description: 'IPv6 clients are accounted per prefix of this length (BIND `ipv6-prefix-length`).',
  }),
  exemptClients: Type.Array(CIDR, { maxItems: 1024, default: [], description: 'Clients never limited (addresses or CIDR prefixes).' }),
  logOnly: Type.Boolean({
    default: false,
    description: 'Count and log what would be limited, but send every response (BIND `log-only`): try limits out first.',
  }),
  transports: Type.Array(transport, {
    minItems: 1,
    uniqueItems: true,
    default: ['udp'],
    description: 'Transports whose responses are limited. UDP only by default (as BIND): TCP clients cannot spoof their address.',
  }),
  maxTableSize: Type.Integer({
    minimum: 1000,
    maximum: 10_000_000,
    default: 20_000,
    description:
      'Most accounts (prefix × response class) tracked at once (BIND `max-table-size`); at the bound an idle or else the least recently used one is forgotten.',
  }),
});

/** Options of the rrl plugin, defaults filled in. */
export type RrlOptions = Static<typeof rrlOptionsSchema>;

/** Response classes (BIND's), as small numbers. */
export const ANSWER = 0;
export const NODATA = 1;
export const NXDOMAIN = 2;
export const REFERRAL = 3;
export const ERROR = 4;
/** The per-prefix account of `allPerSecond`. */
export const ALL = 5;
export const CLASS_NAMES = ['answer', 'nodata', 'nxdomain', 'referral', 'error', 'all'] as const;

/** The options compiled. */
export interface RrlConfig {
  /** Responses per second by class (index {@link ANSWER}…{@link ALL}); 0: not limited. */
  readonly rates: readonly number[];
  readonly window: number;
  readonly slip: number;
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
  readonly exempt: readonly Cidr[];
  readonly logOnly: boolean;
  readonly transports: ReadonlySet<string>;
  readonly maxTableSize: number;
}

/** Derives the service's values; `path` is where the options live in a config. */
export function compileRrl(o: RrlOptions, path: string): RrlConfig {
  const r = o.responsesPerSecond;
  return {
    rates: [r, o.nodataPerSecond ?? r, o.nxdomainsPerSecond ?? r, o.referralsPerSecond ?? r, o.errorsPerSecond ?? r, o.allPerSecond],
    window: o.window,
    slip: o.slip,
    ipv4Prefix: o.ipv4Prefix,
    ipv6Prefix: o.ipv6Prefix,
    exempt: o.exemptClients.map((text, i) => {
      const c = parseCidr(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
      if (c === null) throw new ConfigError(`${path}.exemptClients[${i}]`, 'must be an IP address or a CIDR prefix (192.0.2.0/24, 2001:db8::/32)', text);
      return c;
    }),
    logOnly: o.logOnly,
    transports: new Set(o.transports),
    maxTableSize: o.maxTableSize,
  };
}
