/**
 * Lazy, zero-copy reading of a message: the hot-path view.
 */
import { Buffer } from 'node:buffer';
import { asBuffer } from './decode.js';
import type { Edns } from './edns.js';
import { decodeOptions } from './edns-codec.js';
import { PacketError, truncated } from './errors.js';
import type { RecordData } from './message.js';
import { copyNameLower, MAX_NAME_LENGTH, NameCursor, readName, StringIntern, skipName } from './name.js';
import { decodeRdataAt } from './rdata/index.js';
import { RecordType } from './types.js';

/** A message section holding records. */
export type Section = 'answer' | 'authority' | 'additional';

const SECTIONS: readonly Section[] = ['answer', 'authority', 'additional'];

// cacheKey() builds its string here: 255 name octets + 4.
const keyBuf = Buffer.allocUnsafe(MAX_NAME_LENGTH + 4);
const keys = new StringIntern(16384);

/**
 * One record of a {@link MessageReader}, located but not decoded: the owner
 * name and RDATA are decoded only when `name` / `data()` are used.
 * Offsets are absolute in `reader.buffer`.
 */
export class RecordView {
  /** Section the record is in. */
  readonly section: Section;
  /** Offset of the owner name (possibly a compression pointer). */
  readonly nameOffset: number;
  readonly type: number;
  /** CLASS field (for OPT: the UDP payload size). */
  readonly class: number;
  /**
   * TTL field, unsigned 32-bit; a TTL with the top bit set reads as 0 (RFC
   * 2181 §8, as in `decode`). For OPT: the raw extended rcode, version, flags.
   */
  readonly ttl: number;
  /** Offset of the 4 TTL octets, for patching TTLs in cached wire data. */
  readonly ttlOffset: number;
  /** Offset of the RDATA. */
  readonly rdataOffset: number;
  /** RDLENGTH. */
  readonly rdataLength: number;
  private readonly reader: MessageReader;
  private _name: string | undefined = undefined;

  /** @internal Created by {@link MessageReader.records}. */
  constructor(
    reader: MessageReader,
    section: Section,
    nameOffset: number,
    type: number,
    klass: number,
    ttl: number,
    ttlOffset: number,
    rdataOffset: number,
    rdataLength: number,
  ) {
    this.reader = reader;
    this.section = section;
    this.nameOffset = nameOffset;
    this.type = type;
    this.class = klass;
    this.ttl = ttl;
    this.ttlOffset = ttlOffset;
    this.rdataOffset = rdataOffset;
    this.rdataLength = rdataLength;
  }

  /** Owner name in presentation format, decoded on first use. */
  get name(): string {
    if (this._name === undefined) {
      const buf = this.reader.buffer;
      const o = this.nameOffset;
      // The usual answer owner is a pointer to the question name: reuse its string.
      this._name = buf[o] === 0xc0 && buf[o + 1] === 12 && this.reader.qdcount > 0 ? this.reader.qname : readName(buf, o, this.reader.nameCursor());
    }
    return this._name;
  }

  /** Offset just after this record. */
  get end(): number {
    return this.rdataOffset + this.rdataLength;
  }

  /**
   * Decoded RDATA (see `RecordData`; class-IN formats only in class IN, RFC
   * 3597 §4); decodes on every call. Names share the reader's expansion budget.
   */
  data(): RecordData {
    return decodeRdataAt(this.reader.buffer, this.type, this.class, this.rdataOffset, this.rdataLength, this.reader.nameCursor());
  }

  /** The RDATA octets as a view into the message (no copy; may contain compression pointers). */
  rdata(): Buffer {
    return this.reader.buffer.subarray(this.rdataOffset, this.rdataOffset + this.rdataLength);
  }
}

/** RFC 6891 §6.1.1: OPT only in the additional section (FORMERR, as in `decode`). */
function optOutside(offset: number): PacketError {
  return new PacketError('BAD_OPT', offset, 'OPT record outside the additional section');
}

/** Iterator over records of one or all sections (see {@link MessageReader.records}). */
export class RecordIterator implements IterableIterator<RecordView> {
  private readonly reader: MessageReader;
  private pos: number;
  private section: number;
  private readonly lastSection: number;
  private left: number;

  /** @internal */
  constructor(reader: MessageReader, first: number, last: number) {
    this.reader = reader;
    this.section = first;
    this.lastSection = last;
    this.pos = reader.sectionOffset(first);
    this.left = reader.sectionCount(first);
  }

