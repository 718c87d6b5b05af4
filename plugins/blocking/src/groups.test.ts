import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientGroups, parseCidr, parseIp } from './groups.js';
import { blocking } from './plugin.js';

describe('parseIp / parseCidr', () => {
  it('parses IPv4, IPv6 (compressed, embedded IPv4, zone) and maps ::ffff:a.b.c.d to IPv4', () => {
    expect([...parseIp('192.0.2.1')!]).toEqual([192, 0, 2, 1]);
    expect([...parseIp('::1')!]).toEqual([...new Array(15).fill(0), 1]);
    expect([...parseIp('2001:db8::8:800:200c:417a')!]).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 8, 8, 0, 0x20, 0x0c, 0x41, 0x7a]);
    expect([...parseIp('::ffff:10.1.2.3')!]).toEqual([10, 1, 2, 3]);
    expect([...parseIp('::ffff:a01:203')!]).toEqual([10, 1, 2, 3]);
    expect(parseIp('fe80::1%eth0')!.length).toBe(16);
    for (const bad of ['', '1.2.3', '256.0.0.1', 'x::y', 'localhost', '1.2.3.4/8']) expect(parseIp(bad), bad).toBeNull();
  });
  it('parses CIDRs and clears host bits', () => {
    expect(parseCidr('10.1.2.3/8')).toEqual({ family: 4, bytes: Uint8Array.from([10, 0, 0, 0]), prefix: 8 });
    expect(parseCidr('fd12:3456::1/16')!.bytes.slice(0, 4)).toEqual(Uint8Array.from([0xfd, 0x12, 0, 0]));
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '::/129', '10.0.0.0/x', 'a/8']) expect(parseCidr(bad), bad).toBeNull();
  });
  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        parseIp(s);
        parseCidr(s);
        new ClientGroups([{ cidr: '10.0.0.0/8', mask: 1 }], 2).maskFor(s);
      }),
      { numRuns: 500 },
    );
  });
});

describe('ClientGroups', () => {
  it('most specific prefix wins, default otherwise, memo is bounded', () => {
    const g = new ClientGroups(
      [
        { cidr: '10.0.0.0/8', mask: 0b001 },
        { cidr: '10.1.0.0/16', mask: 0b010 },
        { cidr: '2001:db8::/32', mask: 0b100 },
        { cidr: '0.0.0.0/0', mask: 0b1000 },
      ],
      0b10000,
      4,
    );
    expect(g.maskFor('10.2.3.4')).toBe(0b001);
    expect(g.maskFor('10.1.3.4')).toBe(0b010);
    expect(g.maskFor('::ffff:10.1.3.4')).toBe(0b010);
    expect(g.maskFor('2001:db8:1::5')).toBe(0b100);
    expect(g.maskFor('192.0.2.1')).toBe(0b1000);
    expect(g.maskFor('2001:db9::1')).toBe(0b10000);
    expect(g.maskFor('not an ip')).toBe(0b10000);
    for (let i = 0; i < 20; i++) expect(g.maskFor(`10.1.0.${i}`)).toBe(0b010);
    expect(new ClientGroups([], 7).trivial).toBe(true);
  });
});

it('the README example options validate', () => {
  const p = blocking({
    groups: {
      ads: {
        block: ['https://big.oisd.nl/domainswild', './lists/my-block.txt'],
        allow: [{ inline: 'good.example.com\n@@||cdn.example.net^' }],
      },
      kids: { block: [{ source: './lists/adult.txt', registrable: true }] },
    },
    clients: { default: ['ads'], '192.168.1.64/26': ['ads', 'kids'], 'fd00:1::/64': ['ads', 'kids'] },
    response: { mode: 'nxdomain', ttl: 10 },
    cacheDir: '/var/lib/heimdall/lists',
  });
  expect(p.name).toBe('blocking');
});
