/**
 * EDNS(0) (RFC 6891): the OPT pseudo-record and its options.
 */
import type { Buffer } from 'node:buffer';
import type { OptionCode } from './optioncodes.js';

/** EDNS Client Subnet (RFC 7871). `address` is printed with the host bits zeroed. */
export interface ClientSubnetOption {
  code: typeof OptionCode.CLIENT_SUBNET;
  /** 1 = IPv4, 2 = IPv6. */
  family: 1 | 2;
  sourcePrefixLength: number;
  scopePrefixLength: number;
  address: string;
}

/** DNS Cookie (RFC 7873): 8-byte client cookie, optional 8–32-byte server cookie. */
export interface CookieOption {
  code: typeof OptionCode.COOKIE;
  client: Buffer;
  server?: Buffer;
}

/** edns-tcp-keepalive (RFC 7828). `timeout` in units of 100 ms; absent in queries. */
export interface TcpKeepaliveOption {
  code: typeof OptionCode.TCP_KEEPALIVE;
  timeout?: number;
}

/** Padding (RFC 7830): `length` zero octets. */
export interface PaddingOption {
  code: typeof OptionCode.PADDING;
  length: number;
}

/** Extended DNS Error (RFC 8914). `extraText` is UTF-8, `""` when absent. */
export interface ExtendedErrorOption {
  code: typeof OptionCode.EDE;
  /** See `EdeCode`. */
  infoCode: number;
  extraText?: string;
}

/** Any other option, raw (also NSID, EXPIRE…). */
export interface RawOption {
  code: number;
  data: Buffer;
}

/** One EDNS option. Options with a known code are decoded to their own shape; others are {@link RawOption}. */
export type EdnsOption = ClientSubnetOption | CookieOption | TcpKeepaliveOption | PaddingOption | ExtendedErrorOption | RawOption;

/**
 * The OPT record's content (RFC 6891 §6.1). In a decoded `Message` this is
 * lifted out of the additional section into `message.edns`.
 */
export interface Edns {
  /** Requestor's UDP payload size (the OPT CLASS field). */
  udpPayloadSize: number;
  /**
   * Upper 8 bits of the 12-bit rcode, as carried in the OPT TTL. When
   * encoding a `Message` whose `rcode` is above 15, the encoder derives it
   * from `rcode` instead.
   */
  extendedRcode: number;
  version: number;
  /** The DO bit (RFC 3225). */
  dnssecOk: boolean;
  /** The other 15 flag bits ("Z"), normally 0. */
  flags: number;
  options: EdnsOption[];
}

/** What the encoder accepts for EDNS: every field optional (defaults: 1232 bytes, version 0, no DO, no options). */
export interface EdnsInit {
  udpPayloadSize?: number;
  extendedRcode?: number;
  version?: number;
  dnssecOk?: boolean;
  flags?: number;
  options?: EdnsOption[];
}

/** Default advertised UDP payload size (DNS Flag Day 2020 recommendation). */
export const DEFAULT_UDP_PAYLOAD_SIZE = 1232;
