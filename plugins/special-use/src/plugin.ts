/**
 * The `special-use` plugin: answers special-use and locally-served names
 * locally instead of leaking them to upstream resolvers:
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
import { Buffer } from 'node:buffer';
import { definePlugin, type Middleware, RecordType } from '@heimdall/core';
import { type SpecialUseOptions, specialUseOptionsSchema } from './options.js';
import { LOOPBACK_PTR_NAMES, type Zone, ZoneKind, zoneTable } from './zones.js';

/** Builds the middleware for validated options (the zone table and pre-filter are made once). */
function specialUseMiddleware(options: SpecialUseOptions): Middleware {
  const table = zoneTable(options);
  const answerTtl = options.ttl;
  const negTtl = options.negativeTtl;
  const loopbackPtr = new Set(
    LOOPBACK_PTR_NAMES.filter((n) => [...table.values()].some((z) => z.kind === ZoneKind.LocallyServed && (n === z.name || n.endsWith(`.${z.name}`)))),
  );

  // Fast pre-filter: the top-level labels of all zones as lowercase octets, by length (a label is
  // at most 63 octets), matched on the wire without a string.
  const tlds = new Set<string>();
  for (const z of table.keys()) tlds.add(z.slice(z.lastIndexOf('.') + 1));
  const byLength: Uint8Array[][] = Array.from({ length: 64 }, () => []);
  for (const t of tlds) byLength[t.length]!.push(Buffer.from(t, 'latin1'));
  const isSpecialTld = (buf: Buffer, start: number, len: number): boolean => {
    const candidates = byLength[len]!;
    next: for (let c = 0; c < candidates.length; c++) {
      const t = candidates[c]!;
      for (let i = 0; i < len; i++) {
        const b = buf[start + i]!;
        if ((b >= 0x41 && b <= 0x5a ? b | 0x20 : b) !== t[i]) continue next;
      }
      return true;
    }
    return false;
  };

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
    if (lastStart < 0 || !isSpecialTld(buf, lastStart, lastLen)) return next();
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

  return middleware;
}

/**
 * The special-use plugin.
 *
 * @example
 * createResolver({ plugins: [specialUse(), cache(), upstream({ servers: ['1.1.1.1'] })] });
 * specialUse({ exclude: ['168.192.in-addr.arpa'], appendixG: true });
 */
export const specialUse = definePlugin({
  name: 'special-use',
  description: 'Answers special-use and locally-served names (localhost, invalid, test, local, onion, home.arpa, private reverse zones) locally.',
  options: specialUseOptionsSchema,
  setup: (options) => {
    const middleware = specialUseMiddleware(options);
    return { middleware: () => middleware };
  },
});

export default specialUse;

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
