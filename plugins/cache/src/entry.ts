/**
 * Cache entries and the decision whether (and for how long) a response may
 * be cached: RFC 1035 §7.4, RFC 2181 §8, RFC 2308 (negative caching and
 * SERVFAIL), RFC 6891 (OPT is not cached data), RFC 7871 (ECS scope).
 *
 * The analysis walks the response's wire bytes once, with bounds checks, and
 * never throws: a response it cannot fully account for is simply not cached.
 */
import { OptionCode, RecordType } from '@heimdall/core';
import { equalsIgnoreCase, plainNameEnd, readTtl, trySkipName } from '@heimdall/core/wire';

/** What an entry answers. */
export type EntryKind = 'positive' | 'nxdomain' | 'nodata' | 'servfail';

/**
 * One cached response. Plain data (no methods), so that a persistence plugin
 * can snapshot it and a Redis plugin can ship it; treat every field as
 * immutable once the entry is in a store.
 */
export interface CacheEntry {
  /** The response in wire format as stored (its ID and TTLs are rewritten in each copy served). */
  readonly wire: Buffer;
  /** Offset just past the question name (the name is `wire[12..nameEnd)`). */
  readonly nameEnd: number;
  /**
   * Offset of the TTL field of every record in every section, OPT excluded
   * (its "TTL" holds EDNS flags). The TTL stored at each offset in `wire` is
   * the record's TTL at `storedAt`, clamped to the entry TTL (and raised to
   * the configured minimum); a served copy gets it minus the entry's age.
   * In the store these live in the arena next to the wire bytes (u16 each);
   * this array is built only when an entry is materialised (cold paths).
   */
  readonly ttlOffsets: readonly number[];
  /** What the entry answers (positive, NXDOMAIN, NODATA, SERVFAIL). */
  readonly kind: EntryKind;
  /** Entry TTL (s), after clamping. */
  readonly ttl: number;
  /** Epoch ms when stored. */
  readonly storedAt: number;
  /** Epoch ms when it stops being fresh (`storedAt + ttl * 1000`). */
  readonly expiresAt: number;
}

/** TTL limits applied by {@link analyzeResponse} (seconds). */
export interface TtlLimits {
  readonly minTtl: number;
  readonly maxTtl: number;
  readonly minNegativeTtl: number;
  readonly maxNegativeTtl: number;
  /** 0 = SERVFAIL is not cached. */
  readonly servfailTtl: number;
}

/** Why a response was not cached (stable strings, for tests and debug logs). */
export type RejectReason =
  | 'malformed'
  | 'not-response'
  | 'id-mismatch'
  | 'opcode'
  | 'truncated'
  | 'question-mismatch'
  | 'rcode'
  | 'no-soa'
  | 'zero-ttl'
  | 'ecs-scope'
  | 'signed';

/** The outcome of {@link analyzeResponse}: an entry, or the reason for not caching. */
export type Analysis = { readonly entry: CacheEntry; readonly reason?: undefined } | { readonly entry?: undefined; readonly reason: RejectReason };

const OPT = RecordType.OPT;
const SOA = RecordType.SOA;
const TSIG = RecordType.TSIG;
const OPTION_ECS = OptionCode.CLIENT_SUBNET;
const OPTION_COOKIE = OptionCode.COOKIE;
const OPTION_PADDING = OptionCode.PADDING;

const reject = (reason: RejectReason): Analysis => ({ reason });

/**
 * Decides whether `response` (to `request`) is cacheable and builds the
 * entry. Rules:
 * - ID, QR, opcode QUERY, one question equal to the query's (name
 *   case-insensitively, type, class); TC clear; no TSIG; else not cached.
 * - NOERROR with answers: TTL = min over the answer records, clamped to
 *   [minTtl, maxTtl].
 * - NXDOMAIN, or NOERROR without answers (NODATA): needs an SOA in the
 *   authority section; TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §5; also
 *   bounded by the answer TTLs of an NXDOMAIN CNAME chain), clamped to
 *   [minNegativeTtl, maxNegativeTtl]. Without an SOA: not cached (RFC 2308 §5
 *   says such answers SHOULD NOT be cached; a referral-shaped NOERROR lands here too).
 * - SERVFAIL: cached for `servfailTtl` s when that is > 0 (RFC 2308 §7.1).
 * - Any other rcode (including extended rcodes from OPT): not cached.
 * - A final TTL of 0: not cached. An ECS option with a non-zero scope prefix
 *   (RFC 7871 §7.3): not cached (the answer is only valid for a subnet).
 * - COOKIE and PADDING options are dropped from the stored OPT (they belong
 *   to one exchange); other options (EDE…) are kept.
 *
 * Cost: one pass over the records, one allocation for the stored copy
 * (`alloc`: the store passes its arena; the default gives the copy its own
 * ArrayBuffer, so it never pins a shared pool slab).
 */
