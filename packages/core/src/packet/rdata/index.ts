/**
 * RDATA decoders and encoders for every supported type; any other type is
 * raw bytes (RFC 3597).
 */
import { decodeOptions, writeOptions } from '../edns-codec.js';
import type { EdnsOption } from '../edns.js';
import { PacketError } from '../errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../ip.js';
import type { RecordData } from '../message.js';
import { checkOffset, nameEnd, readName } from '../name.js';
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

/**
 * Types whose RDATA names may be compressed on output: the RFC 1035 types
 * (RFC 3597 §4). Every other type is written with uncompressed names.
 */
export const COMPRESSIBLE_TYPES: ReadonlySet<number> = new Set([
  RecordType.NS,
  RecordType.MD,
  RecordType.MF,
  RecordType.CNAME,
  RecordType.SOA,
  RecordType.MB,
  RecordType.MG,
  RecordType.MR,
  RecordType.PTR,
  RecordType.MINFO,
  RecordType.MX,
]);

function u16(buf: Buffer, o: number): number {
  return (buf[o] << 8) | buf[o + 1];
}
function u32(buf: Buffer, o: number): number {
  return buf[o] * 0x1000000 + ((buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]);
}

/** Reads a name inside RDATA and checks it ends within the RDATA. */
function rname(buf: Buffer, o: number, end: number, type: number): string {
  const s = readName(buf, o);
  if (nameEnd > end) throw badRdata(o, type, 'name runs past RDATA');
  return s;
}

function need(o: number, n: number, end: number, type: number): void {
  if (o + n > end) throw badRdata(o, type, 'too short');
}

function copy(buf: Buffer, from: number, to: number): Buffer {
  return Buffer.copyBytesFrom(buf, from, to - from);
}

function readCharString(buf: Buffer, o: number, end: number, type: number): number {
  if (o >= end) throw badRdata(o, type, 'missing character-string');
  const e = o + 1 + buf[o];
  if (e > end) throw badRdata(o, type, 'character-string runs past RDATA');
  return e;
}

/** Decodes a type bitmap (RFC 4034 §4.1.2) into ascending type numbers. */
function decodeTypeBitmap(buf: Buffer, o: number, end: number, type: number): number[] {
  const types: number[] = [];
  let lastWindow = -1;
  while (o < end) {
    need(o, 2, end, type);
    const window = buf[o];
    const len = buf[o + 1];
    if (window <= lastWindow) throw badRdata(o, type, 'type bitmap windows out of order');
    if (len < 1 || len > 32) throw badRdata(o, type, 'type bitmap length not in 1..32');
    need(o + 2, len, end, type);
    lastWindow = window;
    for (let i = 0; i < len; i++) {
      const byte = buf[o + 2 + i];
      if (byte === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if (byte & (0x80 >> bit)) types.push(window * 256 + i * 8 + bit);
      }
    }
    o += 2 + len;
  }
  return types;
}

