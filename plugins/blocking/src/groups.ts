/**
 * Client → group mapping by IP/CIDR (IPv4 and IPv6). The most specific
 * matching prefix wins; IPv4-mapped IPv6 clients (`::ffff:192.0.2.1`) match
 * IPv4 rules. Results are memoised per address string in a bounded map, so
 * the per-query cost is one `Map.get` for returning clients.
 */
import { isIP } from 'node:net';

/** A parsed CIDR: family, 4 or 16 network bytes, prefix length. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Parses `a.b.c.d/n` or `x::y/n`; null when invalid. Host bits are cleared. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const addr = text.slice(0, slash);
  const p = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p)) return null;
  const prefix = Number(p);
  const bytes = parseIp(addr);
  if (bytes === null) return null;
  const family = bytes.length === 4 ? 4 : 6;
  if (prefix > bytes.length * 8) return null;
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return { family, bytes, prefix };
}

/** Address text → 4 or 16 bytes (IPv4-mapped IPv6 becomes 4 bytes); null when invalid. */
export function parseIp(text: string): Uint8Array | null {
  const pct = text.indexOf('%');
  const t = pct >= 0 ? text.slice(0, pct) : text;
  const fam = isIP(t);
  if (fam === 4) return Uint8Array.from(t.split('.').map(Number));
  if (fam !== 6) return null;
  const out = new Uint8Array(16);
  let s = t;
  // Embedded IPv4 tail (::ffff:1.2.3.4)
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    tail = s.slice(lastColon + 1).split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = s.indexOf('::');
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const rest = dbl >= 0 ? s.slice(dbl + 2) : '';
  const hp = head === '' ? [] : head.split(':');
  const rp = rest === '' ? [] : rest.split(':');
  const groups = [...hp, ...new Array(8 - hp.length - rp.length).fill('0'), ...rp];
  for (let i = 0; i < 8; i++) {
    const v = Number.parseInt(groups[i]!, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (tail.length === 4) out.set(tail, 12);
  // IPv4-mapped: ::ffff:a.b.c.d
  let mapped = out[10] === 0xff && out[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (out[i] !== 0) mapped = false;
  return mapped ? out.slice(12) : out;
}

function contains(c: Cidr, addr: Uint8Array): boolean {
  if (addr.length !== c.bytes.length) return false;
  let bits = c.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== c.bytes[i]) return false;
  }
  return true;
}

/** Maps client addresses to group bitmasks. */
export class ClientGroups {
  readonly #rules: { cidr: Cidr; mask: number }[];
  readonly #default: number;
  readonly #memo = new Map<string, number>();
  readonly #memoMax: number;
  /** True when no rule exists: every client gets the default mask (no lookup at all). */
  readonly trivial: boolean;

  constructor(rules: readonly { cidr: string; mask: number }[], defaultMask: number, memoMax = 10_000) {
    this.#rules = rules
      .map((r) => {
        const cidr = parseCidr(r.cidr);
        if (cidr === null) throw new RangeError(`invalid CIDR ${r.cidr}`);
        return { cidr, mask: r.mask };
      })
      // Most specific first; stable for equal prefixes (declaration order).
      .sort((a, b) => b.cidr.prefix - a.cidr.prefix);
    this.#default = defaultMask >>> 0;
    this.#memoMax = memoMax;
    this.trivial = this.#rules.length === 0;
  }

  /** The group mask of a client address (the default mask when nothing matches or the address is not an IP). */
  maskFor(address: string): number {
    if (this.trivial) return this.#default;
    const m = this.#memo.get(address);
    if (m !== undefined) return m;
    const bytes = parseIp(address);
    let mask = this.#default;
    if (bytes !== null) {
      for (const r of this.#rules) {
        if (contains(r.cidr, bytes)) {
          mask = r.mask;
          break;
        }
      }
    }
    if (this.#memo.size >= this.#memoMax) this.#memo.clear();
    this.#memo.set(address, mask);
    return mask;
  }
}
