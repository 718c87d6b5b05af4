import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeDomain } from './normalize.js';
import {
  emptyCounts,
  type ParseCounts,
  parseLine,
  parseStream,
  parseText,
  RULE_ALLOW,
  RULE_CHILDREN,
  RULE_EXACT,
  RULE_IMPORTANT,
  RULE_PLAIN,
} from './parser.js';
import { checkRegex } from './regex-guard.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

function collect(text: string) {
  const domains: [string, number][] = [];
  const regexes: [string, number][] = [];
  const invalid: string[] = [];
  const counts = emptyCounts();
  parseText(text, { domain: (n, f) => domains.push([n, f]), regex: (s, f) => regexes.push([s, f]) }, counts, {
    onInvalid: (l, why) => invalid.push(`${l} :: ${why}`),
  });
  return { domains, regexes, counts, invalid, map: new Map(domains) };
}

const SUBTREE = RULE_EXACT | RULE_CHILDREN | RULE_PLAIN;

describe('normalizeDomain', () => {
  it('lowercases, strips the trailing dot, converts IDN to punycode', () => {
    expect(normalizeDomain('Ads.Example.COM.')).toBe('ads.example.com');
    expect(normalizeDomain('bücher.example')).toBe('xn--bcher-kva.example');
    expect(normalizeDomain('XN--BCHER-KVA.example')).toBe('xn--bcher-kva.example');
    expect(normalizeDomain('_dmarc.example.com')).toBe('_dmarc.example.com');
  });
  it('rejects bad names', () => {
    for (const bad of ['', '.', 'a..b', '.a', 'a b', 'a/b', '1.2.3.4', 'x.123', `${'a'.repeat(64)}.com`, `${'a.'.repeat(127)}com`, 'ex*ample.com', '💥 .']) {
      expect(normalizeDomain(bad), bad).toBeNull();
    }
    expect(normalizeDomain(`${'a'.repeat(63)}.com`)).not.toBeNull();
  });
});

