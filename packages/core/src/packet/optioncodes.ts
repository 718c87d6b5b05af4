import { buildTable, parseCode } from './code-table.js';

/** EDNS(0) option codes (IANA "DNS EDNS0 Option Codes (OPT)"). */
export const OptionCode = {
  LLQ: 1,
  UL: 2,
  NSID: 3,
  DAU: 5,
  DHU: 6,
  N3U: 7,
  /** EDNS Client Subnet, RFC 7871. */
  CLIENT_SUBNET: 8,
  EXPIRE: 9,
  /** DNS Cookies, RFC 7873. */
  COOKIE: 10,
  /** edns-tcp-keepalive, RFC 7828. */
  TCP_KEEPALIVE: 11,
  /** Padding, RFC 7830. */
  PADDING: 12,
  CHAIN: 13,
  KEY_TAG: 14,
  /** Extended DNS Error, RFC 8914. */
  EDE: 15,
  CLIENT_TAG: 16,
  SERVER_TAG: 17,
  REPORT_CHANNEL: 18,
  ZONEVERSION: 19,
} as const satisfies Record<string, number>;

const optionTable = buildTable(OptionCode);

/** Mnemonic of an option code, or `OPTION<n>` when unknown. */
export function optionCodeToString(code: number): string {
  return optionTable.toName.get(code) ?? `OPTION${code}`;
}

/** Number of an option code from its mnemonic or `OPTION<n>`; `undefined` if neither matches. */
export function optionCodeFromString(name: string): number | undefined {
  return parseCode(optionTable.fromName, name, 'OPTION', 0xffff);
}
