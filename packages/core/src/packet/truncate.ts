/**
 * Fitting a response into a UDP payload (RFC 1035 §4.2.1, RFC 2181 §9, RFC 6891 §7).
 */
import { Buffer } from 'node:buffer';
import { asBuffer } from './decode.js';
import { PacketError, truncated } from './errors.js';
import { skipName } from './name.js';
import { MessageReader } from './reader.js';
import { RecordType } from './types.js';

/**
 * Returns a message of at most `maxSize` bytes: `buf` itself when it already
 * fits, otherwise a new buffer with the header and question kept, whole
 * records dropped from the end, and the OPT record kept (appended after the
 * kept records when it was among the dropped ones). TC is set when an answer
 * or authority record had to go; dropping only additional records does not
 * set TC (RFC 2181 §9). Compression pointers stay valid because only a
 * prefix of the records is kept and pointers point backwards.
 *
 * If even header, question and OPT do not fit, OPT is dropped too; the
 * header and question are always kept (so the result may exceed a
 * `maxSize` below their size). Callers usually pass
 * `reader.maxUdpPayload` of the query.
 *
 * @throws PacketError when `buf` is malformed.
 */
export function truncateForUdp(bytes: Buffer | Uint8Array, maxSize: number): Buffer {
  const buf = asBuffer(bytes);
  if (typeof maxSize !== 'number' || !(maxSize >= 0) || Math.floor(maxSize) !== maxSize) {
    throw new PacketError('INVALID_VALUE', -1, `maxSize must be a non-negative integer, not ${maxSize}`);
  }
  if (buf.length <= maxSize) return buf;
  const r = new MessageReader(buf);
  const len = buf.length;
  const counts = [r.ancount, r.nscount, r.arcount];
  let p = r.sectionOffset(0);
  const questionEnd = p;
  // Locate every record once.
  const ends: number[] = [];
  const sections: number[] = [];
  let optStart = -1;
  let optEnd = -1;
  let optIndex = -1;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]; i++) {
      const start = p;
      p = skipName(buf, p);
      if (p + 10 > len) throw truncated(p, 'a record header');
      const type = (buf[p] << 8) | buf[p + 1];
      p += 10 + ((buf[p + 8] << 8) | buf[p + 9]);
      if (p > len) throw truncated(p, 'RDATA');
      if (s === 2 && type === RecordType.OPT) {
        if (optStart >= 0) throw new PacketError('DUPLICATE_OPT', start, 'more than one OPT record');
        optStart = start;
        optEnd = p;
        optIndex = ends.length;
      }
      ends.push(p);
      sections.push(s);
    }
  }
  const optLen = optStart >= 0 ? optEnd - optStart : 0;
  // Keep the longest prefix of records that fits together with the OPT record.
  let keep = 0;
  let cut = questionEnd;
  while (keep < ends.length) {
    const end = ends[keep];
    const optExtra = optIndex >= 0 && optIndex > keep ? optLen : 0;
    if (end + optExtra > maxSize) break;
    keep++;
    cut = end;
  }
  let appendOpt = optIndex >= keep && optStart >= 0;
  if (appendOpt && cut + optLen > maxSize) appendOpt = false;
  const kept = [0, 0, 0];
  for (let i = 0; i < keep; i++) kept[sections[i]]++;
  const droppedMain = kept[0] < counts[0] || kept[1] < counts[1];
  const out = Buffer.allocUnsafe(cut + (appendOpt ? optLen : 0));
  buf.copy(out, 0, 0, cut);
  if (appendOpt) {
    buf.copy(out, cut, optStart, optEnd);
    kept[2]++;
  }
  out[6] = kept[0] >>> 8;
  out[7] = kept[0] & 0xff;
  out[8] = kept[1] >>> 8;
  out[9] = kept[1] & 0xff;
  out[10] = kept[2] >>> 8;
  out[11] = kept[2] & 0xff;
  if (droppedMain) out[2] |= 0x02;
  return out;
}