export function analyzeResponse(
  response: Buffer,
  request: Buffer,
  now: number,
  limits: TtlLimits,
  alloc: (length: number) => Buffer = Buffer.allocUnsafeSlow,
): Analysis {
  const end = response.length;
  if (end < 12 || request.length < 12) return reject('malformed');
  if ((response[2] & 0x80) === 0) return reject('not-response');
  if (response[0] !== request[0] || response[1] !== request[1]) return reject('id-mismatch');
  if ((response[2] & 0x78) !== 0 || (request[2] & 0x78) !== 0) return reject('opcode');
  if ((response[2] & 0x02) !== 0) return reject('truncated');
  const qd = (response[4] << 8) | response[5];
  if (qd !== 1 || ((request[4] << 8) | request[5]) !== 1) return reject('question-mismatch');
  const nameEnd = plainNameEnd(response, 12);
  const reqNameEnd = plainNameEnd(request, 12);
  if (nameEnd < 0 || reqNameEnd < 0 || nameEnd + 4 > end || reqNameEnd + 4 > request.length) return reject('malformed');
  if (nameEnd !== reqNameEnd || !equalsIgnoreCase(response, 12, request, 12, nameEnd - 12 + 4)) {
    return reject('question-mismatch');
  }
  let rcode = response[3] & 0x0f;

  const an = (response[6] << 8) | response[7];
  const ns = (response[8] << 8) | response[9];
  const ar = (response[10] << 8) | response[11];
  const total = an + ns + ar;
  const offsets: number[] = [];
  const ttls: number[] = [];
  let n = 0;
  let minAnswer = Number.POSITIVE_INFINITY;
  let soaTtl = -1;
  let soaMinimum = -1;
  let optStart = -1; // rdata of the OPT record
  let optEnd = -1;
  let p = nameEnd + 4;
  for (let i = 0; i < total; i++) {
    p = trySkipName(response, p, end);
    if (p < 0 || p + 10 > end) return reject('malformed');
    const type = (response[p] << 8) | response[p + 1];
    const rdlen = (response[p + 8] << 8) | response[p + 9];
    const rd = p + 10;
    if (rd + rdlen > end) return reject('malformed');
    if (type === OPT) {
      if (i < an + ns || optStart >= 0) return reject('malformed'); // RFC 6891 §6.1.1: one OPT, in the additional section
      rcode |= response[p + 4] << 4; // extended rcode
      optStart = rd;
      optEnd = rd + rdlen;
    } else {
      if (type === TSIG) return reject('signed');
      const ttl = readTtl(response, p + 4);
      offsets.push(p + 4);
      ttls.push(ttl);
      n++;
      if (i < an) {
        if (ttl < minAnswer) minAnswer = ttl;
      } else if (i < an + ns && type === SOA && soaTtl < 0) {
        if (rdlen < 22) return reject('malformed');
        soaTtl = ttl;
        soaMinimum = readTtl(response, rd + rdlen - 4);
      }
    }
    p = rd + rdlen;
  }

  let kind: EntryKind;
  let ttl: number;
  let floor: number;
  if (rcode === 0 && an > 0) {
    kind = 'positive';
    floor = limits.minTtl;
    ttl = Math.min(Math.max(minAnswer, floor), limits.maxTtl);
  } else if (rcode === 0 || rcode === 3) {
    if (soaTtl < 0) return reject('no-soa');
    kind = rcode === 3 ? 'nxdomain' : 'nodata';
    floor = limits.minNegativeTtl;
    const neg = Math.min(soaTtl, soaMinimum, minAnswer);
    ttl = Math.min(Math.max(neg, floor), limits.maxNegativeTtl);
  } else if (rcode === 2 && limits.servfailTtl > 0) {
    kind = 'servfail';
    floor = 0;
    ttl = limits.servfailTtl;
  } else {
    return reject('rcode');
  }
  if (ttl <= 0) return reject('zero-ttl');

  // Walk the OPT options: reject ECS with a scope, drop COOKIE/PADDING.
  let drop = 0;
  if (optStart >= 0) {
    for (let q = optStart; q < optEnd; ) {
      if (q + 4 > optEnd) return reject('malformed');
      const code = (response[q] << 8) | response[q + 1];
      const len = (response[q + 2] << 8) | response[q + 3];
      if (q + 4 + len > optEnd) return reject('malformed');
      if (code === OPTION_ECS && len >= 4 && response[q + 7] !== 0) return reject('ecs-scope');
      if (code === OPTION_COOKIE || code === OPTION_PADDING) drop += 4 + len;
      q += 4 + len;
    }
  }

  let wire: Buffer;
  if (drop === 0) {
    // `p` drops trailing junk.
    wire = alloc(p);
    response.copy(wire, 0, 0, p);
  } else {
    wire = alloc(p - drop);
    response.copy(wire, 0, 0, optStart);
    let w = optStart;
    for (let q = optStart; q < optEnd; ) {
      const code = (response[q] << 8) | response[q + 1];
      const len = (response[q + 2] << 8) | response[q + 3];
      if (code !== OPTION_COOKIE && code !== OPTION_PADDING) {
        response.copy(wire, w, q, q + 4 + len);
        w += 4 + len;
      }
      q += 4 + len;
    }
    response.copy(wire, w, optEnd, p);
    wire.writeUInt16BE(optEnd - optStart - drop, optStart - 2);
    for (let i = 0; i < n; i++) if (offsets[i] > optStart) offsets[i] -= drop;
  }
  // Each record's TTL at storedAt, clamped, written into the stored copy.
  for (let i = 0; i < n; i++) {
    let t = ttls[i];
    if (t < floor) t = floor;
    if (t > ttl) t = ttl;
    wire.writeUInt32BE(t, offsets[i]);
  }

  return {
    entry: {
      wire,
      nameEnd,
      ttlOffsets: offsets,
      kind,
      ttl,
      storedAt: now,
      expiresAt: now + ttl * 1000,
    },
  };
}

