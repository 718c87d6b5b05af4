/**
 * RDATA codecs as one table: an entry per supported record type with its
 * decoder, its encoder, its minimum RDATA length, whether its names may be
 * compressed on output and whether its format applies to class IN only.
 * Every other type (and a class-IN format in another class) is raw bytes
 * (RFC 3597).
 */
import { Buffer } from 'node:buffer';
import { decodeOptions, writeOptions } from '../edns-codec.js';
import type { EdnsOption } from '../edns.js';
import { PacketError } from '../errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../wire/ip.js';
import type { RecordData } from '../message.js';
import { checkOffset, NameCursor, readName } from '../name.js';
import { RecordType } from '../types.js';
import { badValue, isUint, type Writer } from '../writer.js';
import { decodeSvcParams, writeSvcParams } from './svcb.js';
import type {
  AfsdbData,
  CaaData,
  DnskeyData,
  DsData,
  HinfoData,
  MinfoData,
  MxData,
  NaptrData,
  Nsec3Data,
  Nsec3ParamData,
  NsecData,
  RpData,
  RrsigData,
  SoaData,
  SrvData,
  SshfpData,
  SvcbData,
  TlsaData,
} from './types.js';

/** @internal */
export function badRdata(offset: number, type: number, why: string): PacketError {
  return new PacketError('BAD_RDATA', offset, `malformed RDATA of type ${type}: ${why}`);
}

/** The IN class (RFC 1035 §3.2.4). */
const CLASS_IN = 1;

/**
 * The codec of one record type's RDATA.
 * @internal
 */
export interface RdataCodec {
  /**
   * Decodes RDATA from `o` to `end` (at least {@link minLength} octets, within
   * `buf`). Names may be compressed; `cur` tracks where a name ended and the
   * message's name-expansion budget.
   */
  decode(buf: Buffer, o: number, end: number, type: number, cur: NameCursor): RecordData;
  /** Writes the RDATA (without RDLENGTH). */
  encode(w: Writer, data: RecordData, type: number): void;
  /** Fewest RDATA octets a well-formed record of this type has (shorter is `BAD_RDATA` before decoding). */
  readonly minLength: number;
  /** RDATA names may be compressed on output: only the RFC 1035 types (RFC 3597 §4). */
  readonly compress: boolean;
  /** The format is defined for class IN only; in any other class the RDATA is opaque bytes (RFC 3597 §4). */
  readonly classIn: boolean;
}

function u16(buf: Buffer, o: number): number {
  return (buf[o] << 8) | buf[o + 1];
}
function u32(buf: Buffer, o: number): number {
  return buf[o] * 0x1000000 + ((buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]);
}

/** Reads a name inside RDATA and checks it ends within the RDATA (`cur.end` is after it). */
function rname(buf: Buffer, o: number, end: number, type: number, cur: NameCursor): string {
  const s = readName(buf, o, cur);
  if (cur.end > end) throw badRdata(o, type, 'name runs past RDATA');
  return s;
}

/** Like {@link rname}, for a name that must end the RDATA. */
function lastName(buf: Buffer, o: number, end: number, type: number, cur: NameCursor, start: number): string {
  const s = rname(buf, o, end, type, cur);
  if (cur.end !== end) throw badRdata(start, type, 'trailing octets after name');
  return s;
}

function need(o: number, n: number, end: number, type: number): void {
  if (o + n > end) throw badRdata(o, type, 'too short');
}

const EMPTY = Buffer.alloc(0);

/**
 * A copy of `buf[from..to)` (so decoded data never aliases the message).
 * `allocUnsafe` + `copy`: on Node 20 `Buffer.copyBytesFrom` costs ~1 µs per
 * call, which made RDATA-heavy messages slow to decode. Empty fields share
 * one zero-length Buffer.
 */
function copy(buf: Buffer, from: number, to: number): Buffer {
  if (to === from) return EMPTY;
  const out = Buffer.allocUnsafe(to - from);
  buf.copy(out, 0, from, to);
  return out;
}

