/**
 * The special-use and locally-served zones, with the RFC that makes each one
 * special. Names are lowercase, without the trailing dot.
 */
import type { SpecialUseOptions } from './options.js';

/** How a zone is answered. */
export const ZoneKind = {
  /** `localhost` (RFC 6761 §6.3): A → 127.0.0.1, AAAA → ::1 for the name and every name below it. */
  Loopback: 0,
  /**
   * A name that does not exist in the global DNS (RFC 6761 `invalid`/`test`,
   * RFC 6762 `local`, RFC 7686 `onion`): NXDOMAIN for the name itself and
   * everything below it.
   */
  Nonexistent: 1,
  /**
   * A locally-served zone (RFC 6303 reverse zones, RFC 8375 `home.arpa`): the
   * apex exists (SOA for SOA queries, NODATA otherwise), everything below it
   * is NXDOMAIN, except the loopback PTR names answered with `localhost`.
   */
  LocallyServed: 2,
} as const;
/** One of {@link ZoneKind}'s values. */
export type ZoneKind = (typeof ZoneKind)[keyof typeof ZoneKind];

/** The IPv4 reverse zones of RFC 6303 §4 (and RFC 6598 shared address space, as RFC 7793 recommends). */
export function ipv4ReverseZones(): string[] {
  const zones = [
    '0.in-addr.arpa', // 0.0.0.0/8 "this network"
    '10.in-addr.arpa', // RFC 1918
    '127.in-addr.arpa', // loopback
    '254.169.in-addr.arpa', // link-local
    '168.192.in-addr.arpa', // RFC 1918
    '2.0.192.in-addr.arpa', // TEST-NET-1
    '100.51.198.in-addr.arpa', // TEST-NET-2
    '113.0.203.in-addr.arpa', // TEST-NET-3
    '255.255.255.255.in-addr.arpa', // broadcast
  ];
  for (let i = 16; i <= 31; i++) zones.push(`${i}.172.in-addr.arpa`); // RFC 1918 172.16/12
  for (let i = 64; i <= 127; i++) zones.push(`${i}.100.in-addr.arpa`); // RFC 6598 100.64/10
  return zones;
}

/** The IPv6 reverse zones of RFC 6303 §4: ::, ::1, fc00::/7 (ULA), fe80::/10 (link-local), 2001:db8::/32. */
export function ipv6ReverseZones(): string[] {
  const zeros = '0.'.repeat(31);
  return [
    `${zeros}0.ip6.arpa`, // ::
    `1.${zeros}ip6.arpa`, // ::1
    'c.f.ip6.arpa',
    'd.f.ip6.arpa',
    '8.e.f.ip6.arpa',
    '9.e.f.ip6.arpa',
    'a.e.f.ip6.arpa',
    'b.e.f.ip6.arpa',
    '8.b.d.0.1.0.0.2.ip6.arpa',
  ];
}

/** Names inside locally-served zones that have a PTR to `localhost`. */
export const LOOPBACK_PTR_NAMES: readonly string[] = ['1.0.0.127.in-addr.arpa', `1.${'0.'.repeat(31)}ip6.arpa`];

/** RFC 6762 Appendix G: names commonly used privately (not reserved; off by default). */
export const APPENDIX_G: readonly string[] = ['intranet', 'internal', 'private', 'corp', 'home', 'lan'];

/** A zone of the table: its name (lowercase, no trailing dot) and how it is answered. */
export interface Zone {
  readonly name: string;
  readonly kind: ZoneKind;
}

/** Lowercases a (schema-checked) zone name and strips one trailing dot. */
function normalizeZone(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** The zone table validated options produce, keyed by zone name. */
export function zoneTable(options: SpecialUseOptions): Map<string, Zone> {
  const table = new Map<string, Zone>();
  const add = (name: string, kind: ZoneKind): void => {
    table.set(name, { name, kind });
  };
  if (options.localhost) add('localhost', ZoneKind.Loopback);
  if (options.invalid) add('invalid', ZoneKind.Nonexistent);
  if (options.test) add('test', ZoneKind.Nonexistent);
  if (options.local) add('local', ZoneKind.Nonexistent);
  if (options.onion) add('onion', ZoneKind.Nonexistent);
  if (options.homeArpa) add('home.arpa', ZoneKind.LocallyServed);
  if (options.reverse) {
    for (const z of ipv4ReverseZones()) add(z, ZoneKind.LocallyServed);
    for (const z of ipv6ReverseZones()) add(z, ZoneKind.LocallyServed);
  }
  if (options.appendixG) for (const z of APPENDIX_G) add(z, ZoneKind.Nonexistent);
  for (const z of options.zones) add(normalizeZone(z), ZoneKind.Nonexistent);
  for (const z of options.exclude) table.delete(normalizeZone(z));
  return table;
}
