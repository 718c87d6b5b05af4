/**
 * @heimdall/plugin-special-use — answers special-use and locally-served
 * names locally instead of leaking them to upstream resolvers:
 *
 * - `localhost` and `*.localhost` → 127.0.0.1 / ::1 (RFC 6761 §6.3);
 * - `invalid`, `test` (RFC 6761 §6.2, §6.4), `local` (RFC 6762 mDNS),
 *   `onion` (RFC 7686) → NXDOMAIN with an SOA;
 * - `home.arpa` (RFC 8375) and the reverse zones of private, loopback,
 *   link-local and documentation ranges (RFC 6303) → NXDOMAIN below the
 *   zone apex, except `1.0.0.127.in-addr.arpa` and the `::1` reverse name,
 *   which have a PTR to `localhost`.
 *
 * Put it first in the chain. The common case (a name under an ordinary TLD)
 * costs one scan of the question's label lengths on the wire, no string.
 */
import { ConfigError, type HeimdallPlugin, type Middleware, RecordType } from '@heimdall/core';
import { APPENDIX_G, ipv4ReverseZones, ipv6ReverseZones, LOOPBACK_PTR_NAMES, ZoneKind } from './zones.js';

export { APPENDIX_G, ipv4ReverseZones, ipv6ReverseZones, LOOPBACK_PTR_NAMES, ZoneKind } from './zones.js';

/** Options of {@link specialUse}. Every switch defaults to on unless noted. */
export interface SpecialUseOptions {
  /** Answer `localhost` and `*.localhost` with 127.0.0.1 / ::1 (RFC 6761 §6.3). Default true. */
  localhost?: boolean;
  /** NXDOMAIN for `invalid` and below (RFC 6761 §6.4). Default true. */
  invalid?: boolean;
  /** NXDOMAIN for `test` and below (RFC 6761 §6.2). Default true. */
  test?: boolean;
  /** NXDOMAIN for `local` and below: multicast DNS names never go to unicast DNS (RFC 6762 §3, §22). Default true. */
  local?: boolean;
  /** NXDOMAIN for `onion` and below (RFC 7686 §2). Default true. */
  onion?: boolean;
  /** Serve `home.arpa` locally: NXDOMAIN below it (RFC 8375). Default true. */
  homeArpa?: boolean;
  /** Serve the RFC 6303 reverse zones locally (10/8, 172.16/12, 192.168/16, 127/8, 169.254/16, 100.64/10, fc00::/7, fe80::/10, …). Default true. */
  reverse?: boolean;
  /** Also NXDOMAIN the private-use names of RFC 6762 Appendix G (`intranet internal private corp home lan`). Default false. */
  appendixG?: boolean;
  /** More zones answered NXDOMAIN (and everything below them), e.g. `['corp.invalid', 'example.lan']`. */
  zones?: string[];
  /**
   * Zones to let through to the rest of the chain although a switch above
   * covers them, e.g. `['168.192.in-addr.arpa']` when your router answers
   * your LAN's reverse zone through conditional forwarding. Exact zone names.
   */
  exclude?: string[];
  /** TTL of the localhost answers and PTRs, seconds. Default 3600. */
  ttl?: number;
  /** TTL and MINIMUM of the SOA sent with negative answers (RFC 2308), seconds. Default 3600. */
  negativeTtl?: number;
}

interface Zone {
  readonly name: string;
  readonly kind: ZoneKind;
}

const MAX_TTL = 2147483647; // RFC 2181 §8

/** Lowercases a zone name and strips one trailing dot; rejects what cannot be a DNS name. */
function normalizeZone(path: string, value: unknown): string {
  if (typeof value !== 'string') throw new ConfigError(path, 'must be a domain name string', value);
  let name = value.trim().toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length === 0 || name.length > 253) throw new ConfigError(path, 'must be a non-root domain name of at most 253 characters', value);
  for (const label of name.split('.')) {
    if (label.length === 0 || label.length > 63) throw new ConfigError(path, 'has an empty label or a label longer than 63 characters', value);
    if (!/^[a-z0-9_-]+$/.test(label)) throw new ConfigError(path, `label "${label}" may only contain letters, digits, "-" and "_"`, value);
  }
  return name;
}

function bool(options: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(`special-use.${key}`, 'must be true or false', v);
  return v;
}

function ttl(options: Record<string, unknown>, key: string, fallback: number): number {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_TTL) {
    throw new ConfigError(`special-use.${key}`, `must be an integer number of seconds from 0 to ${MAX_TTL}`, v);
  }
  return v;
}

function names(options: Record<string, unknown>, key: string): string[] {
  const v = options[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ConfigError(`special-use.${key}`, 'must be an array of domain names', v);
  return v.map((item, i) => normalizeZone(`special-use.${key}[${i}]`, item));
}

/** The zone table an options object produces (exported for tests and docs). */
export function zoneTable(options: SpecialUseOptions = {}): Map<string, Zone> {
  const o = options as Record<string, unknown>;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError('special-use', 'options must be an object', options);
  }
  const known = new Set(['localhost', 'invalid', 'test', 'local', 'onion', 'homeArpa', 'reverse', 'appendixG', 'zones', 'exclude', 'ttl', 'negativeTtl']);
  for (const key of Object.keys(o)) {
    if (!known.has(key)) throw new ConfigError(`special-use.${key}`, `unknown option (known: ${[...known].join(', ')})`);
  }
  const table = new Map<string, Zone>();
  const add = (name: string, kind: ZoneKind): void => {
    table.set(name, { name, kind });
  };
  if (bool(o, 'localhost', true)) add('localhost', ZoneKind.Loopback);
  if (bool(o, 'invalid', true)) add('invalid', ZoneKind.Nonexistent);
  if (bool(o, 'test', true)) add('test', ZoneKind.Nonexistent);
  if (bool(o, 'local', true)) add('local', ZoneKind.Nonexistent);
  if (bool(o, 'onion', true)) add('onion', ZoneKind.Nonexistent);
  if (bool(o, 'homeArpa', true)) add('home.arpa', ZoneKind.LocallyServed);
  if (bool(o, 'reverse', true)) {
    for (const z of ipv4ReverseZones()) add(z, ZoneKind.LocallyServed);
    for (const z of ipv6ReverseZones()) add(z, ZoneKind.LocallyServed);
  }
  if (bool(o, 'appendixG', false)) for (const z of APPENDIX_G) add(z, ZoneKind.Nonexistent);
  for (const z of names(o, 'zones')) add(z, ZoneKind.Nonexistent);
  for (const z of names(o, 'exclude')) table.delete(z);
  return table;
}

