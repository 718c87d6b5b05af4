import { describe, expect, it } from 'vitest';
import { classFromString, classToString, RecordClass } from './classes.js';
import { EdeCode, edeCodeFromString, edeCodeToString } from './edecodes.js';
import { Opcode, opcodeFromString, opcodeToString } from './opcodes.js';
import { OptionCode, optionCodeFromString, optionCodeToString } from './optioncodes.js';
import { Rcode, rcodeFromString, rcodeToString } from './rcodes.js';
import { RecordType, typeFromString, typeToString } from './types.js';

describe('code tables', () => {
  it('map names and numbers both ways, with RFC 3597 generic forms', () => {
    expect(RecordType.A).toBe(1);
    expect(RecordType.HTTPS).toBe(65);
    expect(typeToString(1)).toBe('A');
    expect(typeToString(65280)).toBe('TYPE65280');
    expect(typeFromString('aaaa')).toBe(28);
    expect(typeFromString('TYPE65280')).toBe(65280);
    expect(typeFromString('TYPE65536')).toBeUndefined();
    expect(typeFromString('NOPE')).toBeUndefined();
    expect(classToString(RecordClass.CH)).toBe('CH');
    expect(classToString(77)).toBe('CLASS77');
    expect(classFromString('class3')).toBe(3);
    expect(rcodeToString(Rcode.BADCOOKIE)).toBe('BADCOOKIE');
    expect(rcodeFromString('NXDOMAIN')).toBe(3);
    expect(rcodeToString(4095)).toBe('RCODE4095');
    expect(opcodeToString(Opcode.UPDATE)).toBe('UPDATE');
    expect(opcodeFromString('OPCODE3')).toBe(3);
    expect(optionCodeToString(OptionCode.CLIENT_SUBNET)).toBe('CLIENT_SUBNET');
    expect(optionCodeFromString('cookie')).toBe(10);
    expect(edeCodeToString(EdeCode.BLOCKED)).toBe('BLOCKED');
    expect(edeCodeFromString('EDE99')).toBe(99);
  });

  it('every table is a bijection over its names', () => {
    const tables: Array<[Record<string, number>, (n: number) => string, (s: string) => number | undefined]> = [
      [RecordType, typeToString, typeFromString],
      [RecordClass, classToString, classFromString],
      [Rcode, rcodeToString, rcodeFromString],
      [Opcode, opcodeToString, opcodeFromString],
      [OptionCode, optionCodeToString, optionCodeFromString],
      [EdeCode, edeCodeToString, edeCodeFromString],
    ];
    for (const [table, toName, fromName] of tables) {
      for (const [name, value] of Object.entries(table)) {
        expect(fromName(name)).toBe(value);
        expect(fromName(toName(value))).toBe(value);
      }
    }
  });
});