function readCharString(buf: Buffer, o: number, end: number, type: number): number {
  if (o >= end) throw badRdata(o, type, 'missing character-string');
  const e = o + 1 + buf[o];
  if (e > end) throw badRdata(o, type, 'character-string runs past RDATA');
  return e;
}

function obj<T>(data: unknown, type: number): T {
  if (data === null || typeof data !== 'object') badValue(`RDATA for type ${type}`, data);
  return data as T;
}

// ---- type bitmaps (NSEC, NSEC3) ------------------------------------------------------------

/**
 * The wire bytes of each decoded type bitmap, by the `types` array decoded
 * from them: a bitmap may be written non-canonically (trailing zero octets,
 * empty windows) and still be valid, and rewriting it would break the
 * record's signature. The encoder writes these bytes back while `types`
 * still lists what they say. Weak: dropped with the decoded object.
 */
const bitmapBytes = new WeakMap<readonly number[], Buffer>();

/** Decodes a type bitmap (RFC 4034 §4.1.2) into ascending type numbers. */
function decodeTypeBitmap(buf: Buffer, o: number, end: number, type: number): number[] {
  const start = o;
  const types: number[] = [];
  let lastWindow = -1;
  let canonical = true;
  while (o < end) {
    need(o, 2, end, type);
    const window = buf[o];
    const len = buf[o + 1];
    if (window <= lastWindow) throw badRdata(o, type, 'type bitmap windows out of order');
    if (len < 1 || len > 32) throw badRdata(o, type, 'type bitmap length not in 1..32');
    need(o + 2, len, end, type);
    lastWindow = window;
    if (buf[o + 1 + len] === 0) canonical = false; // trailing zero octet (or an empty window)
    for (let i = 0; i < len; i++) {
      const byte = buf[o + 2 + i];
      if (byte === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if (byte & (0x80 >> bit)) types.push(window * 256 + i * 8 + bit);
      }
    }
    o += 2 + len;
  }
  if (!canonical) bitmapBytes.set(types, copy(buf, start, end));
  return types;
}

function writeTypeBitmap(w: Writer, types: number[]): void {
  if (!Array.isArray(types)) badValue('type bitmap', types);
  for (const t of types) if (!isUint(t, 0xffff)) badValue('type in bitmap', t);
  const raw = bitmapBytes.get(types);
  if (raw !== undefined && sameTypes(types, decodeTypeBitmap(raw, 0, raw.length, 0))) {
    w.bytes(raw, 'bitmap');
    return;
  }
  const sorted = [...types].sort((a, b) => a - b);
  let i = 0;
  const bits = new Uint8Array(32);
  while (i < sorted.length) {
    const t = sorted[i];
    const window = t >>> 8;
    bits.fill(0);
    let max = 0;
    while (i < sorted.length && sorted[i] >>> 8 === window) {
      const low = sorted[i] & 0xff;
      bits[low >>> 3] |= 0x80 >>> (low & 7);
      if ((low >>> 3) + 1 > max) max = (low >>> 3) + 1;
      i++;
    }
    w.u8(window, 'bitmap window');
    w.u8(max, 'bitmap length');
    w.bytes(bits.subarray(0, max), 'bitmap');
  }
}

