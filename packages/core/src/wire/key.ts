/**
 * The cache/dedup question key, read straight from a query's bytes: the
 * question name lowercased in wire form, QTYPE, QCLASS, then one character
 * for the EDNS, DO and CD bits — one string allocation, no parsing.
 */
import { Buffer } from 'node:buffer';
import { StringIntern } from '../packet/name.js';
import { MAX_NAME_LENGTH, trySkipName } from './name.js';

/** Key flag: the query carries an OPT record (EDNS). */
export const KEY_EDNS = 1;
/** Key flag: the DO bit (RFC 3225) is set in the query's OPT record. */
export const KEY_DO = 2;
/** Key flag: the CD bit (RFC 4035) is set in the query header. */
export const KEY_CD = 4;

/**
 * The second results of {@link questionKey} / {@link cacheKeyOf}: a
 * caller-owned object (make one per middleware and reuse it, so the hot path
 * allocates nothing), valid right after a call that returned a key. Inside a
 * chain, prefer `ctx.questionKey()`: computed once per query for every plugin.
 */
export class QuestionKeyInfo {
  /** Offset just past the question name (the name is `request[12..nameEnd)`; QTYPE and QCLASS follow). */
  nameEnd = 0;
  /** The key flags ({@link KEY_EDNS} | {@link KEY_DO} | {@link KEY_CD}). */
  flags = 0;
  /** Whether the question name had ASCII capitals (which the key lowercased): false means the key's name octets are the query's own. */
  folded = false;
  /** @internal With `memoSlots`: the keys made lately ({@link KeyMemo}). */
  readonly memo: KeyMemo | null;

  /**
   * `memoSlots` (a power of two, e.g. 16384): keep a two-way memo of
   * recent keys, so that a repeated question returns the same string as
   * before instead of building a new one (no allocation; its hash is cached
   * in the string, and a `Map` holding it compares by identity). A miss
   * replaces the older of its pair of slots. 0: none.
   */
  constructor(memoSlots = 0) {
    if (!Number.isInteger(memoSlots) || memoSlots < 0 || (memoSlots & (memoSlots - 1)) !== 0) throw new RangeError('memoSlots must be 0 or a power of two');
    this.memo = memoSlots > 0 ? new KeyMemo(memoSlots) : null;
  }
}

/**
 * The key flags of a query ({@link KEY_EDNS} | {@link KEY_DO} |
 * {@link KEY_CD}), read straight from the request bytes: CD from the header,
 * EDNS presence and DO from the OPT record found by skipping the records that
 * follow the question (a query normally has only the OPT). Returns -1 for a
 * malformed record section: such a query is neither looked up nor cached.
 *
 * Cost: a few byte reads; no allocation (cheaper than decoding the OPT).
 */
export function queryKeyFlags(request: Buffer, questionEnd: number): number {
  let flags = (request[3] & 0x10) !== 0 ? KEY_CD : 0;
  const records = ((request[6] << 8) | request[7]) + ((request[8] << 8) | request[9]) + ((request[10] << 8) | request[11]);
  const len = request.length;
  let p = questionEnd;
  for (let i = 0; i < records; i++) {
    p = trySkipName(request, p, len);
    if (p < 0 || p + 10 > len) return -1;
    if (request[p] === 0 && request[p + 1] === 41) {
      flags |= KEY_EDNS;
      if ((request[p + 6] & 0x80) !== 0) flags |= KEY_DO;
    }
    p += 10 + ((request[p + 8] << 8) | request[p + 9]);
    if (p > len) return -1;
  }
  return flags;
}

// Its own ArrayBuffer (offset 0), so that the words view below is aligned.
const keyScratch = Buffer.allocUnsafeSlow(MAX_NAME_LENGTH + 8);
const keyWords = new Int32Array(keyScratch.buffer, keyScratch.byteOffset, (MAX_NAME_LENGTH + 8) >> 2);
/** Keys up to this many octets are held as words by {@link KeyMemo} (compared four octets at a time); longer ones by string. */
const WORD_KEY_MAX = 64;

