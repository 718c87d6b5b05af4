import { buildTable, parseCode } from './code-table.js';

/** DNS classes (RFC 1035 §3.2.4, RFC 2136 NONE, QCLASS ANY). */
export const RecordClass = {
  IN: 1,
  CS: 2,
  CH: 3,
  HS: 4,
  NONE: 254,
  ANY: 255,
} as const satisfies Record<string, number>;

const classTable = buildTable(RecordClass);

/** Mnemonic of a class, or `CLASS<n>` (RFC 3597 §5) when unknown. */
export function classToString(klass: number): string {
  return classTable.toName.get(klass) ?? `CLASS${klass}`;
}

/** Number of a class from its mnemonic or `CLASS<n>`; `undefined` if neither matches. */
export function classFromString(name: string): number | undefined {
  return parseCode(classTable.fromName, name, 'CLASS', 0xffff);
}
