/**
 * Client address → the key of its prefix, without allocating for IPv4:
 * dotted-quad text is read character by character into a number and
 * shifted to its prefix (a /24 key is at most 2^24, a small integer). IPv6
 * text (rarer, and costlier to parse) is memoized per address string in a
 * bounded map: a returning client costs one `Map.get`; its key is the
 * prefix's own text (`2001:db8:0:1200::/56`), made once.
 */
import { type Cidr, cidrContains, formatIPv4, formatIPv6, ipToBytes, maskBytes } from './ip.js';

/** The value of strict dotted-quad text (no leading `+`, at most 3 digits a part), or -1. Allocation-free. */
export function ipv4Value(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 255) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return -1;
      part = part * 10 + (c - 0x30);
    } else return -1;
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return value * 256 + part;
}

/** What the keyer knows about a non-dotted-quad address. */
interface Other {
  /** The prefix key (a number when the address is IPv4-mapped IPv6), or null when the text is not an address. */
  readonly key: number | string | null;
  readonly exempt: boolean;
}

const NOT_AN_ADDRESS: Other = Object.freeze({ key: null, exempt: false });
const MEMO_MAX = 16_384;

/** Maps client addresses to prefix keys and exemptions. */
export class PrefixKeyer {
  readonly #v4Shift: number;
  readonly #v6Prefix: number;
  readonly #v4Prefix: number;
  /** IPv4 exemptions as [network, mask] pairs of unsigned 32-bit values. */
  readonly #v4Allow: Float64Array;
  readonly #allow: readonly Cidr[];
  readonly #memo = new Map<string, Other>();

  constructor(ipv4Prefix: number, ipv6Prefix: number, allow: readonly Cidr[]) {
    this.#v4Prefix = ipv4Prefix;
    this.#v4Shift = 32 - ipv4Prefix;
    this.#v6Prefix = ipv6Prefix;
    this.#allow = allow;
    const v4 = allow.filter((c) => c.family === 4);
    this.#v4Allow = new Float64Array(v4.length * 2);
    v4.forEach((c, i) => {
      const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
      this.#v4Allow[i * 2] = c.bytes.readUInt32BE(0);
      this.#v4Allow[i * 2 + 1] = mask;
    });
  }

  /** Key of an IPv4 address value (from {@link ipv4Value}). */
  v4Key(value: number): number {
    return this.#v4Shift === 32 ? 0 : value >>> this.#v4Shift;
  }

  /** Whether an IPv4 address value is exempt. */
  v4Exempt(value: number): boolean {
    const a = this.#v4Allow;
    for (let i = 0; i < a.length; i += 2) if ((value & a[i + 1]) >>> 0 === a[i]) return true;
    return false;
  }

  /** Key and exemption of an address that is not dotted-quad text (IPv6, IPv4-mapped, or not an address). Memoized. */
  other(address: string): Other {
    const known = this.#memo.get(address);
    if (known !== undefined) return known;
    const bytes = ipToBytes(address);
    let out: Other;
    if (bytes === null) out = NOT_AN_ADDRESS;
    else if (bytes.length === 4) {
      const value = bytes.readUInt32BE(0);
      out = { key: this.v4Key(value), exempt: this.v4Exempt(value) };
    } else {
      const exempt = this.#allow.some((c) => c.family === 6 && cidrContains(c, bytes));
      maskBytes(bytes, this.#v6Prefix);
      out = { key: `${formatIPv6(bytes, 0)}/${this.#v6Prefix}`, exempt };
    }
    if (this.#memo.size >= MEMO_MAX) this.#memo.clear();
    this.#memo.set(address, out);
    return out;
  }

  /** A key as prefix text (`192.0.2.0/24`, `2001:db8::/56`), for admin listings and logs. */
  text(key: number | string): string {
    if (typeof key === 'string') return key;
    const value = this.#v4Shift === 32 ? 0 : key * 2 ** this.#v4Shift;
    const b = new Uint8Array(4);
    b[0] = value / 0x1000000;
    b[1] = (value >>> 16) & 0xff;
    b[2] = (value >>> 8) & 0xff;
    b[3] = value & 0xff;
    return `${formatIPv4(b, 0)}/${this.#v4Prefix}`;
  }
}
