/**
 * Byte-level checks on DNS messages that the transports need on every reply:
 * ID, QR/TC bits and "same question". Parsing proper (names, records, EDNS)
 * is the codec's job (`MessageReader` in `@heimdall/core`); these helpers only
 * touch the fixed header and compare the question's bytes, which is what
 * RFC 5452 §9.1 asks of a reply before it is accepted.
 */
import type { Buffer } from 'node:buffer';
import { MessageReader } from '@heimdall/core/packet';
import { copyWithId, equalsIgnoreCase, setId } from '@heimdall/core/wire';

export { copyWithId, setId };

/** Size of the fixed DNS header. */
export const HEADER_SIZE = 12;

/** Offset just past the only question (name + type + class), or -1 if there is not exactly one or it is malformed. */
export function questionEnd(buf: Buffer): number {
  try {
    const r = new MessageReader(buf);
    return r.qdcount === 1 ? r.questionEnd : -1;
  } catch {
    return -1;
  }
}

/**
 * True when `reply` carries exactly the question of `query` (whose question
 * ends at `qEnd`): one question, same name ignoring ASCII case, same type and
 * class. Type and class bytes are compared exactly (0x41 is a type, not 'A').
 */
export function sameQuestion(query: Buffer, qEnd: number, reply: Buffer): boolean {
  if (reply.length < qEnd || reply.readUInt16BE(4) !== 1) return false;
  const nameEnd = qEnd - 4;
  if (!equalsIgnoreCase(query, HEADER_SIZE, reply, HEADER_SIZE, nameEnd - HEADER_SIZE)) return false;
  for (let i = nameEnd; i < qEnd; i++) if (query[i] !== reply[i]) return false;
  return true;
}

/** The message ID. */
export function getId(msg: Buffer): number {
  return (msg[0]! << 8) | msg[1]!;
}

/** QR bit: set in responses. */
export function isResponse(msg: Buffer): boolean {
  return (msg[2]! & 0x80) !== 0;
}

/** TC bit. */
export function isTruncated(msg: Buffer): boolean {
  return (msg[2]! & 0x02) !== 0;
}

/** The 4-bit header RCODE. */
export function headerRcode(msg: Buffer): number {
  return msg[3]! & 0x0f;
}
