import { HeimdallError, registerErrorCodes } from '../errors.js';

/**
 * Stable codes of {@link PacketError}, registered in core's error registry
 * (status 500 when one reaches the admin API). They never change meaning
 * between versions, so callers may switch on them (e.g. to answer FORMERR).
 */
const PACKET_ERROR_CODES = {
  TRUNCATED: 'a read would go past the end of the buffer',
  POINTER_LOOP: 'a compression pointer does not point strictly backwards (RFC 1035 §4.1.4)',
  POINTER_LIMIT: 'a name follows more than 127 compression pointers, or the names of one message expand past its work budget',
  BAD_LABEL: 'a label type other than a normal label or a pointer (0x40, 0x80)',
  NAME_TOO_LONG: 'a name longer than 255 octets in wire form (RFC 1035 §2.3.4)',
  LABEL_TOO_LONG: 'a label longer than 63 octets (encoding only)',
  INVALID_NAME: 'a presentation-format name that cannot be parsed (empty label, bad escape…)',
  BAD_QUESTION: 'more than one question (QDCOUNT > 1 is FORMERR, RFC 9619)',
  BAD_RDATA: "RDATA that does not match its type's format or its RDLENGTH",
  BAD_OPTION: 'an EDNS option whose content does not match its format',
  DUPLICATE_OPT: 'more than one OPT record (RFC 6891 §6.1.1)',
  BAD_OPT: 'an OPT record outside the additional section or with a non-root owner name',
  INVALID_VALUE: 'a field given to the encoder is out of range or of the wrong shape',
  BUFFER_TOO_SMALL: "the caller's buffer cannot hold the encoded message",
  MESSAGE_TOO_LARGE: 'the encoded message would exceed 65535 octets',
} as const;
registerErrorCodes(PACKET_ERROR_CODES);

/**
 * Stable codes of {@link PacketError}:
 *
 * - `TRUNCATED`: a read would go past the end of the buffer.
 * - `POINTER_LOOP`: a compression pointer does not point strictly backwards
 *   (forward and self pointers are how loops are built), RFC 1035 §4.1.4.
 * - `POINTER_LIMIT`: a name follows more than 127 compression pointers, or the
 *   names of one message together expand past its work budget (crafted
 *   pointer chains; see `MAX_POINTER_HOPS` in `@heimdall/core/wire`).
 * - `BAD_LABEL`: a label type other than a normal label or a pointer (0x40, 0x80).
 * - `NAME_TOO_LONG`: a name longer than 255 octets in wire form (RFC 1035 §2.3.4).
 * - `LABEL_TOO_LONG`: a label longer than 63 octets (encoding only; the wire cannot express it).
 * - `INVALID_NAME`: a presentation-format name that cannot be parsed (empty label, bad escape…).
 * - `BAD_QUESTION`: more than one question (QDCOUNT > 1 is FORMERR, RFC 9619).
 * - `BAD_RDATA`: RDATA that does not match its type's format or its RDLENGTH.
 * - `BAD_OPTION`: an EDNS option whose content does not match its format.
 * - `DUPLICATE_OPT`: more than one OPT record (RFC 6891 §6.1.1 asks for FORMERR).
 * - `BAD_OPT`: an OPT record outside the additional section or with a non-root owner name.
 * - `INVALID_VALUE`: a field given to the encoder is out of range or of the wrong shape.
 * - `BUFFER_TOO_SMALL`: the caller's buffer cannot hold the encoded message.
 * - `MESSAGE_TOO_LARGE`: the encoded message would exceed 65535 octets.
 */
export type PacketErrorCode = keyof typeof PACKET_ERROR_CODES;

/**
 * The only error the codec raises for malformed input or invalid values. A
 * {@link HeimdallError} whose codes are registered in core's error registry.
 *
 * `code` is stable (see {@link PacketErrorCode}); `offset` is the byte offset
 * in the message where the problem was found (for encoding errors: the
 * offset being written, relative to the start of the message, or -1 when the
 * problem is not tied to a position).
 *
 * @example
 * try { decode(bytes) } catch (e) { if (e instanceof PacketError) reply(FORMERR) }
 */
export class PacketError extends HeimdallError {
  /** Stable machine-readable code. */
  declare readonly code: PacketErrorCode;
  /** Byte offset at which the problem was detected (-1 if none applies). */
  readonly offset: number;

  constructor(code: PacketErrorCode, offset: number, message: string) {
    super(code, `${message} (${code} at offset ${offset})`);
    this.offset = offset;
  }
}

/** @internal Short, never-throwing description of a value for error messages. */
export function describeValue(v: unknown): string {
  try {
    if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
    if (v instanceof Uint8Array) return `<${v.length} bytes>`;
    if (v === null || typeof v !== 'object') return String(v);
    return Array.isArray(v) ? `array(${v.length})` : 'object';
  } catch {
    return typeof v;
  }
}

/** @internal Shorthand for the most common error: a read past the end. */
export function truncated(offset: number, what: string): PacketError {
  return new PacketError('TRUNCATED', offset, `message truncated while reading ${what}`);
}
