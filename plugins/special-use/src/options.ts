/**
 * Options of the special-use plugin: one TypeBox schema (types, defaults,
 * bounds and the error messages all come from it).
 */
import { options, type Static, Type } from '@heimdall/core';

/** RFC 2181 §8: the largest TTL. */
const MAX_TTL = 2_147_483_647;

/**
 * A zone name: labels of 1..63 letters, digits, `-` or `_`, at most 253
 * characters, one trailing dot allowed. Matched case-insensitively.
 */
const zoneName = Type.String({
  pattern: '^(?=[^.]{1,63}(\\.[^.]{1,63})*\\.?$)(?=.{1,253}\\.?$)[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.?$',
  errorMessage: 'must be a non-root domain name: labels of 1..63 letters, digits, "-" or "_", at most 253 characters',
  description: 'A zone name (the zone and every name below it), e.g. `corp.example`.',
});

const ttl = (description: string) => Type.Integer({ minimum: 0, maximum: MAX_TTL, default: 3600, description });

/** The special-use plugin's options schema. */
export const specialUseOptionsSchema = options({
  localhost: Type.Boolean({ default: true, description: 'Answer `localhost` and `*.localhost` with 127.0.0.1 / ::1 (RFC 6761 §6.3).' }),
  invalid: Type.Boolean({ default: true, description: 'NXDOMAIN for `invalid` and below (RFC 6761 §6.4).' }),
  test: Type.Boolean({ default: true, description: 'NXDOMAIN for `test` and below (RFC 6761 §6.2).' }),
  local: Type.Boolean({ default: true, description: 'NXDOMAIN for `local` and below: multicast DNS names never go to unicast DNS (RFC 6762 §3, §22).' }),
  onion: Type.Boolean({ default: true, description: 'NXDOMAIN for `onion` and below (RFC 7686 §2).' }),
  homeArpa: Type.Boolean({ default: true, description: 'Serve `home.arpa` locally: NXDOMAIN below it (RFC 8375).' }),
  reverse: Type.Boolean({
    default: true,
    description: 'Serve the RFC 6303 reverse zones locally (10/8, 172.16/12, 192.168/16, 127/8, 169.254/16, 100.64/10, fc00::/7, fe80::/10, …).',
  }),
  appendixG: Type.Boolean({
    default: false,
    description: 'Also NXDOMAIN the private-use names of RFC 6762 Appendix G (`intranet internal private corp home lan`).',
  }),
  zones: Type.Array(zoneName, {
    default: [],
    maxItems: 100_000,
    description: "More zones answered NXDOMAIN (and everything below them), e.g. `['corp.example']`.",
  }),
  exclude: Type.Array(zoneName, {
    default: [],
    maxItems: 100_000,
    description:
      "Zones to let through although a switch covers them, e.g. `['168.192.in-addr.arpa']` when your router answers your LAN's reverse zone. Exact zone names.",
  }),
  ttl: ttl('TTL of the localhost answers and PTRs, seconds.'),
  negativeTtl: ttl('TTL and MINIMUM of the SOA sent with negative answers (RFC 2308), seconds.'),
});

/** Options of the special-use plugin, defaults filled in. */
export type SpecialUseOptions = Static<typeof specialUseOptionsSchema>;
