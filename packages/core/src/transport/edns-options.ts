/**
 * EDNS options the stream transports add to responses on their own:
 * edns-tcp-keepalive (RFC 7828) on TCP and TLS, and padding (RFC 7830) to
 * the block length of RFC 8467 on encrypted transports. Byte-level; a
 * response is only touched when its OPT record is its last record (the
 * usual place; a record after it, e.g. TSIG, is left alone).
 */
import { Buffer } from 'node:buffer';
import { trySkipName } from '../wire/name.js';

/** EDNS option codes. */
export const OPTION_KEEPALIVE = 11;
export const OPTION_PADDING = 12;
/** RFC 8467 §4.1: responders pad to a multiple of 468 octets. */
export const RESPONSE_PAD_BLOCK = 468;

/** Bits of {@link queryOptions}. */
export const HAS_OPT = 1;
export const HAS_KEEPALIVE = 2;
export const HAS_PADDING = 4;

/**
 * Offset of the RDLENGTH field of the message's OPT record when that record
 * is the last one and ends the message; -1 otherwise (no OPT, malformed, or
 * OPT not last).
 */
export function lastOptRdlength(buf: Buffer): number {
  if (buf.length < 12) return -1;
  const arcount = buf.readUInt16BE(10);
  if (arcount === 0) return -1;
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + arcount;
  let p = 12;
  for (let i = buf.readUInt16BE(4); i > 0; i--) {
    p = trySkipName(buf, p);
    if (p < 0) return -1;
    p += 4;
  }
  let rdlenAt = -1;
  for (let i = 0; i < records; i++) {
    const name = trySkipName(buf, p);
    if (name < 0 || name + 10 > buf.length) return -1;
    rdlenAt = buf.readUInt16BE(name) === 41 ? name + 8 : -1;
    p = name + 10 + buf.readUInt16BE(name + 8);
  }
  return rdlenAt >= 0 && p === buf.length ? rdlenAt : -1;
}

/** {@link HAS_OPT} | {@link HAS_KEEPALIVE} | {@link HAS_PADDING} of a query (0: no OPT as its last record). */
export function queryOptions(query: Buffer): number {
  const at = lastOptRdlength(query);
  if (at < 0) return 0;
  return HAS_OPT | optionBits(query, at);
}

function optionBits(buf: Buffer, rdlenAt: number): number {
  let bits = 0;
  const end = rdlenAt + 2 + buf.readUInt16BE(rdlenAt);
  for (let p = rdlenAt + 2; p + 4 <= end; p += 4 + buf.readUInt16BE(p + 2)) {
    const code = buf.readUInt16BE(p);
    if (code === OPTION_KEEPALIVE) bits |= HAS_KEEPALIVE;
    else if (code === OPTION_PADDING) bits |= HAS_PADDING;
  }
  return bits;
}

/**
 * `response` with a keepalive option (`keepalive` ≥ 0: the idle timeout in
 * units of 100 ms) and/or padding to a multiple of `padBlock` octets
 * (0: none) appended to its OPT record. Options the response already has
 * are not added twice; padding is skipped when it would pass 65 535 octets.
 * Returns `response` itself when nothing applies.
 */
export function addResponseOptions(response: Buffer, keepalive: number, padBlock: number): Buffer {
  if (keepalive < 0 && padBlock <= 0) return response;
  const at = lastOptRdlength(response);
  if (at < 0) return response;
  const have = optionBits(response, at);
  const addKeepalive = keepalive >= 0 && (have & HAS_KEEPALIVE) === 0;
  let len = response.length + (addKeepalive ? 6 : 0);
  let pad = -1;
  if (padBlock > 0 && (have & HAS_PADDING) === 0) {
    pad = (padBlock - ((len + 4) % padBlock)) % padBlock;
    if (len + 4 + pad > 65_535) pad = -1;
    else len += 4 + pad;
  }
  if (len === response.length) return response;
  const out = Buffer.allocUnsafe(len);
  response.copy(out, 0);
  let p = response.length;
  if (addKeepalive) {
    out.writeUInt16BE(OPTION_KEEPALIVE, p);
    out.writeUInt16BE(2, p + 2);
    out.writeUInt16BE(Math.min(keepalive, 65_535), p + 4);
    p += 6;
  }
  if (pad >= 0) {
    out.writeUInt16BE(OPTION_PADDING, p);
    out.writeUInt16BE(pad, p + 2);
    out.fill(0, p + 4, p + 4 + pad);
  }
  out.writeUInt16BE(response.readUInt16BE(at) + (len - response.length), at);
  return out;
}