/**
 * Creates the special-use plugin.
 *
 * @example
 * createResolver({ plugins: [specialUse(), cache(), upstream({ servers: ['1.1.1.1'] })] });
 * specialUse({ exclude: ['168.192.in-addr.arpa'], appendixG: true });
 */
export function specialUse(options: SpecialUseOptions = {}): HeimdallPlugin {
  const table = zoneTable(options);
  const o = options as Record<string, unknown>;
  const answerTtl = ttl(o, 'ttl', 3600);
  const negTtl = ttl(o, 'negativeTtl', 3600);
  const loopbackPtr = new Set(LOOPBACK_PTR_NAMES.filter((n) => [...table.values()].some((z) => z.kind === ZoneKind.LocallyServed && (n === z.name || n.endsWith(`.${z.name}`)))));

  // Fast pre-filter: the set of top-level labels of all zones, and their lengths.
  const tlds = new Set<string>();
  for (const z of table.keys()) tlds.add(z.slice(z.lastIndexOf('.') + 1));
  let lengthMask = 0n;
  for (const t of tlds) lengthMask |= 1n << BigInt(t.length);
  const lengths = new Uint8Array(64);
  for (let i = 0; i < 64; i++) lengths[i] = (lengthMask >> BigInt(i)) & 1n ? 1 : 0;

  const soaFor = (zone: string) => ({
    name: zone,
    type: RecordType.SOA,
    ttl: negTtl,
    data: { mname: 'localhost', rname: 'nobody.invalid', serial: 1, refresh: 3600, retry: 1200, expire: 604800, minimum: negTtl },
  });

  const middleware: Middleware = (ctx, next) => {
    if (table.size === 0) return next();
    const buf = ctx.request;
    // Find the last label of the question name straight on the wire.
    let off = 12;
    let lastStart = -1;
    let lastLen = 0;
    const end = buf.length;
    while (off < end) {
      const len = buf[off]!;
      if (len === 0) break;
      if (len > 63) return next(); // compression or extended label types in a question: leave it to others
      lastStart = off + 1;
      lastLen = len;
      off += len + 1;
    }
    if (lastStart < 0 || lengths[lastLen] === 0) return next();
    if (!tlds.has(buf.toString('latin1', lastStart, lastStart + lastLen).toLowerCase())) return next();
    if (ctx.query.qclass !== 1 /* IN */ && ctx.query.qclass !== 255 /* ANY */) return next();

    // Slow path, only for names under a special TLD: longest zone suffix.
    const qname = ctx.query.qname.toLowerCase();
    let zone: Zone | undefined;
    let cut = 0;
    for (;;) {
      zone = table.get(cut === 0 ? qname : qname.slice(cut));
      if (zone !== undefined) break;
      const dot = nextLabel(qname, cut);
      if (dot < 0) return next();
      cut = dot;
    }
    const qtype = ctx.query.qtype;
    const atApex = cut === 0;
    switch (zone.kind) {
      case ZoneKind.Loopback: {
        const name = ctx.query.qname;
        if (qtype === RecordType.A || qtype === RecordType.ANY) {
          ctx.reply({ aa: true, answers: [{ name, type: RecordType.A, ttl: answerTtl, data: '127.0.0.1' }] });
        } else if (qtype === RecordType.AAAA) {
          ctx.reply({ aa: true, answers: [{ name, type: RecordType.AAAA, ttl: answerTtl, data: '::1' }] });
        } else {
          ctx.reply({ aa: true, authorities: [soaFor(zone.name)] });
        }
        return;
      }
      case ZoneKind.Nonexistent:
        ctx.reply({ rcode: 3 /* NXDOMAIN */, aa: true, authorities: [soaFor(zone.name)] });
        return;
      default: {
        if (loopbackPtr.has(qname)) {
          if (qtype === RecordType.PTR || qtype === RecordType.ANY) {
            ctx.reply({ aa: true, answers: [{ name: ctx.query.qname, type: RecordType.PTR, ttl: answerTtl, data: 'localhost' }] });
          } else {
            ctx.reply({ aa: true, authorities: [soaFor(zone.name)] });
          }
          return;
        }
        if (atApex) {
          if (qtype === RecordType.SOA) ctx.reply({ aa: true, answers: [soaFor(zone.name)] });
          else ctx.reply({ aa: true, authorities: [soaFor(zone.name)] });
          return;
        }
        ctx.reply({ rcode: 3 /* NXDOMAIN */, aa: true, authorities: [soaFor(zone.name)] });
      }
    }
  };

  return {
    name: 'special-use',
    middleware: () => middleware,
  };
}

/** Index just after the next unescaped dot at or after `from`, or -1. */
function nextLabel(name: string, from: number): number {
  for (let i = from; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 92 /* \ */) {
      i++;
      continue;
    }
    if (c === 46 /* . */) return i + 1;
  }
  return -1;
}

export default specialUse;
