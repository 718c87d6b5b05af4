import { buildTable, parseCode } from './code-table.js';

/**
 * DNS resource record types (IANA "Resource Record (RR) TYPEs" registry).
 * Fields that carry a type are plain numbers: any 16-bit value is valid on
 * the wire, and types missing here are handled as raw RDATA (RFC 3597).
 *
 * @example RecordType.A === 1; typeToString(65280) === 'TYPE65280'
 */
export const RecordType = {
  A: 1,
  NS: 2,
  MD: 3,
  MF: 4,
  CNAME: 5,
  SOA: 6,
  MB: 7,
  MG: 8,
  MR: 9,
  NULL: 10,
  WKS: 11,
  PTR: 12,
  HINFO: 13,
  MINFO: 14,
  MX: 15,
  TXT: 16,
  RP: 17,
  AFSDB: 18,
  X25: 19,
  ISDN: 20,
  RT: 21,
  NSAP: 22,
  'NSAP-PTR': 23,
  SIG: 24,
  KEY: 25,
  PX: 26,
  GPOS: 27,
  AAAA: 28,
  LOC: 29,
  NXT: 30,
  EID: 31,
  NIMLOC: 32,
  SRV: 33,
  ATMA: 34,
  NAPTR: 35,
  KX: 36,
  CERT: 37,
  A6: 38,
  DNAME: 39,
  SINK: 40,
  OPT: 41,
  APL: 42,
  DS: 43,
  SSHFP: 44,
  IPSECKEY: 45,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  DHCID: 49,
  NSEC3: 50,
  NSEC3PARAM: 51,
  TLSA: 52,
  SMIMEA: 53,
  HIP: 55,
  NINFO: 56,
  RKEY: 57,
  TALINK: 58,
  CDS: 59,
  CDNSKEY: 60,
  OPENPGPKEY: 61,
  CSYNC: 62,
  ZONEMD: 63,
  SVCB: 64,
  HTTPS: 65,
  SPF: 99,
  UINFO: 100,
  UID: 101,
  GID: 102,
  UNSPEC: 103,
  NID: 104,
  L32: 105,
  L64: 106,
  LP: 107,
  EUI48: 108,
  EUI64: 109,
  TKEY: 249,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
  URI: 256,
  CAA: 257,
  AVC: 258,
  DOA: 259,
  AMTRELAY: 260,
  TA: 32768,
  DLV: 32769,
} as const satisfies Record<string, number>;

const typeTable = buildTable(RecordType);

/** Mnemonic of a record type, or `TYPE<n>` (RFC 3597 §5) when unknown. */
export function typeToString(type: number): string {
  return typeTable.toName.get(type) ?? `TYPE${type}`;
}

/**
 * Number of a record type from its mnemonic (case-insensitive) or the
 * generic `TYPE<n>` form; `undefined` when neither matches.
 */
export function typeFromString(name: string): number | undefined {
  return parseCode(typeTable.fromName, name, 'TYPE', 0xffff);
}
