import { describe, expect, it } from 'vitest';
import { CacheNameError, flushNameToWire } from './wire.js';

describe('flushNameToWire', () => {
  it('encodes, lowercases and handles escapes', () => {
    expect(flushNameToWire('Example.COM.')).toEqual(Buffer.from('\x07example\x03com\x00', 'latin1'));
    expect(flushNameToWire('')).toEqual(Buffer.from([0]));
    expect(flushNameToWire('.')).toEqual(Buffer.from([0]));
    expect(flushNameToWire('a\\.b.c')).toEqual(Buffer.from('\x03a.b\x01c\x00', 'latin1'));
    expect(flushNameToWire('\\065.x')).toEqual(Buffer.from('\x01a\x01x\x00', 'latin1'));
    expect(() => flushNameToWire('\\300.x')).toThrow(/255/);
    expect(() => flushNameToWire('a\\')).toThrow(/dangling/);
    expect(() => flushNameToWire('a b')).toThrow(/escaped/);
    expect(() => flushNameToWire('a..b')).toThrow(/empty label/);
    expect(() => flushNameToWire(`${'a.'.repeat(128)}com`)).toThrow(/255/);
    expect(() => flushNameToWire(`${'a'.repeat(64)}.com`)).toThrow(CacheNameError);
  });
});