  /** Locates the next record (bounds-checked; throws `PacketError` on malformed data). */
  next(): IteratorResult<RecordView> {
    while (this.left === 0) {
      if (this.section >= this.lastSection) return { done: true, value: undefined };
      this.section++;
      this.left = this.reader.sectionCount(this.section);
    }
    this.left--;
    const buf = this.reader.buffer;
    const start = this.pos;
    const p = skipName(buf, start);
    if (p + 10 > buf.length) throw truncated(p, 'a record header');
    const rdlen = (buf[p + 8] << 8) | buf[p + 9];
    const end = p + 10 + rdlen;
    if (end > buf.length) throw truncated(p + 10, 'RDATA');
    this.pos = end;
    const type = (buf[p] << 8) | buf[p + 1];
    if (type === RecordType.OPT && this.section < 2) throw optOutside(start);
    const t0 = buf[p + 4];
    return {
      done: false,
      value: new RecordView(
        this.reader,
        SECTIONS[this.section],
        start,
        type,
        (buf[p + 2] << 8) | buf[p + 3],
        t0 >= 0x80 && type !== RecordType.OPT ? 0 : t0 * 0x1000000 + ((buf[p + 5] << 16) | (buf[p + 6] << 8) | buf[p + 7]),
        p + 4,
        p + 10,
        rdlen,
      ),
    };
  }

  /** The iterator itself, so `for…of` and spreading work. */
  [Symbol.iterator](): RecordIterator {
    return this;
  }
}

/**
 * Lazy, zero-copy view over a wire message. The constructor checks only
 * that the 12-byte header is there; the question is parsed on first use;
 * records are located on iteration and decoded on demand. Nothing is ever
 * read past the buffer: malformed data raises {@link PacketError} at the
 * moment it is reached.
 *
 * @example
 * const q = new MessageReader(bytes);
 * if (!q.qr && q.qtype === RecordType.A) cache.get(q.cacheKey() + (q.dnssecOk ? '1' : '0'));
 */
export class MessageReader {
  /** The message bytes (not copied; do not mutate while reading). */
  readonly buffer: Buffer;
  private _qEnd = -1;
  private _qtype = 0;
  private _qclass = 0;
  private _qname: string | undefined = undefined;
  private _qPtr = false;
  private _key: string | undefined = undefined;
  // Start offsets of answer/authority/additional sections, -1 until known.
  private _s0 = -1;
  private _s1 = -1;
  private _s2 = -1;
  // Offset of the OPT record's name: -2 not searched, -1 none.
  private _opt = -2;
  private _edns: Edns | null | undefined = undefined;
  private _cursor: NameCursor | null = null;

  /** @throws PacketError `TRUNCATED` when shorter than a header. */
  constructor(bytes: Buffer | Uint8Array) {
    const buf = asBuffer(bytes);
    if (buf.length < 12) throw truncated(buf.length, 'the header');
    this.buffer = buf;
  }

  /** Message ID. */
  get id(): number {
    return (this.buffer[0] << 8) | this.buffer[1];
  }
  /** QR: this is a response. */
  get qr(): boolean {
    return (this.buffer[2] & 0x80) !== 0;
  }
  get opcode(): number {
    return (this.buffer[2] >>> 3) & 0xf;
  }
  /** Authoritative answer. */
  get aa(): boolean {
    return (this.buffer[2] & 0x04) !== 0;
  }
  /** Truncated. */
  get tc(): boolean {
    return (this.buffer[2] & 0x02) !== 0;
  }
  /** Recursion desired. */
  get rd(): boolean {
    return (this.buffer[2] & 0x01) !== 0;
  }
  /** Recursion available. */
  get ra(): boolean {
    return (this.buffer[3] & 0x80) !== 0;
  }
  /** The reserved Z bit. */
  get z(): boolean {
    return (this.buffer[3] & 0x40) !== 0;
  }
  /** Authentic data. */
  get ad(): boolean {
    return (this.buffer[3] & 0x20) !== 0;
  }
  /** Checking disabled. */
  get cd(): boolean {
    return (this.buffer[3] & 0x10) !== 0;
  }
  /** The 4 header rcode bits (see {@link fullRcode} for the EDNS-extended value). */
  get rcode(): number {
    return this.buffer[3] & 0xf;
  }
  /** The 16-bit flags word (octets 2–3). */
  get flags(): number {
    return (this.buffer[2] << 8) | this.buffer[3];
  }
  get qdcount(): number {
    return (this.buffer[4] << 8) | this.buffer[5];
  }
  get ancount(): number {
    return (this.buffer[6] << 8) | this.buffer[7];
  }
  get nscount(): number {
    return (this.buffer[8] << 8) | this.buffer[9];
  }
  get arcount(): number {
    return (this.buffer[10] << 8) | this.buffer[11];
  }