describe('normalizeDomain against a reference (ASCII)', () => {
  const reference = (input: string): string | null => {
    let s = input.endsWith('.') ? input.slice(0, -1) : input;
    s = s.toLowerCase();
    if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(s) || s.length > 253) return null;
    const labels = s.split('.');
    if (labels.some((l) => l.length > 63) || /^[0-9]+$/.test(labels[labels.length - 1]!)) return null;
    return s;
  };
  it('agrees on random ASCII names', () => {
    const unit = fc.constantFrom(...'aZ09-_.x.'.split(''), 'A', '.', ' ', '/');
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit, maxLength: 80 }), fc.domain(), fc.string({ unit: fc.constantFrom('a', '.'), minLength: 60, maxLength: 300 })),
        (s) => {
          expect(normalizeDomain(s)).toBe(reference(s));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('hosts format', () => {
  it('parses the fixture: several names per line, tabs, ::, inline comments, boilerplate ignored', () => {
    const r = collect(fixture('hosts.txt'));
    expect([...r.map.keys()]).toEqual([
      'ads.example.com',
      'tracker.example.net',
      'tab.separated.example.org',
      'a.adnetwork.example',
      'b.adnetwork.example',
      'c.adnetwork.example',
      'ipv6-style.example.com',
      'upper.example.com',
      'xn--bcher-kva.example',
    ]);
    for (const f of r.map.values()) expect(f).toBe(SUBTREE);
    expect(r.counts.ignored).toBe(14); // localhost×4 (one with zone), localhost.localdomain, local, broadcasthost, ip6-*×6, 0.0.0.0
    expect(r.counts.invalid).toBe(2); // bad..name, too-long label
    expect(r.counts.domains).toBe(9);
  });
  it('a bare address is invalid, not a crash', () => {
    const r = collect('0.0.0.0\n0.0.0.0 # only a comment\n');
    expect(r.counts.invalid).toBe(2);
    expect(r.domains).toEqual([]);
  });
});

describe('plain domains', () => {
  it('parses the fixture', () => {
    const r = collect(fixture('domains.txt'));
    expect([...r.map.keys()]).toEqual([
      'doubleclick.example',
      'telemetry.example.org',
      'spaced.example.net',
      'metrics.example.com',
      '_dmarc.example.com',
      'example.com',
    ]);
    expect(r.counts.invalid).toBe(2);
    expect(r.counts.comments).toBe(1);
  });
});

describe('wildcards', () => {
  it('*.domain matches subdomains only', () => {
    const r = collect(fixture('wildcard.txt'));
    expect(r.domains).toEqual([
      ['wild.example', RULE_CHILDREN],
      ['wild.example.org', RULE_CHILDREN],
    ]);
    expect(r.counts.invalid).toBe(2);
  });
});

describe('adblock-style', () => {
  it('parses anchors, exceptions, $important; counts cosmetic/URL/modifier rules as unsupported', () => {
    const r = collect(fixture('adblock.txt'));
    expect(r.domains).toEqual([
      ['ads.adblock.example', RULE_EXACT | RULE_CHILDREN],
      ['track.adblock.example', RULE_EXACT | RULE_CHILDREN | RULE_IMPORTANT],
      ['good.adblock.example', RULE_EXACT | RULE_CHILDREN | RULE_ALLOW],
      ['exact.adblock.example', RULE_EXACT],
      ['exact-allow.adblock.example', RULE_EXACT | RULE_ALLOW],
      ['subonly.adblock.example', RULE_EXACT | RULE_CHILDREN],
      ['important-except.adblock.example', RULE_EXACT | RULE_CHILDREN | RULE_ALLOW],
    ]);
    expect(r.regexes).toEqual([['banner\\d+', 0]]);
    expect(r.counts.unsupported).toBe(5); // ##, #@#, URL path, $third-party, $dnstype
    expect(r.counts.invalid).toBe(1); // '||'
    expect(r.counts.comments).toBe(3);
  });
});

describe('regex rules', () => {
  it('compiles safe patterns, rejects catastrophic ones and backreferences', () => {
    const r = collect(fixture('regex.txt'));
    expect(r.regexes).toEqual([
      ['^ad[0-9]+\\.regex\\.example$', 0],
      ['tracker\\.(net|org)$', 0],
      ['^ok[0-9]+\\.regex\\.example$', RULE_ALLOW],
    ]);
    expect(r.counts.invalid).toBe(4);
    expect(r.invalid.join('\n')).toMatch(/nested quantifier/);
    expect(r.invalid.join('\n')).toMatch(/backreference/);
    expect(r.invalid.join('\n')).toMatch(/unbounded quantifiers/);
  });
  it('guard rules', () => {
    expect(checkRegex('(a+)+$')).toMatch(/nested/);
    expect(checkRegex('(a|aa)*$')).toMatch(/alternation/);
    expect(checkRegex('(?:x*)*')).toMatch(/nested/);
    expect(checkRegex('(a{1,5}){2,}')).toMatch(/nested/);
    expect(checkRegex('(ab)\\1')).toMatch(/backreference/);
    expect(checkRegex('(?<n>a)\\k<n>')).toMatch(/backreference/);
    expect(checkRegex('a'.repeat(300))).toMatch(/longer/);
    expect(checkRegex('^(www\\.)?ads\\.example$')).toBeNull();
    expect(checkRegex('^[a-z]+[0-9]*\\.example$')).toBeNull();
    expect(checkRegex('[(+)]+x')).toBeNull();
    expect(checkRegex('.*a.*b$')).toMatch(/unbounded/); // unanchored: counts 3
    expect(checkRegex('^.*a.*b$')).toBeNull();
    expect(checkRegex('a{2}b{1,3}')).toBeNull();
    expect(checkRegex('(')).not.toBeNull();
    expect(checkRegex('*a')).not.toBeNull();
  });
  it('rejected patterns really were dangerous (sanity: accepted ones run fast on 253 chars)', () => {
    const accepted = ['^ad[0-9]+\\.regex\\.example$', '^.*a.*b$', 'banner\\d+', '^(www\\.)?x$'];
    const input = 'a'.repeat(126) + '.' + 'b'.repeat(126);
    for (const src of accepted) {
      expect(checkRegex(src)).toBeNull();
      const t = performance.now();
      new RegExp(src).test(input);
      expect(performance.now() - t).toBeLessThan(50);
    }
  });
});

describe('mixed list', () => {
  it('mixes every format with junk lines', () => {
    const r = collect(fixture('mixed.txt'));
    expect(r.domains.map((d) => d[0])).toEqual([
      'hosts.mixed.example',
      'plain.mixed.example',
      'wild.mixed.example',
      'adblock.mixed.example',
      'allow.mixed.example',
      '-', // a syntactically valid single label; refused later as a public suffix
      'co.uk',
      'github.io',
    ]);
    expect(r.regexes.length).toBe(1);
    expect(r.counts.invalid).toBe(3);
    expect(r.counts.comments).toBe(2);
  });
});

describe('streaming', () => {
  it('gives the same result as parseText whatever the chunking', async () => {
    const text = fixture('mixed.txt') + fixture('hosts.txt') + fixture('adblock.txt');
    const whole = collect(text);
    const buf = Buffer.from(text);
    for (const size of [1, 3, 7, 64, 100000]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
      const domains: string[] = [];
      const counts = emptyCounts();
      await parseStream(Readable.from(chunks), { domain: (n) => domains.push(n), regex: () => {} }, counts);
      expect(domains).toEqual(whole.domains.map((d) => d[0]));
      expect(counts.domains).toBe(whole.counts.domains);
      expect(counts.invalid).toBe(whole.counts.invalid);
    }
  });
  it('multi-byte characters split across chunks survive', async () => {
    const buf = Buffer.from('bücher.example\n');
    const domains: string[] = [];
    await parseStream(Readable.from([buf.subarray(0, 2), buf.subarray(2)]), { domain: (n) => domains.push(n), regex: () => {} }, emptyCounts());
    expect(domains).toEqual(['xn--bcher-kva.example']);
  });
});

describe('line endings', () => {
  it('CRLF files and a UTF-8 BOM parse like LF files', () => {
    const r = collect('\ufeff# list\r\n0.0.0.0 a.example\r\nb.example\r\n||c.example^\r\n');
    expect(r.domains.map((d) => d[0])).toEqual(['a.example', 'b.example', 'c.example']);
    expect(r.counts.invalid).toBe(0);
  });
});

describe('fuzz', () => {
  const lineArb = fc.oneof(
    fc.string({ maxLength: 120 }),
    fc.string({ unit: fc.constantFrom(...'ab.-_*|@^$/#! \t01:éü'.split('')), maxLength: 60 }),
    fc
      .tuple(fc.constantFrom('0.0.0.0 ', '||', '@@||', '*.', '/', ''), fc.domain(), fc.constantFrom('', '^', '^$important', '/', ' # c'))
      .map(([a, b, c]) => a + b + c),
  );
  it('never throws; every emitted domain is normalised; counters match what was emitted', () => {
    fc.assert(
      fc.property(fc.array(lineArb, { maxLength: 20 }), (lines) => {
        const counts: ParseCounts = emptyCounts();
        let d = 0;
        let r = 0;
        const sink = {
          domain(n: string, f: number) {
            d++;
            expect(normalizeDomain(n)).toBe(n);
            expect(f & (RULE_EXACT | RULE_CHILDREN)).not.toBe(0);
          },
          regex(s: string) {
            r++;
            expect(checkRegex(s)).toBeNull();
          },
        };
        for (const l of lines) {
          const before = { ...counts };
          parseLine(l, sink, counts);
          const moved =
            counts.domains -
            before.domains +
            (counts.regexes - before.regexes) +
            (counts.comments - before.comments) +
            (counts.invalid - before.invalid) +
            (counts.unsupported - before.unsupported) +
            (counts.ignored - before.ignored);
          expect(moved).toBeGreaterThanOrEqual(1);
        }
        expect(counts.lines).toBe(lines.length);
        expect(counts.domains).toBe(d);
        expect(counts.regexes).toBe(r);
      }),
      { numRuns: 500 },
    );
  });
});