/**
 * A two-way memo of recent keys: a repeated question gets back the very
 * string made before. A key of at most {@link WORD_KEY_MAX} octets is held
 * as 32-bit words beside its string and found by a hash and a compare of
 * whole words of the scratch (four octets per step: each octet-by-octet step
 * costs a bounds check and a reload of the array's base); longer keys go to
 * the codec's {@link StringIntern}. Memory: `slots` × 64 octets, plus the
 * strings held.
 */
class KeyMemo {
  private readonly words: Int32Array;
  private readonly lens: Uint8Array;
  private readonly strings: string[];
  private readonly victim: Uint8Array;
  private readonly mask: number;
  private readonly long: StringIntern;

  constructor(slots: number) {
    slots = Math.max(2, slots);
    this.mask = slots - 1;
    this.words = new Int32Array(slots * (WORD_KEY_MAX >> 2));
    this.lens = new Uint8Array(slots);
    this.strings = new Array<string>(slots).fill('');
    this.victim = new Uint8Array(slots >> 1);
    this.long = new StringIntern(Math.max(2, slots >> 4));
  }

  /** The string of the key in the scratch (`n` octets, zero-padded to a whole word); `h`: the hash's seed. */
  get(n: number, h: number): string {
    const kw = keyWords;
    const nw = (n + 3) >> 2;
    for (let i = 0; i < nw; i++) h = Math.imul(h ^ kw[i], 0x01000193);
    if (n > WORD_KEY_MAX) return this.long.getHashed(keyScratch, n, h);
    const set = (h ^ (h >>> 15)) & this.mask & ~1;
    const words = this.words;
    for (let way = set; way <= set + 1; way++) {
      if (this.lens[way] !== n) continue;
      const at = way * (WORD_KEY_MAX >> 2);
      let i = 0;
      while (i < nw && words[at + i] === kw[i]) i++;
      if (i === nw) return this.strings[way];
    }
    const t = keyScratch.latin1Slice(0, n);
    const way = set + this.victim[set >> 1];
    this.victim[set >> 1] ^= 1;
    const at = way * (WORD_KEY_MAX >> 2);
    for (let i = 0; i < nw; i++) words[at + i] = kw[i];
    this.lens[way] = n;
    this.strings[way] = t;
    return t;
  }
}
// A module-local copy for the hot loop (an imported binding read per label
// costs a property load where imports are compiled to namespace objects).
const NAME_MAX = MAX_NAME_LENGTH;

/**
 * The cache key of a query, straight from its bytes, in one string
 * allocation: the question name in wire form with ASCII letters lowercased,
 * QTYPE, QCLASS (exactly the format of `MessageReader.cacheKey()`), then one
 * character `'0' + flags` ({@link KEY_EDNS} | {@link KEY_DO} | {@link KEY_CD}).
 * Returns null when the question name is compressed or malformed, the
 * question is cut short, or the records after it are malformed. On success
 * fills `info` (`nameEnd`, `flags`). Never throws.
 *
 * Why not `cacheKey() + suffix`: appending to the codec's string makes a
 * cons string that `Map.get` must flatten, which measured 3-4x the cost of
 * building the whole key once (bench/cache.bench.ts).
 */