function writeTypeBitmap(w: Writer, types: number[]): void {
  if (!Array.isArray(types)) badValue('type bitmap', types);
  for (const t of types) if (!isUint(t, 0xffff)) badValue('type in bitmap', t);
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

/**
 * Decodes the RDATA at `offset` (`length` octets) of a record of `type`.
 * Names may be compressed (pointers into the whole message are followed).
 *
 * @throws PacketError `BAD_RDATA` (and name errors) when the RDATA does not match its type.
 */
export function decodeRdata(buf: Buffer, type: number, offset: number, length: number): RecordData {
  checkOffset(buf, offset);
  checkOffset(buf, length);
  const end = offset + length;
  if (end > buf.length) throw new PacketError('TRUNCATED', offset, 'RDATA runs past the end of the message');
  const o = offset;
  switch (type) {
    case RecordType.A:
      if (length !== 4) throw badRdata(o, type, 'A RDATA must be 4 octets');
      return formatIPv4(buf, o);
    case RecordType.AAAA:
      if (length !== 16) throw badRdata(o, type, 'AAAA RDATA must be 16 octets');
      return formatIPv6(buf, o);
    case RecordType.NS:
    case RecordType.CNAME:
    case RecordType.DNAME:
    case RecordType.PTR:
    case RecordType.MD:
    case RecordType.MF:
    case RecordType.MB:
    case RecordType.MG:
    case RecordType.MR: {
      const s = rname(buf, o, end, type);
      if (nameEnd !== end) throw badRdata(o, type, 'trailing octets after name');
      return s;
    }
    case RecordType.MX:
    case RecordType.RT:
    case RecordType.KX: {
      need(o, 3, end, type);
      const exchange = rname(buf, o + 2, end, type);
      if (nameEnd !== end) throw badRdata(o, type, 'trailing octets after name');
      return { preference: u16(buf, o), exchange } satisfies MxData;
    }
    case RecordType.AFSDB: {
      need(o, 3, end, type);
      const hostname = rname(buf, o + 2, end, type);
      if (nameEnd !== end) throw badRdata(o, type, 'trailing octets after name');
      return { subtype: u16(buf, o), hostname } satisfies AfsdbData;
    }
    case RecordType.MINFO:
    case RecordType.RP: {
      const first = rname(buf, o, end, type);
      const second = rname(buf, nameEnd, end, type);
      if (nameEnd !== end) throw badRdata(o, type, 'trailing octets after names');
      return type === RecordType.MINFO
        ? ({ rmailbx: first, emailbx: second } satisfies MinfoData)
        : ({ mbox: first, txt: second } satisfies RpData);
    }
    case RecordType.TXT:
    case RecordType.SPF: {
      const strings: Buffer[] = [];
      let p = o;
      if (length === 0) throw badRdata(o, type, 'TXT needs at least one string');
      while (p < end) {
        const e = readCharString(buf, p, end, type);
        strings.push(copy(buf, p + 1, e));
        p = e;
      }
      return strings;
    }
    case RecordType.HINFO: {
      const e1 = readCharString(buf, o, end, type);
      const e2 = readCharString(buf, e1, end, type);
      if (e2 !== end) throw badRdata(o, type, 'trailing octets');
      return { cpu: buf.latin1Slice(o + 1, e1), os: buf.latin1Slice(e1 + 1, e2) } satisfies HinfoData;
    }
    case RecordType.SOA: {
      const mname = rname(buf, o, end, type);
      const rn = rname(buf, nameEnd, end, type);
      const p = nameEnd;
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
    }
    case RecordType.SRV: {
      need(o, 7, end, type);
      const target = rname(buf, o + 6, end, type);
      if (nameEnd !== end) throw badRdata(o, type, 'trailing octets after name');
      return { priority: u16(buf, o), weight: u16(buf, o + 2), port: u16(buf, o + 4), target } satisfies SrvData;
    }
    case RecordType.CAA: {
      need(o, 2, end, type);
      const tagLen = buf[o + 1];
      if (tagLen === 0) throw badRdata(o, type, 'empty CAA tag');
      need(o + 2, tagLen, end, type);
      return {
        flags: buf[o],
        tag: buf.latin1Slice(o + 2, o + 2 + tagLen),
        value: buf.latin1Slice(o + 2 + tagLen, end),
      } satisfies CaaData;
    }
    case RecordType.NAPTR: {
      need(o, 4, end, type);
      const e1 = readCharString(buf, o + 4, end, type);
      const e2 = readCharString(buf, e1, end, type);
      const e3 = readCharString(buf, e2, end, type);
      const replacement = rname(buf, e3, end, type);
      if (nameEnd !== end) throw badRdata(o, type, 'trailing octets after name');
      return {
        order: u16(buf, o),
        preference: u16(buf, o + 2),
        flags: buf.latin1Slice(o + 5, e1),
        services: buf.latin1Slice(e1 + 1, e2),
        regexp: buf.latin1Slice(e2 + 1, e3),
        replacement,
      } satisfies NaptrData;
    }
    case RecordType.DS:
    case RecordType.CDS:
    case RecordType.DLV:
    case RecordType.TA:
      need(o, 4, end, type);
      return {
        keyTag: u16(buf, o),
        algorithm: buf[o + 2],
        digestType: buf[o + 3],
        digest: copy(buf, o + 4, end),
      } satisfies DsData;
    case RecordType.DNSKEY:
    case RecordType.CDNSKEY:
      need(o, 4, end, type);
      return {
        flags: u16(buf, o),
        protocol: buf[o + 2],
        algorithm: buf[o + 3],
        publicKey: copy(buf, o + 4, end),
      } satisfies DnskeyData;
    case RecordType.RRSIG: {
      need(o, 19, end, type);
      const signerName = rname(buf, o + 18, end, type);
      return {
        typeCovered: u16(buf, o),
        algorithm: buf[o + 2],
        labels: buf[o + 3],
        originalTtl: u32(buf, o + 4),
        expiration: u32(buf, o + 8),
        inception: u32(buf, o + 12),
        keyTag: u16(buf, o + 16),
        signerName,
        signature: copy(buf, nameEnd, end),
      } satisfies RrsigData;
    }
    case RecordType.NSEC: {
      const nextDomain = rname(buf, o, end, type);
      return { nextDomain, types: decodeTypeBitmap(buf, nameEnd, end, type) } satisfies NsecData;
    }
    case RecordType.NSEC3: {
      need(o, 5, end, type);
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
    }
    case RecordType.NSEC3PARAM: {
      need(o, 5, end, type);
      const saltEnd = o + 5 + buf[o + 4];
      if (saltEnd !== end) throw badRdata(o, type, 'salt length does not match RDATA');
      return {
        hashAlgorithm: buf[o],
        flags: buf[o + 1],
        iterations: u16(buf, o + 2),
        salt: copy(buf, o + 5, saltEnd),
      } satisfies Nsec3ParamData;
    }
    case RecordType.TLSA:
    case RecordType.SMIMEA:
      need(o, 3, end, type);
      return {
        usage: buf[o],
        selector: buf[o + 1],
        matchingType: buf[o + 2],
        certificate: copy(buf, o + 3, end),
      } satisfies TlsaData;
    case RecordType.SSHFP:
      need(o, 2, end, type);
      return { algorithm: buf[o], fingerprintType: buf[o + 1], fingerprint: copy(buf, o + 2, end) } satisfies SshfpData;
    case RecordType.SVCB:
    case RecordType.HTTPS: {
      need(o, 3, end, type);
      const target = rname(buf, o + 2, end, type);
      return { priority: u16(buf, o), target, params: decodeSvcParams(buf, nameEnd, end, type) } satisfies SvcbData;
    }
    case RecordType.OPT:
      return decodeOptions(buf, o, end);
    default:
      return copy(buf, o, end);
  }
}

function obj<T>(data: unknown, type: number): T {
  if (data === null || typeof data !== 'object') badValue(`RDATA for type ${type}`, data);
  return data as T;
}

/**
 * Writes the RDATA of `type` (without RDLENGTH). Names are compressed only
 * for the RFC 1035 types ({@link COMPRESSIBLE_TYPES}).
 *
 * @throws PacketError `INVALID_VALUE` when `data` does not fit the type.
 */
export function writeRdata(w: Writer, type: number, data: RecordData): void {
  switch (type) {
    case RecordType.A:
      w.need(4);
      parseIPv4(data as string, w.buf, w.pos);
      w.pos += 4;
      return;
    case RecordType.AAAA:
      w.need(16);
      parseIPv6(data as string, w.buf, w.pos);
      w.pos += 16;
      return;
    case RecordType.NS:
    case RecordType.CNAME:
    case RecordType.PTR:
    case RecordType.MD:
    case RecordType.MF:
    case RecordType.MB:
    case RecordType.MG:
    case RecordType.MR:
      w.name(data as string, true);
      return;
    case RecordType.DNAME:
      w.name(data as string, false); // RFC 6672 §2.5: no compression of the target
      return;
    case RecordType.MX:
    case RecordType.RT:
    case RecordType.KX: {
      const d = obj<MxData>(data, type);
      w.u16(d.preference, 'preference');
      w.name(d.exchange, type === RecordType.MX);
      return;
    }
    case RecordType.AFSDB: {
      const d = obj<AfsdbData>(data, type);
      w.u16(d.subtype, 'AFSDB subtype');
      w.name(d.hostname, false);
      return;
    }
    case RecordType.MINFO: {
      const d = obj<MinfoData>(data, type);
      w.name(d.rmailbx, true);
      w.name(d.emailbx, true);
      return;
    }
    case RecordType.RP: {
      const d = obj<RpData>(data, type);
      w.name(d.mbox, false);
      w.name(d.txt, false);
      return;
    }
    case RecordType.TXT:
    case RecordType.SPF: {
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
      return;
    }
    case RecordType.HINFO: {
      const d = obj<HinfoData>(data, type);
      w.charString(d.cpu, 'HINFO cpu');
      w.charString(d.os, 'HINFO os');
      return;
    }
    case RecordType.SOA: {
      const d = obj<SoaData>(data, type);
      w.name(d.mname, true);
      w.name(d.rname, true);
      w.u32(d.serial, 'SOA serial');
      w.u32(d.refresh, 'SOA refresh');
      w.u32(d.retry, 'SOA retry');
      w.u32(d.expire, 'SOA expire');
      w.u32(d.minimum, 'SOA minimum');
      return;
    }
    case RecordType.SRV: {
      const d = obj<SrvData>(data, type);
      w.u16(d.priority, 'SRV priority');
      w.u16(d.weight, 'SRV weight');
      w.u16(d.port, 'SRV port');
      w.name(d.target, false);
      return;
    }
    case RecordType.CAA: {
      const d = obj<CaaData>(data, type);
      w.u8(d.flags, 'CAA flags');
      if (typeof d.tag !== 'string' || d.tag.length === 0) badValue('CAA tag', d.tag);
      w.charString(d.tag, 'CAA tag');
      w.latin1(d.value, 'CAA value');
      return;
    }
    case RecordType.NAPTR: {
      const d = obj<NaptrData>(data, type);
      w.u16(d.order, 'NAPTR order');
      w.u16(d.preference, 'NAPTR preference');
      w.charString(d.flags, 'NAPTR flags');
      w.charString(d.services, 'NAPTR services');
      w.charString(d.regexp, 'NAPTR regexp');
      w.name(d.replacement, false);
      return;
    }
    case RecordType.DS:
    case RecordType.CDS:
    case RecordType.DLV:
    case RecordType.TA: {
      const d = obj<DsData>(data, type);
      w.u16(d.keyTag, 'DS key tag');
      w.u8(d.algorithm, 'DS algorithm');
      w.u8(d.digestType, 'DS digest type');
      w.bytes(d.digest, 'DS digest');
      return;
    }
    case RecordType.DNSKEY:
    case RecordType.CDNSKEY: {
      const d = obj<DnskeyData>(data, type);
      w.u16(d.flags, 'DNSKEY flags');
      w.u8(d.protocol, 'DNSKEY protocol');
      w.u8(d.algorithm, 'DNSKEY algorithm');
      w.bytes(d.publicKey, 'DNSKEY public key');
      return;
    }
    case RecordType.RRSIG: {
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
      return;
    }
    case RecordType.NSEC: {
      const d = obj<NsecData>(data, type);
      w.name(d.nextDomain, false);
      writeTypeBitmap(w, d.types);
      return;
    }
    case RecordType.NSEC3: {
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
      return;
    }
    case RecordType.NSEC3PARAM: {
      const d = obj<Nsec3ParamData>(data, type);
      w.u8(d.hashAlgorithm, 'NSEC3PARAM hash algorithm');
      w.u8(d.flags, 'NSEC3PARAM flags');
      w.u16(d.iterations, 'NSEC3PARAM iterations');
      w.charString(d.salt, 'NSEC3PARAM salt');
      return;
    }
    case RecordType.TLSA:
    case RecordType.SMIMEA: {
      const d = obj<TlsaData>(data, type);
      w.u8(d.usage, 'TLSA usage');
      w.u8(d.selector, 'TLSA selector');
      w.u8(d.matchingType, 'TLSA matching type');
      w.bytes(d.certificate, 'TLSA data');
      return;
    }
    case RecordType.SSHFP: {
      const d = obj<SshfpData>(data, type);
      w.u8(d.algorithm, 'SSHFP algorithm');
      w.u8(d.fingerprintType, 'SSHFP fingerprint type');
      w.bytes(d.fingerprint, 'SSHFP fingerprint');
      return;
    }
    case RecordType.SVCB:
    case RecordType.HTTPS: {
      const d = obj<SvcbData>(data, type);
      w.u16(d.priority, 'SVCB priority');
      w.name(d.target, false); // RFC 9460 §2.2: TargetName is not compressed
      writeSvcParams(w, d.params ?? {});
      return;
    }
    case RecordType.OPT:
      if (!Array.isArray(data)) badValue('OPT options', data);
      writeOptions(w, data as EdnsOption[]);
      return;
    default:
      if (!(data instanceof Uint8Array)) badValue(`raw RDATA for type ${type} (a Buffer)`, data);
      w.bytes(data, 'RDATA');
  }
}