  /**
   * @internal The cursor names of this message are read with (created on
   * first use): its budget bounds what all names read through this reader
   * may expand to, as in `decode`.
   */
  nameCursor(): NameCursor {
    return (this._cursor ??= new NameCursor(this.buffer.length));
  }

  private question(): void {
    const buf = this.buffer;
    const qd = (buf[4] << 8) | buf[5];
    if (qd === 0) {
      this._qEnd = 12;
      return;
    }
    // RFC 9619: at most one question; QDCOUNT > 1 is FORMERR (as in `decode`).
    if (qd > 1) throw new PacketError('BAD_QUESTION', 4, `QDCOUNT ${qd}: more than one question`);
    // skipName, noting whether the name ends in a pointer.
    const len = buf.length;
    let e = 12;
    for (;;) {
      if (e >= len) throw truncated(e, 'a name');
      const b = buf[e];
      if (b === 0) {
        e++;
        break;
      }
      if (b >= 0xc0) {
        if (e + 1 >= len) throw truncated(e, 'a compression pointer');
        e += 2;
        this._qPtr = true;
        break;
      }
      if (b >= 0x40) throw new PacketError('BAD_LABEL', e, `unsupported label type 0x${b.toString(16)}`);
      e += b + 1;
      if (e - 12 >= MAX_NAME_LENGTH) throw new PacketError('NAME_TOO_LONG', 12, 'name longer than 255 octets');
    }
    if (e + 4 > len) throw truncated(e, 'the question');
    // A compressed question name is followed once here, so that once the
    // question parsed, qname and cacheKey() cannot fail later (the pipeline
    // relies on this to answer FORMERR up front).
    if (this._qPtr) copyNameLower(buf, 12, keyBuf, 0);
    this._qtype = (buf[e] << 8) | buf[e + 1];
    this._qclass = (buf[e + 2] << 8) | buf[e + 3];
    this._qEnd = e + 4;
  }

  /** Offset of the question name (always 12). */
  get questionNameOffset(): number {
    return 12;
  }
  /**
   * Offset just after the first question (12 when there is none). Reading it
   * (or any question getter) validates the whole question name, pointers
   * included, so `qname` and `cacheKey()` cannot throw afterwards.
   */
  get questionEnd(): number {
    if (this._qEnd < 0) this.question();
    return this._qEnd;
  }
  /** QTYPE of the first question (0 when there is none). */
  get qtype(): number {
    if (this._qEnd < 0) this.question();
    return this._qtype;
  }
  /** QCLASS of the first question (0 when there is none). */
  get qclass(): number {
    if (this._qEnd < 0) this.question();
    return this._qclass;
  }
  /** Name of the first question in presentation format (`""` when there is none). Decoded once. */
  get qname(): string {
    if (this._qname === undefined) {
      if (this._qEnd < 0) this.question();
      this._qname = this._qEnd === 12 ? '' : readName(this.buffer, 12);
    }
    return this._qname;
  }

  /**
   * Cache key of the first question, built from its wire bytes without
   * per-label strings, computed once.
   *
   * Format (stable): the question name in uncompressed wire form (length
   * octets and labels, root octet included) with ASCII letters lowercased,
   * then QTYPE (2 octets) and QCLASS (2 octets), each octet one character of
   * a latin1 string (so `key.length === nameWireLength + 4`). Distinct
   * questions give distinct keys, and names differing only in case give the
   * same key. Callers append their own discriminators after it, e.g. the
   * DO and CD bits: `key + String.fromCharCode((q.dnssecOk ? 1 : 0) | (q.cd ? 2 : 0))`.
   * A message without a question has the key `""`.
   *
   * @throws PacketError if the question is malformed.
   */
  cacheKey(): string {
    if (this._key !== undefined) return this._key;
    if (this._qEnd < 0) this.question();
    const q = this._qEnd;
    if (q === 12) return (this._key = '');
    const buf = this.buffer;
    // Usual case: an uncompressed question name, keyed straight from the wire bytes.
    if (!this._qPtr) return (this._key = keys.getLowered(buf, 12, q - 4, q));
    let n = copyNameLower(buf, 12, keyBuf, 0);
    keyBuf[n++] = buf[q - 4];
    keyBuf[n++] = buf[q - 3];
    keyBuf[n++] = buf[q - 2];
    keyBuf[n++] = buf[q - 1];
    return (this._key = keys.get(keyBuf, n));
  }

