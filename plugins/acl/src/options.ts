/**
 * Options of the acl plugin: one TypeBox schema, and the rules compiled.
 */
import { ConfigError, options, type Static, Type } from '@heimdall/core';
import { type Cidr, parseCidr } from '@heimdall/core/wire';

const CIDR = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^([0-9A-Fa-f:.]+(/[0-9]{1,3})?|\\*)$',
  errorMessage: 'must be an IP address, a CIDR prefix (192.0.2.0/24, 2001:db8::/32) or *',
});
const SUFFIX = Type.String({
  maxLength: 254,
  pattern: '^(\\.|\\.?[^.\\s]{1,63}(\\.[^.\\s]{1,63})*\\.?)$',
  errorMessage: 'must be a domain name (or . for every name)',
});
const transport = Type.Union([Type.Literal('udp'), Type.Literal('tcp'), Type.Literal('tls'), Type.Literal('https'), Type.Literal('internal')]);

const rule = Type.Object(
  {
    action: Type.Union([Type.Literal('allow'), Type.Literal('refuse'), Type.Literal('drop')], {
      description: "'allow' passes the query on, 'refuse' answers REFUSED with extended error 18 (Prohibited), 'drop' sends nothing.",
    }),
    from: Type.Optional(
      Type.Array(CIDR, { minItems: 1, maxItems: 10_000, description: 'Client addresses or CIDR prefixes (`*`: every client). Absent: every client.' }),
    ),
    transports: Type.Optional(
      Type.Array(transport, { minItems: 1, uniqueItems: true, description: 'Only queries over these transports. Absent: every transport.' }),
    ),
    names: Type.Optional(
      Type.Array(SUFFIX, {
        minItems: 1,
        maxItems: 10_000,
        description: 'Only these names and the names below them (`example.com` matches `www.example.com`). Absent: every name.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const aclOptionsSchema = options({
  rules: Type.Array(rule, {
    maxItems: 10_000,
    default: [],
    description: 'Rules in order; the first that matches decides. A query no rule matches is allowed.',
  }),
  preset: Type.Union([Type.Literal('none'), Type.Literal('localOnly')], {
    default: 'none',
    description:
      "'localOnly' adds two rules after `rules`: allow loopback and private networks (RFC 1918, RFC 6598 100.64/10, link-local, ULA fc00::/7), refuse everyone else. The app uses it when no acl is configured.",
  }),
  announce: Type.Boolean({
    default: true,
    description:
      "With the 'localOnly' preset, log once at start that the resolver is not open. The app turns it off in all cluster workers but the first, so `--workers N` logs it once.",
  }),
});

/** Options of the acl plugin, defaults filled in. */
export type AclOptions = Static<typeof aclOptionsSchema>;
/** One rule of {@link AclOptions}. */
export type AclRule = AclOptions['rules'][number];

/** Loopback and private networks: what `localOnly` allows. */
export const LOCAL_NETWORKS: readonly string[] = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
];

/** Actions as small numbers (the middleware's switch). */
export const ALLOW = 0;
export const REFUSE = 1;
export const DROP = 2;
export const ACTIONS = ['allow', 'refuse', 'drop'] as const;

/** A rule compiled. */
export interface CompiledRule {
  readonly action: number;
  /** Null: every client. */
  readonly from: readonly Cidr[] | null;
  /** Null: every transport. */
  readonly transports: ReadonlySet<string> | null;
  /** Lowercase names without the trailing dot; null: every name. */
  readonly names: readonly string[] | null;
  /** Where it came from, for logs: `rules[2]` or `localOnly`. */
  readonly origin: string;
}

function cidr(text: string, path: string): Cidr[] {
  if (text === '*') return [parseCidr('0.0.0.0/0')!, parseCidr('::/0')!];
  const c = parseCidr(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
  if (c === null) throw new ConfigError(path, 'must be an IP address, a CIDR prefix (192.0.2.0/24, 2001:db8::/32) or *', text);
  return [c];
}

const bareName = (n: string): string => {
  const lower = n.toLowerCase();
  if (lower === '.') return '';
  return lower.endsWith('.') ? lower.slice(0, -1) : lower.startsWith('.') ? lower.slice(1) : lower;
};

/** The rules in order, the preset's appended. `path` is where the options live in a config. */
export function compileAcl(o: AclOptions, path: string): CompiledRule[] {
  const out: CompiledRule[] = o.rules.map((r, i) => ({
    action: ACTIONS.indexOf(r.action),
    from: r.from === undefined || r.from.includes('*') ? null : r.from.flatMap((c, j) => cidr(c, `${path}.rules[${i}].from[${j}]`)),
    transports: r.transports === undefined ? null : new Set(r.transports),
    names: r.names === undefined ? null : r.names.map(bareName),
    origin: `rules[${i}]`,
  }));
  if (o.preset === 'localOnly') {
    out.push({ action: ALLOW, from: LOCAL_NETWORKS.flatMap((c) => cidr(c, 'localOnly')), transports: null, names: null, origin: 'localOnly' });
    out.push({ action: REFUSE, from: null, transports: null, names: null, origin: 'localOnly' });
  }
  return out;
}
