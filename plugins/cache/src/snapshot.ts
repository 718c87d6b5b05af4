/**
 * A compact, validated binary form of cache entries, for a persistence
 * plugin (snapshots that survive restarts) or an L2 cache (Redis values).
 *
 * Reading never trusts the bytes: every length, offset and timestamp is
 * checked, and the key must be the one the stored question produces, so a
 * corrupt or foreign snapshot raises {@link CacheSnapshotError} instead of
 * putting bad entries in the cache.
 */
import { Buffer } from 'node:buffer';
import { createError } from '@heimdall/core/errors';
import { RecordType } from '@heimdall/core';
import { KEY_CD, KEY_DO, KEY_EDNS, plainNameEnd, trySkipName } from '@heimdall/core/wire';
import { type CacheEntry, ENTRY_KINDS } from './entry.js';
import type { CacheStore } from './store.js';

const ENTRY_VERSION = 1;
const MAGIC = 0x48444331; // "HDC1"
const KINDS = ENTRY_KINDS;

/**
 * A snapshot or serialized entry that does not hold up: code
 * `CACHE_CORRUPT_SNAPSHOT`. `offset` is where reading failed.
 */
export class CacheSnapshotError extends createError<[offset: number, reason: string]>(
  'CACHE_CORRUPT_SNAPSHOT',
  'plugin/cache: corrupt snapshot at byte %d: %s',
  500,
) {
  override readonly name = 'CacheSnapshotError';
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(offset, message);
    this.offset = offset;
  }
}

/** Bytes {@link writeEntry} needs for this entry. */
export function entryEncodingLength(key: string, entry: CacheEntry): number {
  return 1 + 1 + 4 + 8 + 8 + 2 + key.length + 2 + entry.wire.length + 2 + 2 + 2 * entry.ttlOffsets.length;
}

/**
 * Writes `key` and `entry` at `offset` of `out` (which must have
 * {@link entryEncodingLength} bytes free). Returns the offset after it.
 * Layout (big-endian): version u8, kind u8, ttl u32, storedAt f64, expiresAt
 * f64, key (u16 length + latin1), wire (u16 length + bytes), nameEnd u16,
 * offsets (u16 count + u16 each).
 */
export function writeEntry(out: Buffer, offset: number, key: string, entry: CacheEntry): number {
  let p = offset;
  out[p++] = ENTRY_VERSION;
  out[p++] = KINDS.indexOf(entry.kind);
  p = out.writeUInt32BE(entry.ttl, p);
  p = out.writeDoubleBE(entry.storedAt, p);
  p = out.writeDoubleBE(entry.expiresAt, p);
  p = out.writeUInt16BE(key.length, p);
  p += out.write(key, p, key.length, 'latin1');
  p = out.writeUInt16BE(entry.wire.length, p);
  p += entry.wire.copy(out, p);
  p = out.writeUInt16BE(entry.nameEnd, p);
  p = out.writeUInt16BE(entry.ttlOffsets.length, p);
  for (const o of entry.ttlOffsets) p = out.writeUInt16BE(o, p);
  return p;
}

/** One entry as a new buffer. */
export function serializeEntry(key: string, entry: CacheEntry): Buffer {
  const out = Buffer.allocUnsafe(entryEncodingLength(key, entry));
  writeEntry(out, 0, key, entry);
  return out;
}

/** What {@link readEntry} returns. */
export interface ReadEntry {
  readonly key: string;
  readonly entry: CacheEntry;
  /** Offset just after the entry in the buffer read. */
  readonly next: number;
  /** Offset in `entry.wire` of the OPT record's CLASS field (the UDP payload size), or -1 without OPT. */
  readonly optPayload: number;
}

/**
 * Where the parts of one serialized entry are, as {@link checkEntry} found
 * them (offsets are absolute in the buffer checked unless said otherwise).
 * A caller-owned scratch object: make one and reuse it, so that checking
 * allocates nothing.
 */
export class EntryLayout {
  /** Entry kind code (index in `ENTRY_KINDS`). */
  kind = 0;
  /** Entry TTL (s). */
  ttl = 0;
  /** Epoch ms when stored. */
  storedAt = 0;
  /** Epoch ms when it stops being fresh. */
  expiresAt = 0;
  /** The key's bytes (latin1) and their length. */
  keyStart = 0;
  keyLength = 0;
  /** The wire answer's bytes and their length. */
  wireStart = 0;
  wireLength = 0;
  /** Offset just past the question name, relative to the wire. */
  nameEnd = 0;
  /** The TTL table: a u16 count, then that many u16 offsets relative to the wire (the store's arena layout). */
  tableStart = 0;
  /** Number of TTL offsets. */
  count = 0;
  /** Offset of the OPT record's CLASS field relative to the wire, or -1 without OPT. */
  optPayload = -1;
  /** Offset just after the entry. */
  next = 0;
  /** Why the last check failed (a constant string), and where. */
  error = '';
  errorAt = 0;
}

