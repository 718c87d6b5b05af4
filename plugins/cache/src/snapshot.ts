/**
 * A compact, validated binary form of cache entries, for a persistence
 * plugin (snapshots that survive restarts) or an L2 cache (Redis values).
 *
 * Reading never trusts the bytes: every length, offset and timestamp is
 * checked, and the key must be the one the stored question produces, so a
 * corrupt or foreign snapshot raises {@link CacheSnapshotError} instead of
 * putting bad entries in the cache.
 */
import { KEY_CD, KEY_DO, KEY_EDNS, plainNameEnd, trySkipName } from '@heimdall/core/wire';
import { type CacheEntry, ENTRY_KINDS } from './entry.js';
import type { CacheStore } from './store.js';

const ENTRY_VERSION = 1;
const MAGIC = 0x48444331; // "HDC1"
const KINDS = ENTRY_KINDS;

/** A snapshot or serialized entry that does not hold up. `offset` is where reading failed. */
export class CacheSnapshotError extends Error {
  readonly code = 'CORRUPT_SNAPSHOT';
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`plugin/cache: corrupt snapshot at byte ${offset}: ${message}`);
    this.name = 'CacheSnapshotError';
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
 * Reads one entry at `offset`. The returned entry's `wire` is a copy (it
 * never points into `buf`). Throws {@link CacheSnapshotError} on anything
 * inconsistent: lengths, timestamps, a key that is not the one the stored
 * question produces, records that do not parse, TTL offsets that are not
 * exactly the TTL fields of the records (OPT excluded), an OPT record that
 * disagrees with the key's EDNS/DO flags.
 */
export function readEntry(buf: Buffer, offset = 0): ReadEntry {
  let p = offset;
  const need = (n: number, what: string): void => {
    if (p + n > buf.length) throw new CacheSnapshotError(`truncated ${what}`, p);
  };
  need(24, 'entry header');
  if (buf[p] !== ENTRY_VERSION) throw new CacheSnapshotError(`unknown entry version ${buf[p]}`, p);
  const kind = KINDS[buf[p + 1]];
  if (kind === undefined) throw new CacheSnapshotError(`unknown entry kind ${buf[p + 1]}`, p + 1);
  const ttl = buf.readUInt32BE(p + 2);
  const storedAt = buf.readDoubleBE(p + 6);
  const expiresAt = buf.readDoubleBE(p + 14);
  if (ttl === 0 || ttl > 0x7fffffff) throw new CacheSnapshotError(`bad TTL ${ttl}`, p + 2);
  if (!Number.isSafeInteger(storedAt) || storedAt < 0 || expiresAt !== storedAt + ttl * 1000) {
    throw new CacheSnapshotError('inconsistent timestamps', p + 6);
  }
  p += 22;
  need(2, 'key length');
  const keyLength = buf.readUInt16BE(p);
  p += 2;
  need(keyLength, 'key');
  const keyStart = p;
  const key = buf.latin1Slice(p, p + keyLength);
  p += keyLength;
  need(2, 'wire length');
  const wireLength = buf.readUInt16BE(p);
  p += 2;
  need(wireLength, 'wire');
  const wire = Buffer.allocUnsafeSlow(wireLength);
  buf.copy(wire, 0, p, p + wireLength);
  const wireStart = p;
  p += wireLength;
  need(4, 'offsets');
  const nameEnd = buf.readUInt16BE(p);
  const n = buf.readUInt16BE(p + 2);
  p += 4;
  need(2 * n, 'offsets');
  if (wireLength < 17 || ((wire[4] << 8) | wire[5]) !== 1 || (wire[2] & 0x80) === 0) throw new CacheSnapshotError('not a DNS response', wireStart);
  if (plainNameEnd(wire, 12) !== nameEnd || nameEnd + 4 > wireLength) throw new CacheSnapshotError('bad question', wireStart + 12);
  // The key must be the one this question produces: lowercased name, type, class, one flag character.
  if (keyLength !== nameEnd - 12 + 5) throw new CacheSnapshotError('key does not match the question', keyStart);
  for (let i = 0; i < keyLength - 1; i++) {
    const b = wire[12 + i];
    if (buf[keyStart + i] !== (b >= 0x41 && b <= 0x5a ? b | 0x20 : b)) throw new CacheSnapshotError('key does not match the question', keyStart + i);
  }
  const flagChar = buf[keyStart + keyLength - 1] - 0x30;
  if (flagChar < 0 || flagChar > (KEY_EDNS | KEY_DO | KEY_CD)) throw new CacheSnapshotError('bad key flags', keyStart + keyLength - 1);
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) {
    const o = buf.readUInt16BE(p + 2 * i);
    if (o < nameEnd + 4 || o + 4 > wireLength) throw new CacheSnapshotError(`TTL offset ${o} outside the records`, p + 2 * i);
    // Records keep their own TTLs (an RRset may outlive the entry's minimum), within RFC 2181 §8.
    if (wire.readUInt32BE(o) > 0x7fffffff) throw new CacheSnapshotError('record TTL over 2^31 - 1', wireStart + o);
    offsets.push(o);
  }
  p += 2 * n;
  const optPayload = checkRecords(wire, nameEnd, offsets, flagChar, wireStart);
  return { key, entry: { wire, nameEnd, ttlOffsets: offsets, kind, ttl, storedAt, expiresAt }, next: p, optPayload };
}

/**
 * Walks the records of a stored response: they must parse to the end of the
 * wire, the TTL offsets must be exactly their TTL fields in order (OPT
 * excluded), and an OPT record must be present exactly when the key says
 * EDNS, with the key's DO bit. Returns the offset of the OPT's CLASS field, or -1.
 */
function checkRecords(wire: Buffer, nameEnd: number, offsets: readonly number[], flags: number, at: number): number {
  const records = ((wire[6] << 8) | wire[7]) + ((wire[8] << 8) | wire[9]) + ((wire[10] << 8) | wire[11]);
  const answerAndAuthority = ((wire[6] << 8) | wire[7]) + ((wire[8] << 8) | wire[9]);
  let p = nameEnd + 4;
  let k = 0;
  let opt = -1;
  for (let i = 0; i < records; i++) {
    p = trySkipName(wire, p);
    if (p < 0 || p + 10 > wire.length) throw new CacheSnapshotError('records do not parse', at + Math.max(p, 0));
    const type = (wire[p] << 8) | wire[p + 1];
    if (type === 41) {
      if (opt >= 0 || i < answerAndAuthority) throw new CacheSnapshotError('misplaced or repeated OPT record', at + p);
      opt = p + 2;
    } else if (offsets[k++] !== p + 4) throw new CacheSnapshotError('TTL offsets do not match the records', at + p + 4);
    p += 10 + ((wire[p + 8] << 8) | wire[p + 9]);
  }
  if (p !== wire.length) throw new CacheSnapshotError('records do not end with the wire', at + Math.min(p, wire.length));
  if (k !== offsets.length) throw new CacheSnapshotError('more TTL offsets than records', at);
  if ((opt >= 0) !== ((flags & KEY_EDNS) !== 0)) throw new CacheSnapshotError('OPT record and key EDNS flag disagree', at);
  if (opt >= 0 && ((wire[opt + 4] & 0x80) !== 0) !== ((flags & KEY_DO) !== 0)) throw new CacheSnapshotError('OPT DO bit and key DO flag disagree', at + opt + 4);
  return opt;
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
