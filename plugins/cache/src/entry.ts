/**
 * Cache entries and the decision whether (and for how long) a response may
 * be cached: RFC 1035 §7.4, RFC 2181 §8, RFC 2308 (negative caching and
 * SERVFAIL), RFC 6891 (OPT is not cached data), RFC 7871 (ECS scope).
 *
 * The analysis walks the response's wire bytes once, with bounds checks, and
 * never throws: a response it cannot fully account for is simply not cached.
 */
import { Buffer } from 'node:buffer';
import { OptionCode } from '@heimdall/core/packet';
import { RecordType } from '@heimdall/core';
import { equalsIgnoreCase, KEY_DO, KEY_EDNS, plainNameEnd, queryKeyFlags, readTtl, trySkipName } from '@heimdall/core/wire';

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
   * the record's own TTL at `storedAt`, capped at `maxTtl` (a negative
   * entry's: at the entry TTL) and raised to the configured minimum; a
   * served copy gets it minus the entry's age.
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
  | 'signed'
  | 'not-stored';

/** The outcome of {@link analyzeResponse}: an entry, or the reason for not caching. */
export type Analysis = { readonly entry: CacheEntry; readonly reason?: undefined } | { readonly entry?: undefined; readonly reason: RejectReason };

const OPT = RecordType.OPT;
const SOA = RecordType.SOA;
const TSIG = RecordType.TSIG;
const OPTION_ECS = OptionCode.CLIENT_SUBNET;
const OPTION_EDE = OptionCode.EDE;
/** Our OPT record without options: root owner (1), TYPE, CLASS, TTL, RDLENGTH. */
const OPT_FIXED = 11;

const reject = (reason: RejectReason): Analysis => ({ reason });

