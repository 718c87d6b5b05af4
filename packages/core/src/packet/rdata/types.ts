/**
 * Decoded RDATA shapes, one per supported record type. Binary fields are
 * `Buffer`s (copied out of the message, never views into it). Short text
 * fields defined as octet strings by their RFC (CAA tag/value, NAPTR
 * flags/services/regexp, HINFO-like strings, ALPN ids) are `latin1`
 * strings: one character per octet, so every value round-trips.
 */

import type { Buffer } from 'node:buffer';
/** MX (RFC 1035 §3.3.9). */
export interface MxData {
  preference: number;
  exchange: string;
}

/** SOA (RFC 1035 §3.3.13). `rname` is the mailbox as a name (`hostmaster.example.com`). */
export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  /** Negative-caching TTL (RFC 2308 §4). */
  minimum: number;
}

/** SRV (RFC 2782). */
export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** CAA (RFC 8659). `value` is latin1 text (one char per octet). */
export interface CaaData {
  flags: number;
  tag: string;
  value: string;
}

/** NAPTR (RFC 3403). */
export interface NaptrData {
  order: number;
  preference: number;
  flags: string;
  services: string;
  regexp: string;
  replacement: string;
}

/** DS and CDS (RFC 4034 §5, RFC 7344). */
export interface DsData {
  keyTag: number;
  algorithm: number;
  digestType: number;
  digest: Buffer;
}

/** DNSKEY and CDNSKEY (RFC 4034 §2, RFC 7344). */
export interface DnskeyData {
  flags: number;
  protocol: number;
  algorithm: number;
  publicKey: Buffer;
}

/** RRSIG (RFC 4034 §3). Times are seconds since the epoch (serial arithmetic left to the caller). */
export interface RrsigData {
  typeCovered: number;
  algorithm: number;
  labels: number;
  originalTtl: number;
  expiration: number;
  inception: number;
  keyTag: number;
  signerName: string;
  signature: Buffer;
}

/** NSEC (RFC 4034 §4). `types` ascending. */
export interface NsecData {
  nextDomain: string;
  types: number[];
}

/** NSEC3 (RFC 5155 §3). `types` ascending. */
export interface Nsec3Data {
  hashAlgorithm: number;
  flags: number;
  iterations: number;
  salt: Buffer;
  nextHashedOwner: Buffer;
  types: number[];
}

/** NSEC3PARAM (RFC 5155 §4). */
export interface Nsec3ParamData {
  hashAlgorithm: number;
  flags: number;
  iterations: number;
  salt: Buffer;
}

/** TLSA and SMIMEA (RFC 6698, RFC 8162). */
export interface TlsaData {
  usage: number;
  selector: number;
  matchingType: number;
  certificate: Buffer;
}

/** SSHFP (RFC 4255). */
export interface SshfpData {
  algorithm: number;
  fingerprintType: number;
  fingerprint: Buffer;
}

/** HINFO (RFC 1035 §3.3.2). */
export interface HinfoData {
  cpu: string;
  os: string;
}

/** An SvcParam this codec does not know, kept as raw bytes. */
export interface RawSvcParam {
  key: number;
  value: Buffer;
}

/**
 * SVCB/HTTPS parameters (RFC 9460 §7, dohpath RFC 9461, ohttp RFC 9540).
 * Absent keys are absent properties; the encoder writes keys in ascending
 * order as the RFC requires.
 */
export interface SvcParams {
  /** key 0: keys the client must understand. */
  mandatory?: number[];
  /** key 1: ALPN protocol ids (latin1). */
  alpn?: string[];
  /** key 2. */
  noDefaultAlpn?: boolean;
  /** key 3. */
  port?: number;
  /** key 4. */
  ipv4hint?: string[];
  /** key 5: ECHConfigList. */
  ech?: Buffer;
  /** key 6. */
  ipv6hint?: string[];
  /** key 7: URI template (UTF-8). */
  dohpath?: string;
  /** key 8. */
  ohttp?: boolean;
  /** Any other key, ascending. */
  unknown?: RawSvcParam[];
}

/** SVCB and HTTPS (RFC 9460). `priority` 0 is AliasMode. */
export interface SvcbData {
  priority: number;
  target: string;
  params: SvcParams;
}

/** MINFO (RFC 1035 §3.3.7). */
export interface MinfoData {
  rmailbx: string;
  emailbx: string;
}

/** RP (RFC 1183 §2.2). */
export interface RpData {
  mbox: string;
  txt: string;
}

/** AFSDB (RFC 1183 §1). */
export interface AfsdbData {
  subtype: number;
  hostname: string;
}
