/**
 * Response classification and the accounts of response rate limiting, with
 * BIND's semantics: an account per client prefix and response class (and
 * name), credited `rate` responses per second up to one second's worth,
 * debited one per response, never below `-window × rate`; a response that
 * finds the balance negative is limited. Amounts are in milli-responses.
 */
import type { Buffer } from 'node:buffer';
import { LOWER } from '@heimdall/core/wire';
import { MessageReader } from '@heimdall/core/packet';
import { ERROR, NODATA, NXDOMAIN, REFERRAL } from './options.js';

const SOA = 6;
const NS = 2;

/** One account. */
export class Account {
  balance: number;
  last: number;
  /** Responses limited since the account went negative this time. */
  limited = 0;
  /** Start of the current limited episode, or -1. */
  since = -1;
  constructor(
    readonly prefix: number | string,
    readonly cls: number,
    readonly name: string,
    readonly qtype: number,
    balance: number,
    now: number,
  ) {
    this.balance = balance;
    this.last = now;
  }
}

/** What a response is, for accounting: its class and the name and type it is accounted under. */
export interface Classified {
  cls: number;
  /** Lowercase, no trailing dot; '' for errors (one account per prefix). */
  name: string;
  qtype: number;
}

/** The parent of a lowercase name (`a.b.example` → `b.example`), '' for a single label. */
function parent(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1);
}

const bare = (n: string): string => {
  const l = n.toLowerCase();
  return l.endsWith('.') ? l.slice(0, -1) : l;
};

/**
 * Classifies a response that is not a plain answer (callers handle
 * NOERROR with answers themselves, without decoding anything).
 * `qname` is the question, lowercase.
 */
export function classifyOther(response: Buffer, rcode: number, qname: string, qtype: number, into: Classified): Classified {
  if (rcode !== 0 && rcode !== 3) {
    into.cls = ERROR;
    into.name = '';
    into.qtype = 0;
    return into;
  }
  let soa: string | undefined;
  let ns: string | undefined;
  try {
    const reader = new MessageReader(response);
    for (const r of reader.records('authority')) {
      if (r.type === SOA && soa === undefined) soa = r.name;
      else if (r.type === NS && ns === undefined) ns = r.name;
    }
  } catch {
    // an unparseable authority section: classified by the question alone
  }
  if (rcode === 3) {
    into.cls = NXDOMAIN;
    into.name = soa !== undefined ? bare(soa) : parent(qname);
    into.qtype = 0;
  } else if (soa === undefined && ns !== undefined && (response[2]! & 0x04) === 0) {
    into.cls = REFERRAL;
    into.name = bare(ns);
    into.qtype = 0;
  } else {
    into.cls = NODATA;
    into.name = soa !== undefined ? bare(soa) : qname;
    into.qtype = soa !== undefined ? 0 : qtype;
  }
  return into;
}

/** 53-bit key of (prefix, class, name, type): two 32-bit FNV-style hashes. Hashes wire name bytes lowercased. */
export class KeyHasher {
  h1 = 0;
  h2 = 0;

  start(prefix: number | string, cls: number): this {
    this.h1 = 0x811c9dc5;
    this.h2 = 0x9747b28c;
    if (typeof prefix === 'number') {
      this.mix(prefix & 0xff);
      this.mix((prefix >>> 8) & 0xff);
      this.mix((prefix >>> 16) & 0xff);
      this.mix((prefix >>> 24) & 0xff);
    } else {
      this.mix(0x100);
      for (let i = 0; i < prefix.length; i++) this.mix(prefix.charCodeAt(i));
    }
    this.mix(0x200 + cls);
    return this;
  }

  mix(c: number): void {
    this.h1 = Math.imul(this.h1 ^ c, 0x01000193);
    this.h2 = Math.imul(this.h2 ^ c, 0x5bd1e995);
    this.h2 ^= this.h2 >>> 15;
  }

  /** Mixes the wire name at `offset` of `buf` (uncompressed, as in a question), lowercased. */
  wireName(buf: Buffer, offset: number, end: number): void {
    for (let i = offset; i < end; i++) this.mix(LOWER[buf[i]!]!);
  }

  text(s: string): void {
    for (let i = 0; i < s.length; i++) this.mix(s.charCodeAt(i));
  }

  key(qtype: number): number {
    this.mix(qtype & 0xff);
    this.mix(qtype >>> 8);
    return (this.h1 >>> 0) * 2097152 + (this.h2 >>> 11);
  }
}

/** Accounts in a bounded `Map` by 53-bit key. Pure: time is given by the caller. */
export class AccountTable {
  readonly #map = new Map<number, Account>();
  readonly #max: number;
  readonly #window: number;
  readonly #rates: readonly number[];
  evictions = 0;

  /** `rates`: responses per second by class. */
  constructor(maxTableSize: number, window: number, rates: readonly number[]) {
    this.#max = maxTableSize;
    this.#window = window;
    this.#rates = rates;
  }

  /** Whether `a`'s balance is back at its cap by `now` (it carries no state). */
  #idle(a: Account, now: number): boolean {
    const rate = this.#rates[a.cls]!;
    return a.balance + (now - a.last) * rate >= rate * 1000;
  }

  get size(): number {
    return this.#map.size;
  }

  /**
   * Debits one response from the account under `key` at `now`, with `rate`
   * responses per second. Returns the account when the response is
   * limited, null when it passes, undefined when there is no such account
   * yet (then {@link add} one).
   */
  debit(key: number, rate: number, now: number): Account | null | undefined {
    const a = this.#map.get(key);
    if (a === undefined) return undefined;
    const cap = rate * 1000;
    let balance = a.balance;
    const elapsed = now - a.last;
    if (elapsed > 0) {
      balance += elapsed * rate;
      if (balance > cap) balance = cap;
      a.last = now;
    }
    balance -= 1000;
    const floor = -this.#window * cap;
    if (balance < floor) balance = floor;
    a.balance = balance;
    if (balance < 0) return a;
    if (a.since >= 0) {
      a.since = -1;
      a.limited = 0;
    }
    return null;
  }

  /** Adds a new account (its balance already debited for the first response), making room at the bound. */
  add(key: number, a: Account, now: number): void {
    if (this.#map.size >= this.#max) this.#evict(now);
    this.#map.set(key, a);
  }

  #evict(now: number): void {
    let victim: number | undefined;
    let oldest = Number.POSITIVE_INFINITY;
    let n = 0;
    for (const [k, a] of this.#map) {
      if (this.#idle(a, now)) {
        victim = k;
        break;
      }
      if (a.last < oldest) {
        oldest = a.last;
        victim = k;
      }
      if (++n >= 16) break;
    }
    this.#map.delete(victim!);
    this.evictions++;
  }

  /** Forgets accounts whose balance is back at its cap. */
  sweep(now: number): number {
    let n = 0;
    for (const [k, a] of this.#map) {
      if (this.#idle(a, now)) {
        this.#map.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Accounts whose balance, credited to `now`, is still negative. */
  *limited(now: number): IterableIterator<Account> {
    for (const a of this.#map.values()) if (a.since >= 0 && a.balance + (now - a.last) * this.#rates[a.cls]! < 0) yield a;
  }

  clear(): void {
    this.#map.clear();
  }
}
