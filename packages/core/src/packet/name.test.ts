import { describe, expect, it } from 'vitest';
import { PacketError } from './errors.js';
import { hex } from './packet.test-helpers.js';
import { canonicalName, copyNameLower, labelCount, lowercaseName, namesEqual, nameToWire, readName, skipName, wireNamesEqual } from './name.js';

describe('names', () => {
  it('reads names with escapes for special and non-printable octets', () => {
    const wire = hex('03 612e62 04 5c22203b 02 00ff 07 6578616d706c65 00');
    expect(readName(wire, 0)).toBe('a\\.b.\\\\\\"\\032\\;.\\000\\255.example');
    expect(nameToWire(readName(wire, 0), Buffer.alloc(255), 0)).toBe(wire.length);
  });

  it('parses presentation names to wire form', () => {
    const out = Buffer.alloc(255);
    const end = nameToWire('www.Example.com.', out, 0);
    expect(out.subarray(0, end)).toEqual(hex('03 777777 07 4578616d706c65 03 636f6d 00'));
    expect(nameToWire('', out, 0)).toBe(1);
    expect(nameToWire('.', out, 0)).toBe(1);
    expect(() => nameToWire('a..b', out, 0)).toThrow(PacketError);
    expect(() => nameToWire('a\\', out, 0)).toThrow(PacketError);
    expect(() => nameToWire('\\999', out, 0)).toThrow(PacketError);
    expect(() => nameToWire(`${'a'.repeat(63)}.`.repeat(4), out, 0)).toThrow(expect.objectContaining({ code: 'NAME_TOO_LONG' }));
  });

  it('skips names without following pointers', () => {
    const wire = hex('01 61 c0 00 ff');
    expect(skipName(wire, 0)).toBe(4);
    expect(() => skipName(hex('05 61'), 0)).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
    expect(() => skipName(hex('40'), 0)).toThrow(expect.objectContaining({ code: 'BAD_LABEL' }));
  });

  it('compares names case-insensitively (ASCII only, RFC 4343)', () => {
    expect(namesEqual('WWW.Example.COM', 'www.example.com.')).toBe(true);
    expect(namesEqual('a\\.b', 'A\\046B')).toBe(true);
    expect(namesEqual('a.b', 'a\\.b')).toBe(false);
    expect(namesEqual('\\195\\137', '\\195\\169')).toBe(false); // É vs é octets: not folded
    expect(namesEqual('a..b', 'a..b')).toBe(true); // identical strings compare equal without parsing
    expect(namesEqual('a\\..b', 'a\\..c')).toBe(false);
    expect(lowercaseName('WwW.ExAmple.com')).toBe('www.example.com');
    expect(lowercaseName('already.lower')).toBe('already.lower');
    expect(canonicalName('\\097bc.COM.')).toBe('abc.COM');
    expect(labelCount('')).toBe(0);
    expect(labelCount('*.a\\.b.example')).toBe(3);
  });

  it('public helpers reject bad offsets and arguments instead of looping or coercing', () => {
    const wire = hex('01 61 00');
    for (const offset of [Number.NaN, -1, 0.5, '0' as never, undefined as never]) {
      expect(() => readName(wire, offset)).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
      expect(() => skipName(wire, offset)).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
    }
    expect(() => readName('0161' as never, 0)).toThrow(PacketError);
    expect(() => copyNameLower(wire, 0, Buffer.alloc(10), 0)).toThrow(expect.objectContaining({ code: 'INVALID_VALUE' }));
    expect(() => nameToWire(5 as never)).toThrow(PacketError);
    expect(namesEqual(5 as never, 'a')).toBe(false);
  });

  it('compares wire names across buffers, following pointers', () => {
    const a = hex('03 777777 07 6578616d706c65 03 636f6d 00');
    const b = hex('07 4558414d504c45 03 434f4d 00 03 575757 c000');
    expect(wireNamesEqual(a, 0, b, 13)).toBe(true);
    expect(wireNamesEqual(a, 4, b, 0)).toBe(true);
    expect(wireNamesEqual(a, 0, b, 0)).toBe(false);
    const dst = Buffer.alloc(255);
    expect(dst.subarray(0, copyNameLower(b, 13, dst, 0))).toEqual(a);
  });
});
