/**
 * SVCB/HTTPS SvcParams (RFC 9460 §2.2 and §7; dohpath RFC 9461; ohttp RFC 9540).
 */
import { Buffer } from 'node:buffer';
import { PacketError } from '../errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../wire/ip.js';
import { badValue, isUint, type Writer } from '../writer.js';
import type { RawSvcParam, SvcParams } from './types.js';

/** SvcParamKey numbers (RFC 9460 §14.3.2). */
export const SvcParamKey = {
  mandatory: 0,
  alpn: 1,
  'no-default-alpn': 2,
  port: 3,
  ipv4hint: 4,
  ech: 5,
  ipv6hint: 6,
  dohpath: 7,
  ohttp: 8,
} as const;

function bad(offset: number, type: number, why: string): PacketError {
  return new PacketError('BAD_RDATA', offset, `malformed SvcParams of type ${type}: ${why}`);
}

/** @internal Decodes SvcParams from `o` to `end`; keys must be strictly ascending (RFC 9460 §2.2). */
export function decodeSvcParams(buf: Buffer, o: number, end: number, type: number): SvcParams {
  const params: SvcParams = {};
  let last = -1;
  while (o < end) {
    if (o + 4 > end) throw bad(o, type, 'truncated SvcParam header');
    const key = (buf[o] << 8) | buf[o + 1];
    const len = (buf[o + 2] << 8) | buf[o + 3];
    const v = o + 4;
    const ve = v + len;
    if (ve > end) throw bad(o, type, 'SvcParam value runs past RDATA');
    if (key <= last) throw bad(o, type, 'SvcParamKeys not in strictly ascending order');
    last = key;
    switch (key) {
      case 0: {
        if (len === 0 || len % 2 !== 0) throw bad(o, type, 'mandatory must list 16-bit keys');
        const keys: number[] = [];
        for (let p = v; p < ve; p += 2) {
          const k = (buf[p] << 8) | buf[p + 1];
          // RFC 9460 §8: strictly increasing, and never "mandatory" itself.
          if (k === 0 || (keys.length > 0 && k <= keys[keys.length - 1])) throw bad(p, type, 'bad mandatory key list');
          keys.push(k);
        }
        params.mandatory = keys;
        break;
      }
      case 1: {
        if (len === 0) throw bad(o, type, 'empty alpn');
        const ids: string[] = [];
        let p = v;
        while (p < ve) {
          const n = buf[p];
          if (n === 0 || p + 1 + n > ve) throw bad(p, type, 'bad alpn-id');
          ids.push(buf.latin1Slice(p + 1, p + 1 + n));
          p += 1 + n;
        }
        params.alpn = ids;
        break;
      }
      case 2:
        if (len !== 0) throw bad(o, type, 'no-default-alpn must be empty');
        params.noDefaultAlpn = true;
        break;
      case 3:
        if (len !== 2) throw bad(o, type, 'port must be 2 octets');
        params.port = (buf[v] << 8) | buf[v + 1];
        break;
      case 4: {
        if (len === 0 || len % 4 !== 0) throw bad(o, type, 'ipv4hint must be a non-empty list of addresses');
        const list: string[] = [];
        for (let p = v; p < ve; p += 4) list.push(formatIPv4(buf, p));
        params.ipv4hint = list;
        break;
      }
      case 5:
        params.ech = Buffer.copyBytesFrom(buf, v, len);
        break;
      case 6: {
        if (len === 0 || len % 16 !== 0) throw bad(o, type, 'ipv6hint must be a non-empty list of addresses');
        const list: string[] = [];
        for (let p = v; p < ve; p += 16) list.push(formatIPv6(buf, p));
        params.ipv6hint = list;
        break;
      }
      case 7:
        params.dohpath = buf.toString('utf8', v, ve);
        break;
      case 8:
        if (len !== 0) throw bad(o, type, 'ohttp must be empty');
        params.ohttp = true;
        break;
      default:
        (params.unknown ??= []).push({ key, value: Buffer.copyBytesFrom(buf, v, len) });
    }
    o = ve;
  }
  return params;
}

