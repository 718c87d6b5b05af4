import { buildTable, parseCode } from './code-table.js';

/** DNS opcodes (4 bits of the header). */
export const Opcode = {
  QUERY: 0,
  IQUERY: 1,
  STATUS: 2,
  NOTIFY: 4,
  UPDATE: 5,
  DSO: 6,
} as const satisfies Record<string, number>;

const opcodeTable = buildTable(Opcode);

/** Mnemonic of an opcode, or `OPCODE<n>` when unknown. */
export function opcodeToString(opcode: number): string {
  return opcodeTable.toName.get(opcode) ?? `OPCODE${opcode}`;
}

/** Number of an opcode from its mnemonic or `OPCODE<n>`; `undefined` if neither matches. */
export function opcodeFromString(name: string): number | undefined {
  return parseCode(opcodeTable.fromName, name, 'OPCODE', 15);
}