function fail(out: EntryLayout, error: string, at: number): false {
  out.error = error;
  out.errorAt = at;
  return false;
}

/**
 * Checks one serialized entry at `offset` of `buf` in place, without
 * allocating, and fills `out` with where its parts are. False (with
 * `out.error`, `out.errorAt`) on anything inconsistent: lengths,
 * timestamps, a key that is not the one the stored question produces,
 * records that do not parse to the end of the wire, TTL offsets that are not
 * exactly the TTL fields of the records (OPT excluded), an OPT record that
 * disagrees with the key's EDNS/DO flags. Never throws, never reads past
 * `buf.length`.
 */
export function checkEntry(buf: Buffer, offset: number, out: EntryLayout): boolean {
  const end = buf.length;
  let p = offset;
  if (p + 24 > end) return fail(out, 'truncated entry header', p);
  if (buf[p] !== ENTRY_VERSION) return fail(out, 'unknown entry version', p);
  const kind = buf[p + 1];
  if (kind >= KINDS.length) return fail(out, 'unknown entry kind', p + 1);
  const ttl = buf.readUInt32BE(p + 2);
  const storedAt = buf.readDoubleBE(p + 6);
  const expiresAt = buf.readDoubleBE(p + 14);
  if (ttl === 0 || ttl > 0x7fffffff) return fail(out, 'bad TTL', p + 2);
  if (!Number.isSafeInteger(storedAt) || storedAt < 0 || expiresAt !== storedAt + ttl * 1000) return fail(out, 'inconsistent timestamps', p + 6);
  p += 22;
  const keyLength = (buf[p] << 8) | buf[p + 1];
  p += 2;
  if (p + keyLength > end) return fail(out, 'truncated key', p);
  const keyStart = p;
  p += keyLength;
  if (p + 2 > end) return fail(out, 'truncated wire length', p);
  const wireLength = (buf[p] << 8) | buf[p + 1];
  p += 2;
  if (p + wireLength > end) return fail(out, 'truncated wire', p);
  const w = p;
  p += wireLength;
  if (p + 4 > end) return fail(out, 'truncated offsets', p);
  const nameEnd = (buf[p] << 8) | buf[p + 1];
  const tableStart = p + 2;
  const n = (buf[p + 2] << 8) | buf[p + 3];
  p += 4;
  if (p + 2 * n > end) return fail(out, 'truncated offsets', p);
  if (wireLength < 17 || ((buf[w + 4] << 8) | buf[w + 5]) !== 1 || (buf[w + 2] & 0x80) === 0) return fail(out, 'not a DNS response', w);
  const nameEndAbs = w + nameEnd;
  // (Scanning past the wire would not end at a name end inside it: the equality bounds the name to the wire.)
  if (nameEnd + 4 > wireLength || plainNameEnd(buf, w + 12) !== nameEndAbs) return fail(out, 'bad question', w + 12);
  // The key must be the one this question produces: lowercased name, type, class, one flag character.
  if (keyLength !== nameEnd - 12 + 5) return fail(out, 'key does not match the question', keyStart);
  for (let i = 0; i < keyLength - 1; i++) {
    const b = buf[w + 12 + i];
    if (buf[keyStart + i] !== (b >= 0x41 && b <= 0x5a ? b | 0x20 : b)) return fail(out, 'key does not match the question', keyStart + i);
  }
  const flags = buf[keyStart + keyLength - 1] - 0x30;
  if (flags < 0 || flags > (KEY_EDNS | KEY_DO | KEY_CD)) return fail(out, 'bad key flags', keyStart + keyLength - 1);
  // Records: they must parse to the end of the wire, the TTL offsets must be exactly their TTL fields in order (OPT excluded).
  const wireEnd = w + wireLength;
  const records = ((buf[w + 6] << 8) | buf[w + 7]) + ((buf[w + 8] << 8) | buf[w + 9]) + ((buf[w + 10] << 8) | buf[w + 11]);
  const answerAndAuthority = ((buf[w + 6] << 8) | buf[w + 7]) + ((buf[w + 8] << 8) | buf[w + 9]);
  let q = nameEndAbs + 4;
  let k = 0;
  let opt = -1;
  for (let i = 0; i < records; i++) {
    q = trySkipName(buf, q, wireEnd);
    if (q < 0 || q + 10 > wireEnd) return fail(out, 'records do not parse', Math.max(q, w));
    if (((buf[q] << 8) | buf[q + 1]) === RecordType.OPT) {
      if (opt >= 0 || i < answerAndAuthority) return fail(out, 'misplaced or repeated OPT record', q);
      opt = q + 2 - w;
    } else {
      if (k >= n) return fail(out, 'TTL offsets do not match the records', q + 4);
      const t = p + 2 * k++;
      if (((buf[t] << 8) | buf[t + 1]) !== q + 4 - w) return fail(out, 'TTL offsets do not match the records', t);
      // Records keep their own TTLs (an RRset may outlive the entry's minimum), within RFC 2181 §8.
      if (buf[q + 4] >= 0x80) return fail(out, 'record TTL over 2^31 - 1', q + 4);
    }
    q += 10 + ((buf[q + 8] << 8) | buf[q + 9]);
  }
  if (q !== wireEnd) return fail(out, 'records do not end with the wire', Math.min(q, wireEnd));
  if (k !== n) return fail(out, 'more TTL offsets than records', p);
  if (opt >= 0 !== ((flags & KEY_EDNS) !== 0)) return fail(out, 'OPT record and key EDNS flag disagree', w);
  if (opt >= 0 && ((buf[w + opt + 4] & 0x80) !== 0) !== ((flags & KEY_DO) !== 0)) return fail(out, 'OPT DO bit and key DO flag disagree', w + opt + 4);
  out.kind = kind;
  out.ttl = ttl;
  out.storedAt = storedAt;
  out.expiresAt = expiresAt;
  out.keyStart = keyStart;
  out.keyLength = keyLength;
  out.wireStart = w;
  out.wireLength = wireLength;
  out.nameEnd = nameEnd;
  out.tableStart = tableStart;
  out.count = n;
  out.optPayload = opt;
  out.next = p + 2 * n;
  return true;
}