/** Same set of types (`a` as given by the caller, `b` ascending without duplicates). */
function sameTypes(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- the table ---------------------------------------------------------------------------

const A: RdataCodec = {
  minLength: 4,
  compress: false,
  classIn: true,
  decode(buf, o, end, type) {
    if (end - o !== 4) throw badRdata(o, type, 'A RDATA must be 4 octets');
    return formatIPv4(buf, o);
  },
  encode(w, data) {
    w.need(4);
    parseIPv4(data as string, w.buf, w.pos);
    w.pos += 4;
  },
};

const AAAA: RdataCodec = {
  minLength: 16,
  compress: false,
  classIn: true,
  decode(buf, o, end, type) {
    if (end - o !== 16) throw badRdata(o, type, 'AAAA RDATA must be 16 octets');
    return formatIPv6(buf, o);
  },
  encode(w, data) {
    w.need(16);
    parseIPv6(data as string, w.buf, w.pos);
    w.pos += 16;
  },
};

/** A single name (NS, CNAME, PTR, the obsolete mailbox types; DNAME without compression). */
function nameCodec(compress: boolean): RdataCodec {
  return {
    minLength: 1,
    compress,
    classIn: false,
    decode: (buf, o, end, type, cur) => lastName(buf, o, end, type, cur, o),
    encode(w, data) {
      w.name(data as string, compress);
    },
  };
}

/** MX, RT, KX: preference + name. */
function exchangeCodec(compress: boolean, classIn: boolean): RdataCodec {
  return {
    minLength: 3,
    compress,
    classIn,
    decode(buf, o, end, type, cur) {
      const exchange = lastName(buf, o + 2, end, type, cur, o);
      return { preference: u16(buf, o), exchange } satisfies MxData;
    },
    encode(w, data, type) {
      const d = obj<MxData>(data, type);
      w.u16(d.preference, 'preference');
      w.name(d.exchange, compress);
    },
  };
}

const AFSDB: RdataCodec = {
  minLength: 3,
  compress: false,
  classIn: false,
  decode(buf, o, end, type, cur) {
    const hostname = lastName(buf, o + 2, end, type, cur, o);
    return { subtype: u16(buf, o), hostname } satisfies AfsdbData;
  },
  encode(w, data, type) {
    const d = obj<AfsdbData>(data, type);
    w.u16(d.subtype, 'AFSDB subtype');
    w.name(d.hostname, false);
  },
};

/** MINFO (compressible) and RP (not): two names. */
function twoNames(compress: boolean): RdataCodec {
  return {
    minLength: 2,
    compress,
    classIn: false,
    decode(buf, o, end, type, cur) {
      const first = rname(buf, o, end, type, cur);
      const second = rname(buf, cur.end, end, type, cur);
      if (cur.end !== end) throw badRdata(o, type, 'trailing octets after names');
      return type === RecordType.MINFO ? ({ rmailbx: first, emailbx: second } satisfies MinfoData) : ({ mbox: first, txt: second } satisfies RpData);
    },
    encode(w, data, type) {
      if (type === RecordType.MINFO) {
        const d = obj<MinfoData>(data, type);
        w.name(d.rmailbx, compress);
        w.name(d.emailbx, compress);
      } else {
        const d = obj<RpData>(data, type);
        w.name(d.mbox, compress);
        w.name(d.txt, compress);
      }
    },
  };
}

const TXT: RdataCodec = {
  minLength: 1,
  compress: false,
  classIn: false,
  decode(buf, o, end, type) {
    const strings: Buffer[] = [];
    let p = o;
    while (p < end) {
      const e = readCharString(buf, p, end, type);
      strings.push(copy(buf, p + 1, e));
      p = e;
    }
    return strings;
  },
  encode(w, data) {
    const list = Array.isArray(data) ? data : typeof data === 'string' || data instanceof Uint8Array ? [data] : null;
    if (list === null || list.length === 0) badValue('TXT data', data);
    for (const s of list as Array<string | Uint8Array>) {
      if (typeof s === 'string') {
        const n = Buffer.byteLength(s, 'utf8');
        if (n > 255) badValue('TXT string (over 255 octets)', s);
        w.u8(n, 'TXT length');
        w.utf8(s, 'TXT string');
      } else {
        w.charString(s, 'TXT string');
      }
    }
  },
};

const HINFO: RdataCodec = {
  minLength: 2,
  compress: false,
  classIn: false,
  decode(buf, o, end, type) {
    const e1 = readCharString(buf, o, end, type);
    const e2 = readCharString(buf, e1, end, type);
    if (e2 !== end) throw badRdata(o, type, 'trailing octets');
    return { cpu: buf.latin1Slice(o + 1, e1), os: buf.latin1Slice(e1 + 1, e2) } satisfies HinfoData;
  },
  encode(w, data, type) {
    const d = obj<HinfoData>(data, type);
    w.charString(d.cpu, 'HINFO cpu');
    w.charString(d.os, 'HINFO os');
  },
};

const SOA: RdataCodec = {
  minLength: 22,
  compress: true,
  classIn: false,
  decode(buf, o, end, type, cur) {
    const mname = rname(buf, o, end, type, cur);
    const rn = rname(buf, cur.end, end, type, cur);
    const p = cur.end;
    if (p + 20 !== end) throw badRdata(p, type, 'SOA needs 20 octets after the names');
    return {
      mname,
      rname: rn,
      serial: u32(buf, p),
      refresh: u32(buf, p + 4),
      retry: u32(buf, p + 8),
      expire: u32(buf, p + 12),
      minimum: u32(buf, p + 16),
    } satisfies SoaData;
  },
  encode(w, data, type) {
    const d = obj<SoaData>(data, type);
    w.name(d.mname, true);
    w.name(d.rname, true);
    w.u32(d.serial, 'SOA serial');
    w.u32(d.refresh, 'SOA refresh');
    w.u32(d.retry, 'SOA retry');
    w.u32(d.expire, 'SOA expire');
    w.u32(d.minimum, 'SOA minimum');
  },
};

const SRV: RdataCodec = {
  minLength: 7,
  compress: false,
  classIn: true,
  decode(buf, o, end, type, cur) {
    const target = lastName(buf, o + 6, end, type, cur, o);
    return { priority: u16(buf, o), weight: u16(buf, o + 2), port: u16(buf, o + 4), target } satisfies SrvData;
  },
  encode(w, data, type) {
    const d = obj<SrvData>(data, type);
    w.u16(d.priority, 'SRV priority');
    w.u16(d.weight, 'SRV weight');
    w.u16(d.port, 'SRV port');
    w.name(d.target, false);
  },
};

const CAA: RdataCodec = {
  minLength: 2,
  compress: false,
  classIn: false,
  decode(buf, o, end, type) {
    const tagLen = buf[o + 1];
    if (tagLen === 0) throw badRdata(o, type, 'empty CAA tag');
    need(o + 2, tagLen, end, type);
    return {
      flags: buf[o],
      tag: buf.latin1Slice(o + 2, o + 2 + tagLen),
      value: buf.latin1Slice(o + 2 + tagLen, end),
    } satisfies CaaData;
  },
  encode(w, data, type) {
    const d = obj<CaaData>(data, type);
    w.u8(d.flags, 'CAA flags');
    if (typeof d.tag !== 'string' || d.tag.length === 0) badValue('CAA tag', d.tag);
    w.charString(d.tag, 'CAA tag');
    w.latin1(d.value, 'CAA value');
  },
};

const NAPTR: RdataCodec = {
  minLength: 4,
  compress: false,
  classIn: true,
  decode(buf, o, end, type, cur) {
    const e1 = readCharString(buf, o + 4, end, type);
    const e2 = readCharString(buf, e1, end, type);
    const e3 = readCharString(buf, e2, end, type);
    const replacement = lastName(buf, e3, end, type, cur, o);
    return {
      order: u16(buf, o),
      preference: u16(buf, o + 2),
      flags: buf.latin1Slice(o + 5, e1),
      services: buf.latin1Slice(e1 + 1, e2),
      regexp: buf.latin1Slice(e2 + 1, e3),
      replacement,
    } satisfies NaptrData;
  },
  encode(w, data, type) {
    const d = obj<NaptrData>(data, type);
    w.u16(d.order, 'NAPTR order');
    w.u16(d.preference, 'NAPTR preference');
    w.charString(d.flags, 'NAPTR flags');
    w.charString(d.services, 'NAPTR services');
    w.charString(d.regexp, 'NAPTR regexp');
    w.name(d.replacement, false);
  },
};

/** DS, CDS, DLV, TA. */
const DS: RdataCodec = {
  minLength: 4,
  compress: false,
  classIn: false,
  decode: (buf, o, end) => ({ keyTag: u16(buf, o), algorithm: buf[o + 2], digestType: buf[o + 3], digest: copy(buf, o + 4, end) }) satisfies DsData,
  encode(w, data, type) {
    const d = obj<DsData>(data, type);
    w.u16(d.keyTag, 'DS key tag');
    w.u8(d.algorithm, 'DS algorithm');
    w.u8(d.digestType, 'DS digest type');
    w.bytes(d.digest, 'DS digest');
  },
};

/** DNSKEY, CDNSKEY. */
const DNSKEY: RdataCodec = {
  minLength: 4,
  compress: false,
  classIn: false,
  decode: (buf, o, end) => ({ flags: u16(buf, o), protocol: buf[o + 2], algorithm: buf[o + 3], publicKey: copy(buf, o + 4, end) }) satisfies DnskeyData,
  encode(w, data, type) {
    const d = obj<DnskeyData>(data, type);
    w.u16(d.flags, 'DNSKEY flags');
    w.u8(d.protocol, 'DNSKEY protocol');
    w.u8(d.algorithm, 'DNSKEY algorithm');
    w.bytes(d.publicKey, 'DNSKEY public key');
  },
};

const RRSIG: RdataCodec = {
  minLength: 19,
  compress: false,
  classIn: false,
  decode(buf, o, end, type, cur) {
    const signerName = rname(buf, o + 18, end, type, cur);
    return {
      typeCovered: u16(buf, o),
      algorithm: buf[o + 2],
      labels: buf[o + 3],
      originalTtl: u32(buf, o + 4),
      expiration: u32(buf, o + 8),
      inception: u32(buf, o + 12),
      keyTag: u16(buf, o + 16),
      signerName,
      signature: copy(buf, cur.end, end),
    } satisfies RrsigData;
  },
  encode(w, data, type) {
    const d = obj<RrsigData>(data, type);
    w.u16(d.typeCovered, 'RRSIG type covered');
    w.u8(d.algorithm, 'RRSIG algorithm');
    w.u8(d.labels, 'RRSIG labels');
    w.u32(d.originalTtl, 'RRSIG original TTL');
    w.u32(d.expiration, 'RRSIG expiration');
    w.u32(d.inception, 'RRSIG inception');
    w.u16(d.keyTag, 'RRSIG key tag');
    w.name(d.signerName, false);
    w.bytes(d.signature, 'RRSIG signature');
  },
};

const NSEC: RdataCodec = {
  minLength: 1,
  compress: false,
  classIn: false,
  decode(buf, o, end, type, cur) {
    const nextDomain = rname(buf, o, end, type, cur);
    return { nextDomain, types: decodeTypeBitmap(buf, cur.end, end, type) } satisfies NsecData;
  },
  encode(w, data, type) {
    const d = obj<NsecData>(data, type);
    w.name(d.nextDomain, false);
    writeTypeBitmap(w, d.types);
  },
};

const NSEC3: RdataCodec = {
  minLength: 5,
  compress: false,
  classIn: false,
  decode(buf, o, end, type) {
    const saltEnd = o + 5 + buf[o + 4];
    need(saltEnd, 1, end, type);
    if (buf[saltEnd] === 0) throw badRdata(saltEnd, type, 'empty next hashed owner name');
    const hashEnd = saltEnd + 1 + buf[saltEnd];
    if (hashEnd > end) throw badRdata(saltEnd, type, 'hash runs past RDATA');
    return {
      hashAlgorithm: buf[o],
      flags: buf[o + 1],
      iterations: u16(buf, o + 2),
      salt: copy(buf, o + 5, saltEnd),
      nextHashedOwner: copy(buf, saltEnd + 1, hashEnd),
      types: decodeTypeBitmap(buf, hashEnd, end, type),
    } satisfies Nsec3Data;
  },
  encode(w, data, type) {
    const d = obj<Nsec3Data>(data, type);
    w.u8(d.hashAlgorithm, 'NSEC3 hash algorithm');
    w.u8(d.flags, 'NSEC3 flags');
    w.u16(d.iterations, 'NSEC3 iterations');
    w.charString(d.salt, 'NSEC3 salt');
    if (!(d.nextHashedOwner instanceof Uint8Array) || d.nextHashedOwner.length === 0) {
      badValue('NSEC3 next hashed owner', d.nextHashedOwner);
    }
    w.charString(d.nextHashedOwner, 'NSEC3 next hashed owner');
    writeTypeBitmap(w, d.types);
  },
};

const NSEC3PARAM: RdataCodec = {
  minLength: 5,
  compress: false,
  classIn: false,
  decode(buf, o, end, type) {
    const saltEnd = o + 5 + buf[o + 4];
    if (saltEnd !== end) throw badRdata(o, type, 'salt length does not match RDATA');
    return { hashAlgorithm: buf[o], flags: buf[o + 1], iterations: u16(buf, o + 2), salt: copy(buf, o + 5, saltEnd) } satisfies Nsec3ParamData;
  },
  encode(w, data, type) {
    const d = obj<Nsec3ParamData>(data, type);
    w.u8(d.hashAlgorithm, 'NSEC3PARAM hash algorithm');
    w.u8(d.flags, 'NSEC3PARAM flags');
    w.u16(d.iterations, 'NSEC3PARAM iterations');
    w.charString(d.salt, 'NSEC3PARAM salt');
  },
};

/** TLSA, SMIMEA. */
const TLSA: RdataCodec = {
  minLength: 3,
  compress: false,
  classIn: false,
  decode: (buf, o, end) => ({ usage: buf[o], selector: buf[o + 1], matchingType: buf[o + 2], certificate: copy(buf, o + 3, end) }) satisfies TlsaData,
  encode(w, data, type) {
    const d = obj<TlsaData>(data, type);
    w.u8(d.usage, 'TLSA usage');
    w.u8(d.selector, 'TLSA selector');
    w.u8(d.matchingType, 'TLSA matching type');
    w.bytes(d.certificate, 'TLSA data');
  },
};

const SSHFP: RdataCodec = {
  minLength: 2,
  compress: false,
  classIn: false,
  decode: (buf, o, end) => ({ algorithm: buf[o], fingerprintType: buf[o + 1], fingerprint: copy(buf, o + 2, end) }) satisfies SshfpData,
  encode(w, data, type) {
    const d = obj<SshfpData>(data, type);
    w.u8(d.algorithm, 'SSHFP algorithm');
    w.u8(d.fingerprintType, 'SSHFP fingerprint type');
    w.bytes(d.fingerprint, 'SSHFP fingerprint');
  },
};

/** SVCB, HTTPS (RFC 9460: class IN; TargetName never compressed, §2.2). */
const SVCB: RdataCodec = {
  minLength: 3,
  compress: false,
  classIn: true,
  decode(buf, o, end, type, cur) {
    const target = rname(buf, o + 2, end, type, cur);
    return { priority: u16(buf, o), target, params: decodeSvcParams(buf, cur.end, end, type) } satisfies SvcbData;
  },
  encode(w, data, type) {
    const d = obj<SvcbData>(data, type);
    w.u16(d.priority, 'SVCB priority');
    w.name(d.target, false);
    writeSvcParams(w, d.params ?? {});
  },
};

/** OPT (its CLASS is the UDP payload size, so any class). */
const OPT: RdataCodec = {
  minLength: 0,
  compress: false,
  classIn: false,
  decode: (buf, o, end) => decodeOptions(buf, o, end),
  encode(w, data) {
    if (!Array.isArray(data)) badValue('OPT options', data);
    writeOptions(w, data as EdnsOption[]);
  },
};

/** Any other type (or a class-IN type in another class): the RDATA octets (RFC 3597). */
const RAW: RdataCodec = {
  minLength: 0,
  compress: false,
  classIn: false,
  decode: (buf, o, end) => copy(buf, o, end),
  encode(w, data, type) {
    if (!(data instanceof Uint8Array)) badValue(`raw RDATA for type ${type} (a Buffer)`, data);
    w.bytes(data, 'RDATA');
  },
};

const T = RecordType;
const compressedName = nameCodec(true);

/**
 * The RDATA codecs by record type. Compressible types are exactly the RFC
 * 1035 ones (RFC 3597 §4); DNAME targets are not compressed (RFC 6672 §2.5),
 * nor are the names of any later type.
 * @internal
 */
export const RDATA_CODECS: ReadonlyMap<number, RdataCodec> = new Map<number, RdataCodec>([
  [T.A, A],
  [T.NS, compressedName],
  [T.MD, compressedName],
  [T.MF, compressedName],
  [T.CNAME, compressedName],
  [T.SOA, SOA],
  [T.MB, compressedName],
  [T.MG, compressedName],
  [T.MR, compressedName],
  [T.PTR, compressedName],
  [T.HINFO, HINFO],
  [T.MINFO, twoNames(true)],
  [T.MX, exchangeCodec(true, false)],
  [T.TXT, TXT],
  [T.RP, twoNames(false)],
  [T.AFSDB, AFSDB],
  [T.RT, exchangeCodec(false, false)],
  [T.AAAA, AAAA],
  [T.SRV, SRV],
  [T.NAPTR, NAPTR],
  [T.KX, exchangeCodec(false, true)],
  [T.DNAME, nameCodec(false)],
  [T.OPT, OPT],
  [T.DS, DS],
  [T.SSHFP, SSHFP],
  [T.RRSIG, RRSIG],
  [T.NSEC, NSEC],
  [T.DNSKEY, DNSKEY],
  [T.NSEC3, NSEC3],
  [T.NSEC3PARAM, NSEC3PARAM],
  [T.TLSA, TLSA],
  [T.SMIMEA, TLSA],
  [T.CDS, DS],
  [T.CDNSKEY, DNSKEY],
  [T.SVCB, SVCB],
  [T.HTTPS, SVCB],
  [T.SPF, TXT],
  [T.CAA, CAA],
  [T.TA, DS],
  [T.DLV, DS],
]);

// A dense array for the decode/encode hot path (types up to 65535 fit; unlisted slots are RAW).
const BY_TYPE: RdataCodec[] = [];
for (const [type, codec] of RDATA_CODECS) BY_TYPE[type] = codec;

/**
 * The codec of RDATA of `type` in class `klass` (RFC 3597: unknown types,
 * and class-IN formats in another class, are raw bytes).
 * @internal
 */
export function rdataCodec(type: number, klass: number): RdataCodec {
  const c = type < BY_TYPE.length ? BY_TYPE[type] : undefined;
  return c === undefined || (c.classIn && klass !== CLASS_IN) ? RAW : c;
}

/**
 * Types whose RDATA names may be compressed on output: the RFC 1035 types
 * (RFC 3597 §4). Every other type is written with uncompressed names.
 * Derived from the codec table.
 */
export const COMPRESSIBLE_TYPES: ReadonlySet<number> = new Set([...RDATA_CODECS].filter(([, c]) => c.compress).map(([t]) => t));

/**
 * @internal Decodes RDATA with a caller-owned cursor (a whole message's
 * decode shares one, so its name-expansion budget covers the message).
 */
export function decodeRdataAt(buf: Buffer, type: number, klass: number, offset: number, length: number, cur: NameCursor): RecordData {
  const codec = rdataCodec(type, klass);
  if (length < codec.minLength) throw badRdata(offset, type, 'too short');
  return codec.decode(buf, offset, offset + length, type, cur);
}

/**
 * Decodes the RDATA at `offset` (`length` octets) of a record of `type` and
 * class `klass` (default IN; in other classes, class-IN formats such as A,
 * AAAA, SRV, NAPTR, SVCB/HTTPS decode as raw bytes, RFC 3597 §4). Names may
 * be compressed (pointers into the whole message are followed).
 *
 * @throws PacketError `BAD_RDATA` (and name errors) when the RDATA does not match its type.
 */
export function decodeRdata(buf: Buffer, type: number, offset: number, length: number, klass: number = CLASS_IN): RecordData {
  checkOffset(buf, offset);
  checkOffset(buf, length);
  if (offset + length > buf.length) throw new PacketError('TRUNCATED', offset, 'RDATA runs past the end of the message');
  return decodeRdataAt(buf, type, klass, offset, length, new NameCursor(buf.length));
}

/**
 * Writes the RDATA of `type` in class `klass` (default IN), without
 * RDLENGTH. Names are compressed only for the RFC 1035 types
 * ({@link COMPRESSIBLE_TYPES}); class-IN formats in another class take a raw
 * Buffer.
 *
 * @throws PacketError `INVALID_VALUE` when `data` does not fit the type.
 */
export function writeRdata(w: Writer, type: number, data: RecordData, klass: number = CLASS_IN): void {
  rdataCodec(type, klass).encode(w, data, type);
}