/**
 * Decides whether `response` (to `request`) is cacheable and builds the
 * entry. Rules:
 * - ID, QR, opcode QUERY, one question equal to the query's (name
 *   case-insensitively, type, class); TC clear; no TSIG; else not cached.
 * - NOERROR with answers: TTL = min over the answer records, clamped to
 *   [minTtl, maxTtl]. Every record keeps its own TTL (capped at maxTtl,
 *   raised to minTtl): the entry expires with the minimum, the RRsets with
 *   longer TTLs count down from their own values.
 * - NXDOMAIN, or NOERROR without answers (NODATA): needs an SOA in the
 *   authority section; TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §5; also
 *   bounded by the answer TTLs of an NXDOMAIN CNAME chain), clamped to
 *   [minNegativeTtl, maxNegativeTtl]. Without an SOA: not cached (RFC 2308 §5
 *   says such answers SHOULD NOT be cached; a referral-shaped NOERROR lands here too).
 * - SERVFAIL: cached for `servfailTtl` s when that is > 0 (RFC 2308 §7.1).
 * - Any other rcode (including extended rcodes from OPT): not cached.
 * - A final TTL of 0: not cached. An ECS option with a non-zero scope prefix
 *   (RFC 7871 §7.3): not cached (the answer is only valid for a subnet).
 * - OPT is hop-by-hop (RFC 6891 §6.1.1): the upstream's OPT record is not
 *   stored. When the request has EDNS, the stored copy ends with the
 *   resolver's own OPT: `ednsPayloadSize`, version 0, DO as in the request
 *   (the cache key carries DO), and only the upstream's EDE options (RFC
 *   8914); NSID, COOKIE, PADDING, ECS… stay with the exchange that carried
 *   them. Without EDNS in the request, the stored copy has no OPT.
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
  ednsPayloadSize = 1232,
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
  const reqFlags = queryKeyFlags(request, reqNameEnd + 4);
  if (reqFlags < 0) return reject('malformed');

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
  let optRecord = -1; // owner name of the OPT record
  let optStart = -1; // rdata of the OPT record
  let optEnd = -1;
  let p = nameEnd + 4;
  for (let i = 0; i < total; i++) {
    const recordStart = p;
    p = trySkipName(response, p, end);
    if (p < 0 || p + 10 > end) return reject('malformed');
    const type = (response[p] << 8) | response[p + 1];
    const rdlen = (response[p + 8] << 8) | response[p + 9];
    const rd = p + 10;
    if (rd + rdlen > end) return reject('malformed');
    if (type === OPT) {
      if (i < an + ns || optStart >= 0) return reject('malformed'); // RFC 6891 §6.1.1: one OPT, in the additional section
      rcode |= response[p + 4] << 4; // extended rcode
      optRecord = recordStart;
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

  // Walk the upstream's OPT options: reject ECS with a scope, keep only EDE for our own OPT.
  let ede = 0;
  if (optStart >= 0) {
    for (let q = optStart; q < optEnd; ) {
      if (q + 4 > optEnd) return reject('malformed');
      const code = (response[q] << 8) | response[q + 1];
      const len = (response[q + 2] << 8) | response[q + 3];
      if (q + 4 + len > optEnd) return reject('malformed');
      if (code === OPTION_ECS && len >= 4 && response[q + 7] !== 0) return reject('ecs-scope');
      if (code === OPTION_EDE) ede += 4 + len;
      q += 4 + len;
    }
  }

  // The records without the upstream's OPT (`p` drops trailing junk), then ours when the request has EDNS.
  const edns = (reqFlags & KEY_EDNS) !== 0;
  const cut = optRecord >= 0 ? optEnd - optRecord : 0;
  const body = p - cut;
  const wire = alloc(body + (edns ? OPT_FIXED + ede : 0));
  if (end <= wire.length) {
    // The usual answer (its OPT, if any, holds no options but EDE; no junk): the whole
    // response with TypedArray#set, the records after its OPT (rarely any) moved over it,
    // ours written after them. A Buffer#copy of part of the response would make a
    // Uint8Array over the range (and call the `buffer` getter, a C++ builtin) every time.
    wire.set(response, 0);
    if (optRecord >= 0 && optEnd < p) wire.copyWithin(optRecord, optEnd, p);
  } else if (optRecord < 0) response.copy(wire, 0, 0, p);
  else {
    response.copy(wire, 0, 0, optRecord);
    response.copy(wire, optRecord, optEnd, p);
  }
  if (optRecord >= 0 && optEnd < p) for (let i = 0; i < n; i++) if (offsets[i] > optRecord) offsets[i] -= cut;
  // Header and OPT fields as bytes: Buffer#writeUInt16BE/32BE are calls with range checks
  // that do not fit the inlining budget of this function.
  const arcount = ar - (optRecord >= 0 ? 1 : 0) + (edns ? 1 : 0);
  wire[10] = arcount >>> 8;
  wire[11] = arcount & 0xff;
  if (edns) {
    let w = body;
    wire[w] = 0; // root owner
    wire[w + 1] = OPT >>> 8;
    wire[w + 2] = OPT & 0xff;
    wire[w + 3] = ednsPayloadSize >>> 8;
    wire[w + 4] = ednsPayloadSize & 0xff;
    // ext rcode 0 (only rcodes 0, 2, 3 are cached), version 0, DO, Z
    wire[w + 5] = 0;
    wire[w + 6] = 0;
    wire[w + 7] = (reqFlags & KEY_DO) !== 0 ? 0x80 : 0;
    wire[w + 8] = 0;
    wire[w + 9] = ede >>> 8;
    wire[w + 10] = ede & 0xff;
    w += OPT_FIXED;
    for (let q = optStart; ede > 0 && q < optEnd; ) {
      const code = (response[q] << 8) | response[q + 1];
      const len = (response[q + 2] << 8) | response[q + 3];
      if (code === OPTION_EDE) w += response.copy(wire, w, q, q + 4 + len);
      q += 4 + len;
    }
  }
  // Each record's own TTL at storedAt (floored, capped), written into the stored copy.
  const cap = kind === 'positive' ? limits.maxTtl : ttl;
  for (let i = 0; i < n; i++) {
    let t = ttls[i];
    if (t < floor) t = floor;
    if (t > cap) t = cap;
    const o = offsets[i];
    wire[o] = t >>> 24;
    wire[o + 1] = (t >>> 16) & 0xff;
    wire[o + 2] = (t >>> 8) & 0xff;
    wire[o + 3] = t & 0xff;
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