/** Entry kinds by their numeric code (the store keeps the code in a byte; snapshots write it). */
export const ENTRY_KINDS: readonly EntryKind[] = ['positive', 'nxdomain', 'nodata', 'servfail'];
/** Numeric code of {@link EntryKind} `'positive'`. */
export const KIND_POSITIVE = 0;
/** Numeric code of {@link EntryKind} `'nxdomain'`. */
export const KIND_NXDOMAIN = 1;
/** Numeric code of {@link EntryKind} `'nodata'`. */
export const KIND_NODATA = 2;
/** Numeric code of {@link EntryKind} `'servfail'`. */
export const KIND_SERVFAIL = 3;

/**
 * Fixed per-entry overhead (bytes) added to the key, wire and TTL-table
 * lengths for the `maxBytes` bound: the map slot, the key string's header,
 * the per-slot typed-array fields (grown by doubling), the slab's slack and
 * the wire view an entry keeps once it has been hit (~65-95 B; entries never
 * hit have none, so the bound is conservative for them). Measured with
 * --expose-gc on Node 20: 258 B per entry in all (key and wire included)
 * before any hit, 323 B after one hit each, for 79-byte responses
 * (bench/cache.bench.ts; README, Memory).
 */
export const ENTRY_OVERHEAD = 210;

/**
 * The size an entry is charged against `maxBytes`: overhead + key + wire +
 * its TTL table in the arena (2 bytes of count + 2 per offset).
 */
export function entrySize(key: string, entry: CacheEntry): number {
  return ENTRY_OVERHEAD + key.length + entry.wire.length + 2 + 2 * entry.ttlOffsets.length;
}
