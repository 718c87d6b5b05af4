import { parseCidr } from '@heimdall/core/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientGroups } from './groups.js';

const rule = (cidr: string, mask: number) => ({ cidr: parseCidr(cidr)!, mask });

describe('ClientGroups', () => {
  it('most specific prefix wins, default otherwise, memo is bounded', () => {
    const g = new ClientGroups([rule('10.0.0.0/8', 0b001), rule('10.1.0.0/16', 0b010), rule('2001:db8::/32', 0b100), rule('0.0.0.0/0', 0b1000)], 0b10000, 4);
    expect(g.maskFor('10.2.3.4')).toBe(0b001);
    expect(g.maskFor('10.1.3.4')).toBe(0b010);
    expect(g.maskFor('::ffff:10.1.3.4')).toBe(0b010);
    expect(g.maskFor('2001:db8:1::5')).toBe(0b100);
    expect(g.maskFor('192.0.2.1')).toBe(0b1000);
    expect(g.maskFor('2001:db9::1')).toBe(0b10000);
    expect(g.maskFor('fe80::1%eth0')).toBe(0b10000);
    expect(g.maskFor('not an ip')).toBe(0b10000);
    for (let i = 0; i < 20; i++) expect(g.maskFor(`10.1.0.${i}`)).toBe(0b010);
    expect(new ClientGroups([], 7).trivial).toBe(true);
    expect(new ClientGroups([], 7).maskFor('10.1.0.1')).toBe(7);
  });

  it('a DoH client id rule wins over address rules; without id rules the id is not looked at', () => {
    const g = new ClientGroups([rule('10.0.0.0/8', 0b01), { id: 'kids-tablet', mask: 0b10 }, { id: 'kids-tablet', mask: 0b100 }], 0b1000);
    expect(g.trivial).toBe(false);
    expect(g.byClientId).toBe(true);
    expect(g.maskFor('10.1.2.3', 'kids-tablet')).toBe(0b10); // the first rule for an id
    expect(g.maskFor('192.0.2.1', 'kids-tablet')).toBe(0b10);
    expect(g.maskFor('10.1.2.3', 'laptop')).toBe(0b01); // another id: the address decides
    expect(g.maskFor('10.1.2.3')).toBe(0b01);
    expect(g.maskFor('192.0.2.1', 'laptop')).toBe(0b1000);
    // The memo is per address: an id does not leak into a later query from the same address without it.
    expect(g.maskFor('10.1.2.3')).toBe(0b01);
    const onlyIds = new ClientGroups([{ id: 'tv', mask: 1 }], 2);
    expect(onlyIds.trivial).toBe(false);
    expect(onlyIds.maskFor('203.0.113.1', 'tv')).toBe(1);
    expect(onlyIds.maskFor('203.0.113.1')).toBe(2);
    const noIds = new ClientGroups([rule('10.0.0.0/8', 1)], 2);
    expect(noIds.byClientId).toBe(false);
    expect(noIds.maskFor('192.0.2.1', 'tv')).toBe(2);
  });

  it('equal prefixes: the first declared wins', () => {
    const g = new ClientGroups([rule('10.0.0.0/8', 1), rule('10.0.0.0/8', 2)], 0);
    expect(g.maskFor('10.9.9.9')).toBe(1);
  });

  it('never throws on arbitrary client text', () => {
    const g = new ClientGroups([rule('10.0.0.0/8', 1)], 2);
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        expect([1, 2]).toContain(g.maskFor(s));
      }),
      { numRuns: 500 },
    );
  });
});
