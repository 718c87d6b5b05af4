/**
 * Client → group mapping by IP/CIDR (IPv4 and IPv6). The most specific
 * matching prefix wins; IPv4-mapped IPv6 clients (`::ffff:192.0.2.1`) match
 * IPv4 rules. Results are memoised per address string in a bounded map, so
 * the per-query cost is one `Map.get` for returning clients. Address and
 * CIDR parsing come from core's wire toolkit.
 */
import { type Cidr, cidrContains, ipToBytes } from '@heimdall/core/wire';

/** Maps client addresses to group bitmasks. */
export class ClientGroups {
  readonly #rules: { cidr: Cidr; mask: number }[];
  readonly #default: number;
  readonly #memo = new Map<string, number>();
  readonly #memoMax: number;
  /** True when no rule exists: every client gets the default mask (no lookup at all). */
  readonly trivial: boolean;

  constructor(rules: readonly { readonly cidr: Cidr; readonly mask: number }[], defaultMask: number, memoMax = 10_000) {
    // Most specific first; stable for equal prefixes (declaration order).
    this.#rules = rules.map((r) => ({ cidr: r.cidr, mask: r.mask >>> 0 })).sort((a, b) => b.cidr.prefix - a.cidr.prefix);
    this.#default = defaultMask >>> 0;
    this.#memoMax = memoMax;
    this.trivial = this.#rules.length === 0;
  }

  /** The group mask of a client address (the default mask when nothing matches or the address is not an IP). */
  maskFor(address: string): number {
    if (this.trivial) return this.#default;
    const m = this.#memo.get(address);
    if (m !== undefined) return m;
    const bytes = ipToBytes(address);
    let mask = this.#default;
    if (bytes !== null) {
      for (const r of this.#rules) {
        if (cidrContains(r.cidr, bytes)) {
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