const ipTmp = new Uint8Array(16);

/** @internal Writes SvcParams in ascending key order. */
export function writeSvcParams(w: Writer, p: SvcParams): void {
  if (p === null || typeof p !== 'object') badValue('SVCB params', p);
  if (p.unknown !== undefined && !Array.isArray(p.unknown)) badValue('SVCB unknown params', p.unknown);
  for (const u of p.unknown ?? []) {
    if (u === null || typeof u !== 'object' || !(u.value instanceof Uint8Array)) badValue('SVCB unknown param', u);
    if (!isUint(u.key, 0xffff)) badValue('SvcParam key', u.key);
  }
  const unknown: RawSvcParam[] = p.unknown ? [...p.unknown].sort((a, b) => a.key - b.key) : [];
  let u = 0;
  let last = -1;
  const raw = (upTo: number): void => {
    while (u < unknown.length && unknown[u].key < upTo) {
      const { key, value } = unknown[u++];
      if (key <= last) badValue('SvcParam key (duplicate)', key);
      last = key;
      w.u16(key, 'SvcParam key');
      w.u16(value.length, 'SvcParam length');
      w.bytes(value, 'SvcParam value');
    }
  };
  const begin = (key: number): number => {
    raw(key);
    if (key <= last) badValue('SvcParam key (duplicate)', key);
    last = key;
    w.u16(key, 'SvcParam key');
    w.need(2);
    w.pos += 2;
    return w.pos;
  };
  const finish = (at: number): void => {
    const len = w.pos - at;
    if (len > 0xffff) badValue('SvcParam length', len);
    w.buf[at - 2] = len >>> 8;
    w.buf[at - 1] = len & 0xff;
  };
  if (p.mandatory !== undefined) {
    if (!Array.isArray(p.mandatory) || p.mandatory.length === 0) badValue('mandatory', p.mandatory);
    for (const k of p.mandatory) if (!isUint(k, 0xffff)) badValue('mandatory key', k);
    const at = begin(0);
    let prev = 0;
    for (const k of [...p.mandatory].sort((a, b) => a - b)) {
      if (k <= prev) badValue('mandatory key (0 or duplicate)', k);
      w.u16(k, 'mandatory key');
      prev = k;
    }
    finish(at);
  }
  if (p.alpn !== undefined) {
    if (!Array.isArray(p.alpn) || p.alpn.length === 0) badValue('alpn', p.alpn);
    const at = begin(1);
    for (const id of p.alpn) {
      if (typeof id !== 'string' || id.length === 0) badValue('alpn-id', id);
      w.charString(id, 'alpn-id');
    }
    finish(at);
  }
  if (p.noDefaultAlpn) finish(begin(2));
  if (p.port !== undefined) {
    const at = begin(3);
    w.u16(p.port, 'port');
    finish(at);
  }
  if (p.ipv4hint !== undefined) {
    if (!Array.isArray(p.ipv4hint) || p.ipv4hint.length === 0) badValue('ipv4hint', p.ipv4hint);
    const at = begin(4);
    for (const a of p.ipv4hint) {
      parseIPv4(a, ipTmp, 0);
      w.bytes(ipTmp.subarray(0, 4), 'ipv4hint');
    }
    finish(at);
  }
  if (p.ech !== undefined) {
    const at = begin(5);
    w.bytes(p.ech, 'ech');
    finish(at);
  }
  if (p.ipv6hint !== undefined) {
    if (!Array.isArray(p.ipv6hint) || p.ipv6hint.length === 0) badValue('ipv6hint', p.ipv6hint);
    const at = begin(6);
    for (const a of p.ipv6hint) {
      parseIPv6(a, ipTmp, 0);
      w.bytes(ipTmp, 'ipv6hint');
    }
    finish(at);
  }
  if (p.dohpath !== undefined) {
    const at = begin(7);
    w.utf8(p.dohpath, 'dohpath');
    finish(at);
  }
  if (p.ohttp) finish(begin(8));
  raw(0x10000);
}
