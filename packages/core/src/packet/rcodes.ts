import { buildTable, parseCode } from './code-table.js';

/**
 * Response codes. Values above 15 only exist as "extended" rcodes, whose
 * upper 8 bits travel in the OPT record (RFC 6891 §6.1.3).
 */
export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
  DSOTYPENI: 11,
  BADVERS: 16,
  BADKEY: 17,
  BADTIME: 18,
  BADMODE: 19,
  BADNAME: 20,
  BADALG: 21,
  BADTRUNC: 22,
  BADCOOKIE: 23,
} as const satisfies Record<string, number>;

const rcodeTable = buildTable(Rcode);

/** Mnemonic of an rcode, or `RCODE<n>` when unknown. */
export function rcodeToString(rcode: number): string {
  return rcodeTable.toName.get(rcode) ?? `RCODE${rcode}`;
}

/** Number of an rcode from its mnemonic or `RCODE<n>`; `undefined` if neither matches. */
export function rcodeFromString(name: string): number | undefined {
  return parseCode(rcodeTable.fromName, name, 'RCODE', 0xfff);
}