export function questionKey(request: Buffer, info: QuestionKeyInfo): string | null {
  const len = request.length;
  const k = keyScratch;
  let p = 12;
  let folded = false;
  // Find the name's end label by label, then copy and lowercase it as one run of octets: length octets (1-63)
  // are never ASCII capitals.
  for (;;) {
    if (p >= len) return null;
    const l = request[p];
    if (l === 0) break;
    if (l > 63 || p - 12 + l + 2 > NAME_MAX) return null;
    p += l + 1;
    if (p > len) return null;
  }
  if (p + 5 > len) return null;
  // The name with its root octet; the last word read ends at most 3 octets past it, inside QTYPE/QCLASS.
  let n = p + 1 - 12;
  const nw = (n + 3) >> 2;
  const at = request.byteOffset + 12;
  const src = (at & 3) === 0 ? wordsOf(request) : null;
  if (src !== null && (at >> 2) + nw <= src.length) {
    // Four octets at a time (Buffer's pool slices and the UDP listeners' copies are aligned).
    const s = at >> 2;
    const kw = keyWords;
    let caps = 0;
    for (let i = 0; i < nw; i++) {
      const w = src[s + i];
      const h7 = w & 0x7f7f7f7f;
      // Bit 7 of each octet that is 'A'-'Z': its low 7 bits >= 0x41 and not >= 0x5b, and its own bit 7 clear.
      const upper = (h7 + 0x3f3f3f3f) & ~(h7 + 0x25252525) & ~w & 0x80808080;
      caps |= i === nw - 1 ? upper & lastWordMask[n & 3] : upper;
      kw[i] = w | (upper >>> 2);
    }
    // (The octets past the name in the last word were folded too: QTYPE and QCLASS overwrite them below.)
    folded = caps !== 0;
  } else {
    for (let i = 0; i < n; i++) {
      let c = request[12 + i];
      if (c >= 0x41 && c <= 0x5a) {
        c |= 0x20;
        folded = true;
      }
      k[i] = c;
    }
  }
  const nameEnd = p + 1; // nameEnd + 4 <= len: checked above (p + 5 <= len)
  k[n++] = request[nameEnd];
  k[n++] = request[nameEnd + 1];
  k[n++] = request[nameEnd + 2];
  k[n++] = request[nameEnd + 3];
  const flags = queryKeyFlags(request, nameEnd + 4);
  if (flags < 0) return null;
  k[n++] = 0x30 + flags;
  info.nameEnd = nameEnd;
  info.flags = flags;
  info.folded = folded;
  const memo = info.memo;
  if (memo === null) return k.latin1Slice(0, n);
  // Zero the rest of the last word: the memo compares whole words.
  k[n] = 0;
  k[n + 1] = 0;
  k[n + 2] = 0;
  return memo.get(n, 0x811c9dc5);
}

/**
 * The octets of a name's last word that are the name's, by `n & 3` (0: all
 * four), in this platform's byte order.
 */
const lastWordMask = Int32Array.from([4, 1, 2, 3], (r) => new Int32Array(Uint8Array.from([0, 1, 2, 3], (j) => (j < r ? 0xff : 0)).buffer)[0]);

/** The last buffer {@link wordsOf} viewed, and its words. */
let wordsBuffer: ArrayBufferLike | null = null;
let wordsView: Int32Array = new Int32Array(0);

/**
 * The whole ArrayBuffer under `b` as 32-bit words: one view per ArrayBuffer,
 * kept while queries keep coming from it (Buffer's 8 KB pool: one view per
 * few hundred queries). Holds that one buffer alive until the next.
 */
function wordsOf(b: Buffer): Int32Array {
  const ab = b.buffer;
  if (ab !== wordsBuffer) {
    wordsBuffer = ab;
    wordsView = new Int32Array(ab, 0, ab.byteLength >> 2);
  }
  return wordsView;
}

/**
 * {@link questionKey} for a query the cache and dedup handle, else null:
 * not a response, opcode QUERY, exactly one question, not a zone transfer
 * (AXFR/IXFR). Fills `info` on success. Never throws.
 */
export function cacheKeyOf(request: Buffer, info: QuestionKeyInfo): string | null {
  if (request.length < 12 || (request[2] & 0xf8) !== 0 || request[4] !== 0 || request[5] !== 1) return null;
  const key = questionKey(request, info);
  if (key === null) return null;
  const t = info.nameEnd;
  if (request[t] === 0 && (request[t + 1] === 251 || request[t + 1] === 252)) return null;
  return key;
}

/** The key flags back from the last character of a key made by {@link questionKey}. */
export function keyFlags(key: string): number {
  return (key.charCodeAt(key.length - 1) - 0x30) & 7;
}
