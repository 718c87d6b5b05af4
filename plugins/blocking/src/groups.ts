/**
 * Client → group mapping by IP/CIDR (IPv4 and IPv6). The most specific
 * matching prefix wins; IPv4-mapped IPv6 clients (`::ffff:192.0.2.1`) match
 * IPv4 rules. Results are memoised per address string in a bounded map, so
 * the per-query cost is one `Map.get` for returning clients. Address and
 * CIDR parsing come from core's wire toolkit.
 *
 * A rule may name a DoH client id instead (`id:kids-tablet`, from
 * `/dns-query/<client-id>`): it wins over every address rule. Without id
 * rules, the client id is not looked at (no cost); with them, a query that
 * carries an id costs one more `Map.get`.
 */
import { type Cidr, cidrContains, ipToBytes } from '@heimdall/core/wire';

/** One rule: an address prefix or a DoH client id, and the groups it selects. */
export type ClientRule = { readonly cidr: Cidr; readonly mask: number } | { readonly id: string; readonly mask: number };

/** Maps client addresses (and DoH client ids) to group bitmasks. */
export class ClientGroups {
  readonly #rules: { cidr: Cidr; mask: number }[];
  /** Group masks by DoH client id; null when no rule names one. */
  readonly #ids: ReadonlyMap<string, number> | null;
  readonly #default: number;
  readonly #memo = new Map<string, number>();
  readonly #memoMax: number;
  /** True when no rule exists: every client gets the default mask (no lookup at all). */
  readonly trivial: boolean;

  constructor(rules: readonly ClientRule[], defaultMask: number, memoMax = 10_000) {
    const ids = new Map<string, number>();
    const cidrs: { cidr: Cidr; mask: number }[] = [];
    for (const r of rules) {
      if ('id' in r) {
        if (!ids.has(r.id)) ids.set(r.id, r.mask >>> 0);
      } else cidrs.push({ cidr: r.cidr, mask: r.mask >>> 0 });
    }
    // Most specific first; stable for equal prefixes (declaration order).
    this.#rules = cidrs.sort((a, b) => b.cidr.prefix - a.cidr.prefix);
    this.#ids = ids.size === 0 ? null : ids;
    this.#default = defaultMask >>> 0;
    this.#memoMax = memoMax;
    this.trivial = this.#rules.length === 0 && this.#ids === null;
  }

  /** Whether some rule names a DoH client id. */
  get byClientId(): boolean {
    return this.#ids !== null;
  }

  /**
   * The group mask of a client: its DoH client id's rule when one names it,
   * else its address's most specific prefix, else the default mask (also
   * when the address is not an IP).
   */
  maskFor(address: string, clientId?: string): number {
    if (this.trivial) return this.#default;
    if (clientId !== undefined && this.#ids !== null) {
      const byId = this.#ids.get(clientId);
      if (byId !== undefined) return byId;
    }
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