const layout = new EntryLayout();

/**
 * Reads one entry at `offset` ({@link checkEntry}, then the parts copied
 * out). The returned entry's `wire` is a copy (it never points into `buf`).
 * Throws {@link CacheSnapshotError} on anything {@link checkEntry} refuses.
 */
export function readEntry(buf: Buffer, offset = 0): ReadEntry {
  const e = layout;
  if (!checkEntry(buf, offset, e)) throw new CacheSnapshotError(e.error, e.errorAt);
  const wire = Buffer.allocUnsafeSlow(e.wireLength);
  buf.copy(wire, 0, e.wireStart, e.wireStart + e.wireLength);
  const offsets = new Array<number>(e.count);
  for (let i = 0, t = e.tableStart + 2; i < e.count; i++, t += 2) offsets[i] = (buf[t] << 8) | buf[t + 1];
  return {
    key: buf.latin1Slice(e.keyStart, e.keyStart + e.keyLength),
    entry: { wire, nameEnd: e.nameEnd, ttlOffsets: offsets, kind: KINDS[e.kind], ttl: e.ttl, storedAt: e.storedAt, expiresAt: e.expiresAt },
    next: e.next,
    optPayload: e.optPayload,
  };
}

/**
 * The whole store as one buffer: `HDC1`, the entry count (u32), then the
 * entries (stale ones included; {@link restoreSnapshot} drops what is too old).
 */
export function createSnapshot(store: CacheStore): Buffer {
  let total = 8;
  let count = 0;
  for (const [key, entry] of store.entries()) {
    total += entryEncodingLength(key, entry);
    count++;
  }
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(count, 4);
  let p = 8;
  for (const [key, entry] of store.entries()) p = writeEntry(out, p, key, entry);
  return out;
}

/**
 * Loads a snapshot into `store`. Everything is validated before anything is
 * stored: a corrupt snapshot throws {@link CacheSnapshotError} and leaves the
 * store untouched. Entries already past the store's stale window at `now` are
 * skipped. Returns how many entries were stored and skipped.
 */
export function restoreSnapshot(store: CacheStore, snapshot: Buffer, now: number = Date.now()): { restored: number; skipped: number } {
  if (snapshot.length < 8 || snapshot.readUInt32BE(0) !== MAGIC) throw new CacheSnapshotError('not a Heimdall cache snapshot', 0);
  const count = snapshot.readUInt32BE(4);
  const items: Array<{ key: string; entry: CacheEntry }> = [];
  let p = 8;
  for (let i = 0; i < count; i++) {
    const r = readEntry(snapshot, p);
    items.push({ key: r.key, entry: r.entry });
    p = r.next;
  }
  if (p !== snapshot.length) throw new CacheSnapshotError('trailing bytes after the last entry', p);
  let restored = 0;
  for (const { key, entry } of items) if (store.setRaw(key, entry, now)) restored++;
  return { restored, skipped: items.length - restored };
}
