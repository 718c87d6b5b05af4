import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DECISION_ALLOWED,
  DECISION_BLOCKED,
  DECISION_MASK,
  DECISION_NONE,
  Engine,
  EngineBuilder,
  isPublicSuffix,
  MEMO_KEYS,
  MEMO_MASKS,
  RESULT_BY_REGEX,
  resultGroup,
  resultSource,
  type SourceSpec,
} from './engine.js';
import { randomSeed } from './hash.js';
import { spec } from './test-util.js';
import { emptyCounts, parseText, RULE_ALLOW, RULE_CHILDREN, RULE_EXACT, RULE_IMPORTANT, RULE_PLAIN } from './parser.js';

function build(sources: [SourceSpec, string][]): Engine {
  const b = new EngineBuilder(randomSeed());
  for (const [s, text] of sources) b.addText(s, text);
  return new Engine(b.finish());
}

describe('Engine decisions', () => {
  it('a listed domain blocks itself and its subdomains; exact-only lists do not', () => {
    const e = build([
      [spec(0, 0), 'ads.example\n'],
      [spec(1, 1, { exact: true }), 'exact.example\n||sub.exact2.example^\n*.wild.example\n'],
    ]);
    const listed = e.decide('ads.example', 1);
    expect([listed & DECISION_MASK, resultSource(listed), resultGroup(listed), listed & RESULT_BY_REGEX]).toEqual([DECISION_BLOCKED, 0, 0, 0]);
    const inGroup1 = e.decide('exact.example', 2);
    expect([inGroup1 & DECISION_MASK, resultSource(inGroup1), resultGroup(inGroup1)]).toEqual([DECISION_BLOCKED, 1, 1]);
    expect(e.decide('a.b.ADS.example', 1) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('xads.example', 1) & DECISION_MASK).toBe(DECISION_NONE);
    expect(e.decide('example', 1) & DECISION_MASK).toBe(DECISION_NONE);
    expect(e.decide('exact.example', 2) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('www.exact.example', 2) & DECISION_MASK).toBe(DECISION_NONE);
    // explicit adblock anchors and wildcards keep their meaning in an exact-only list
    expect(e.decide('x.sub.exact2.example', 2) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('wild.example', 2) & DECISION_MASK).toBe(DECISION_NONE);
    expect(e.decide('a.wild.example', 2) & DECISION_MASK).toBe(DECISION_BLOCKED);
    // groups are separate
    expect(e.decide('ads.example', 2) & DECISION_MASK).toBe(DECISION_NONE);
    expect(e.decide('exact.example', 1) & DECISION_MASK).toBe(DECISION_NONE);
    expect(e.decide('ads.example', 3) & DECISION_MASK).toBe(DECISION_BLOCKED);
  });

  it('allow wins over block, $important wins over allow', () => {
    const e = build([
      [spec(0, 0), '||example.com^\n||tracker.example.org^$important\n@@||cdn.example.com^\n'],
      [spec(1, 0, { allow: true }), 'tracker.example.org\nok.example.com\n'],
    ]);
    expect(e.decide('www.example.com', 1) & DECISION_MASK).toBe(DECISION_BLOCKED);
    const allowed = e.decide('ok.example.com', 1);
    expect([allowed & DECISION_MASK, resultSource(allowed)]).toEqual([DECISION_ALLOWED, 1]);
    expect(e.decide('img.cdn.example.com', 1) & DECISION_MASK).toBe(DECISION_ALLOWED);
    expect(e.decide('a.tracker.example.org', 1) & DECISION_MASK).toBe(DECISION_BLOCKED);
  });

  it("a name listed by two groups: the result names the client's group", () => {
    const e = build([
      [spec(0, 0), 'shared.example\n'],
      [spec(1, 1), 'shared.example\n'],
    ]);
    expect(resultGroup(e.decide('x.shared.example', 0b10))).toBe(1);
    expect(resultGroup(e.decide('x.shared.example', 0b01))).toBe(0);
    expect(resultGroup(e.decide('x.shared.example', 0b11))).toBe(0);
  });

  it('allow in one group beats block in another for a client in both', () => {
    const e = build([
      [spec(0, 0), 'social.example\n'],
      [spec(1, 1, { allow: true }), 'social.example\n'],
    ]);
    expect(e.decide('social.example', 0b01) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('social.example', 0b11) & DECISION_MASK).toBe(DECISION_ALLOWED);
  });

  it('regex rules, regex exceptions and $important regexes', () => {
    const e = build([
      [spec(0, 0), '/^ad[0-9]+\\./\n@@/^ad7\\./\n/^evil/$important\n||allowed-but.example^\n'],
      [spec(1, 0, { allow: true }), 'evil.allowed.example\nad5.example\n'],
    ]);
    const byRegex = e.decide('AD1.example', 1);
    expect([byRegex & DECISION_MASK, byRegex & RESULT_BY_REGEX, resultSource(byRegex)]).toEqual([DECISION_BLOCKED, RESULT_BY_REGEX, 0]);
    const allowedByList = e.decide('ad5.example', 1);
    expect([allowedByList & DECISION_MASK, allowedByList & RESULT_BY_REGEX, resultSource(allowedByList)]).toEqual([DECISION_ALLOWED, 0, 1]);
    expect(e.decide('ad7.example', 1) & DECISION_MASK).toBe(DECISION_ALLOWED);
    expect(e.decide('ad5.example', 1) & DECISION_MASK).toBe(DECISION_ALLOWED);
    expect(e.decide('evil.allowed.example', 1) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('ad.example', 1) & DECISION_MASK).toBe(DECISION_NONE);
    expect(e.decide('ad1.example', 2) & DECISION_MASK).toBe(DECISION_NONE);
  });

  it('refuses public suffixes and counts them; registrable-domain mode widens entries', () => {
    const b = new EngineBuilder(randomSeed());
    const c = b.addText(spec(0, 0), 'co.uk\ngithub.io\ncom\n*.co.uk\nads.example.co.uk\n');
    const c2 = b.addText(spec(1, 1, { registrable: true }), 'a.b.tracker.example.com\nuser.github.io\n');
    const e = new Engine(b.finish());
    expect(c.refusedPublicSuffix).toBe(4);
    expect(c.samples.join()).toMatch(/co\.uk \(public suffix/);
    expect(c2.refusedPublicSuffix).toBe(0);
    expect(e.decide('www.bbc.co.uk', 1) & DECISION_MASK).toBe(DECISION_NONE);
    expect(e.decide('x.ads.example.co.uk', 1) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('other.example.com', 2) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('user.github.io', 2) & DECISION_MASK).toBe(DECISION_BLOCKED);
    expect(e.decide('other.github.io', 2) & DECISION_MASK).toBe(DECISION_NONE);
    expect(isPublicSuffix('github.io')).toBe(true);
    expect(isPublicSuffix('example.github.io')).toBe(false);
  });

  it('caps entries per source', () => {
    const b = new EngineBuilder(randomSeed());
    const c = b.addText(spec(0, 0, { maxEntries: 2 }), 'a.example\nb.example\nc.example\n');
    const e = new Engine(b.finish());
    expect(c.dropped).toBe(1);
    expect(e.decide('c.example', 1) & DECISION_MASK).toBe(DECISION_NONE);
    expect(e.table.size).toBe(2);
  });

  it('the empty engine matches nothing', () => {
    expect(Engine.empty(randomSeed()).decide('a.example', 0xffffffff)).toBe(DECISION_NONE);
  });
});

describe('Engine against a reference model (differential, fast-check)', () => {
  const labels = ['a', 'b', 'ads', 'x1', 'co'];
  const tlds = ['com', 'co.uk', 'example', 'github.io'];
  const nameArb = fc
    .tuple(fc.array(fc.constantFrom(...labels), { minLength: 0, maxLength: 3 }), fc.constantFrom(...tlds))
    .map(([ls, tld]) => [...ls, tld].join('.'));
  const lineArb = fc.oneof(
    nameArb,
    nameArb.map((n) => `0.0.0.0 ${n}`),
    nameArb.map((n) => `*.${n}`),
    nameArb.map((n) => `||${n}^`),
    nameArb.map((n) => `|${n}^`),
    nameArb.map((n) => `@@||${n}^`),
    nameArb.map((n) => `||${n}^$important`),
    fc.constantFrom('/^a\\./', '/ads/', '@@/^b\\./', '/x1/$important', '# comment', 'junk line here'),
  );
  const sourceArb = fc.record({
    group: fc.integer({ min: 0, max: 2 }),
    allow: fc.boolean(),
    exact: fc.boolean(),
    registrable: fc.boolean(),
    lines: fc.array(lineArb, { maxLength: 12 }),
  });

  interface Rule {
    name: string;
    exact: boolean;
    children: boolean;
    allow: boolean;
    important: boolean;
    group: number;
  }
  interface Rx {
    re: RegExp;
    allow: boolean;
    important: boolean;
    group: number;
  }

  it('decides like a straightforward string-matching model', () => {
    fc.assert(
      fc.property(
        fc.array(sourceArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(nameArb, fc.integer({ min: 1, max: 7 })), { maxLength: 25 }),
        (sources, queries) => {
          const b = new EngineBuilder(randomSeed());
          const rules: Rule[] = [];
          const rxs: Rx[] = [];
          sources.forEach((s, id) => {
            const sp = spec(id, s.group, { allow: s.allow, exact: s.exact, registrable: s.registrable });
            const text = s.lines.join('\n');
            b.addText(sp, text);
            // Reference: the same parsed rules, interpreted with plain string operations.
            parseText(
              text,
              {
                domain(name, flags) {
                  if (isPublicSuffix(name)) return;
                  let n = name;
                  let exact = (flags & RULE_EXACT) !== 0;
                  let children = (flags & RULE_CHILDREN) !== 0;
                  if (s.exact && (flags & RULE_PLAIN) !== 0) children = false;
                  if (s.registrable) {
                    const parts = n.split('.');
                    for (let k = parts.length - 1; k >= 0; k--) {
                      const cand = parts.slice(k).join('.');
                      if (!isPublicSuffix(cand)) {
                        if (cand !== n) {
                          n = cand;
                          exact = true;
                          children = true;
                        }
                        break;
                      }
                    }
                  }
                  const allow = s.allow || (flags & RULE_ALLOW) !== 0;
                  rules.push({ name: n, exact, children, allow, important: !allow && (flags & RULE_IMPORTANT) !== 0, group: s.group });
                },
                regex(source, flags) {
                  const allow = s.allow || (flags & RULE_ALLOW) !== 0;
                  rxs.push({ re: new RegExp(source), allow, important: !allow && (flags & RULE_IMPORTANT) !== 0, group: s.group });
                },
              },
              emptyCounts(),
            );
          });
          const e = new Engine(b.finish());
          for (const [q, mask] of queries) {
            const inGroup = (g: number) => ((1 << g) & mask) !== 0;
            const hits = rules.filter((r) => inGroup(r.group) && ((r.exact && q === r.name) || (r.children && q.endsWith(`.${r.name}`))));
            const rxHits = rxs.filter((r) => inGroup(r.group) && r.re.test(q));
            const important = hits.some((r) => r.important) || rxHits.some((r) => r.important);
            const allow = hits.some((r) => r.allow) || rxHits.some((r) => r.allow);
            const block = hits.some((r) => !r.allow) || rxHits.some((r) => !r.allow);
            const expected = important ? DECISION_BLOCKED : allow ? DECISION_ALLOWED : block ? DECISION_BLOCKED : DECISION_NONE;
            const result = e.decide(q, mask);
            // The wire walk (what the middleware runs) agrees, on an upper-cased copy of the name.
            const wire = Buffer.from([
              ...q
                .toUpperCase()
                .split('.')
                .flatMap((l) => [l.length, ...Buffer.from(l)]),
              0,
            ]);
            const w = e.decideWire(wire, 0, mask);
            if (e.wireDecides(mask)) expect(w, `${q} mask ${mask} on the wire`).toBe(result);
            else expect(w).toBe(-1);
            expect(result & DECISION_MASK, `${q} mask ${mask}`).toBe(expected);
            // The packed group is one of the client's groups (NONE carries no source).
            if (expected === DECISION_NONE) expect(resultSource(result)).toBe(-1);
            else {
              expect(inGroup(resultGroup(result)), `${q} mask ${mask}: group ${resultGroup(result)}`).toBe(true);
              expect(resultSource(result)).toBeGreaterThanOrEqual(0);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('Engine memo (remember / remembered)', () => {
  it('gives back what was remembered per group mask, and stays bounded in keys and masks', () => {
    const e = build([[spec(0, 0), 'ads.example\n']]);
    expect(e.remembered('k', 1)).toBe(-1);
    e.remember('k', 1, 5);
    expect(e.remembered('k', 1)).toBe(5);
    expect(e.remembered('k', 2)).toBe(-1); // another set of groups: decided again
    for (let i = 0; i < MEMO_KEYS - 1; i++) e.remember(`k${i}`, 1, 1);
    expect(e.remembered('k', 1)).toBe(5); // full, not yet over
    e.remember('one-more', 1, 2); // over the bound: that mask's keys are forgotten at once
    expect(e.remembered('k', 1)).toBe(-1);
    expect(e.remembered('one-more', 1)).toBe(2);
    for (let m = 2; m <= MEMO_MASKS + 1; m++) e.remember('k', m, m); // mask 1 is the first of MEMO_MASKS
    expect(e.remembered('k', MEMO_MASKS)).toBe(MEMO_MASKS);
    expect(e.remembered('k', MEMO_MASKS + 1)).toBe(-1); // one mask too many: not remembered
  });
});