  /** @internal Offset of a section's first record (0 answer, 1 authority, 2 additional). */
  sectionOffset(section: number): number {
    if (this._s0 < 0) {
      if (this._qEnd < 0) this.question();
      this._s0 = this._qEnd;
    }
    if (section === 0) return this._s0;
    if (this._s1 < 0) this._s1 = this.skipRecords(this._s0, this.ancount);
    if (section === 1) return this._s1;
    if (this._s2 < 0) this._s2 = this.skipRecords(this._s1, this.nscount);
    return this._s2;
  }

  /** @internal Record count of a section. */
  sectionCount(section: number): number {
    return section === 0 ? this.ancount : section === 1 ? this.nscount : this.arcount;
  }

  private skipRecords(p: number, n: number): number {
    const buf = this.buffer;
    for (let i = 0; i < n; i++) {
      const start = p;
      p = skipName(buf, p);
      if (p + 10 > buf.length) throw truncated(p, 'a record header');
      if (((buf[p] << 8) | buf[p + 1]) === RecordType.OPT) throw optOutside(start);
      p += 10 + ((buf[p + 8] << 8) | buf[p + 9]);
      if (p > buf.length) throw truncated(p, 'RDATA');
    }
    return p;
  }

  /**
   * Iterates the records of one section, or of all three in order when
   * `section` is omitted. Each step locates one record (bounds-checked) and
   * allocates one {@link RecordView}; nothing is decoded until asked.
   */
  records(section?: Section): RecordIterator {
    if (section === undefined) return new RecordIterator(this, 0, 2);
    const i = section === 'answer' ? 0 : section === 'authority' ? 1 : section === 'additional' ? 2 : -1;
    if (i < 0) throw new PacketError('INVALID_VALUE', -1, `unknown section ${JSON.stringify(String(section))}`);
    return new RecordIterator(this, i, i);
  }

  /** Offset of the OPT record in the additional section, or -1. */
  get optOffset(): number {
    if (this._opt === -2) {
      const buf = this.buffer;
      let p = this.sectionOffset(2);
      let found = -1;
      const n = this.arcount;
      for (let i = 0; i < n; i++) {
        const start = p;
        p = skipName(buf, p);
        if (p + 10 > buf.length) throw truncated(p, 'a record header');
        if (((buf[p] << 8) | buf[p + 1]) === RecordType.OPT) {
          if (found >= 0) throw new PacketError('DUPLICATE_OPT', start, 'more than one OPT record');
          if (p !== start + 1) throw new PacketError('BAD_OPT', start, 'OPT record with a non-root owner name');
          found = start;
        }
        p += 10 + ((buf[p + 8] << 8) | buf[p + 9]);
        if (p > buf.length) throw truncated(p, 'RDATA');
      }
      this._opt = found;
    }
    return this._opt;
  }

  /** True when the message has an OPT record. */
  get hasEdns(): boolean {
    return this.optOffset >= 0;
  }

  /** The DO bit of the OPT record (false without EDNS). Does not decode options. */
  get dnssecOk(): boolean {
    const o = this.optOffset;
    return o >= 0 && (this.buffer[o + 7] & 0x80) !== 0;
  }

  /**
   * UDP payload size the sender can receive: the OPT CLASS, raised to 512
   * when lower (RFC 6891 §6.2.3), or 512 without EDNS (RFC 1035).
   */
  get maxUdpPayload(): number {
    const o = this.optOffset;
    if (o < 0) return 512;
    const size = (this.buffer[o + 3] << 8) | this.buffer[o + 4];
    return Math.max(size, 512);
  }

  /** The 12-bit rcode: header bits extended by the OPT record (RFC 6891 §6.1.3). */
  get fullRcode(): number {
    const o = this.optOffset;
    return (this.buffer[3] & 0xf) | (o >= 0 ? this.buffer[o + 5] << 4 : 0);
  }

  /**
   * The OPT record's content, or null without one. Decoded (options
   * included) on first call and cached.
   *
   * @throws PacketError `DUPLICATE_OPT`, `BAD_OPT`, `BAD_OPTION`, …
   */
  edns(): Edns | null {
    if (this._edns !== undefined) return this._edns;
    const o = this.optOffset;
    if (o < 0) return (this._edns = null);
    const buf = this.buffer;
    const rdata = o + 11;
    const end = rdata + ((buf[o + 9] << 8) | buf[o + 10]);
    return (this._edns = {
      udpPayloadSize: (buf[o + 3] << 8) | buf[o + 4],
      extendedRcode: buf[o + 5],
      version: buf[o + 6],
      dnssecOk: (buf[o + 7] & 0x80) !== 0,
      flags: ((buf[o + 7] & 0x7f) << 8) | buf[o + 8],
      options: decodeOptions(buf, rdata, end),
    });
  }
}
