import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { baselineFor, benchArgs, changeOf, gatedBy, higherBetter, verdictOf, ratiosOf, referenceOf, spreadOf, withBaseline } from './compare.js';

describe('ratiosOf (npm run bench -- --compare)', () => {
  it('reads micro-benchmark ratios (lower is better, gated)', () => {
    const r = ratiosOf({ results: [{ name: 'cache: hit path', ratio: 1.33 }, { name: 'no peer', ratio: 0 }, { name: 'text' }], ratios: { leaderSync: 4.09 } });
    expect([...r]).toEqual([
      ['cache: hit path', { value: 1.33, lowerBetter: true, gate: true }],
      ['leaderSync', { value: 4.09, lowerBetter: true, gate: true }],
    ]);
  });

  it("reads a load scenario's per-round ratios as their median; gates only the app's cache-hit CPU against the bare JavaScript servers", () => {
    const r = ratiosOf(
      {
        ratios: {
          'cache-hit: heimdall / raw-dgram, by CPU µs/query (target ≥ 1.6)': [1.335, 1.306, 1.174],
          'cache-hit: heimdall / raw-dgram, QPS (target ≥ 1.6)': [1.33, null, 1.17],
          'p99 at 10k QPS: heimdall / dnsmasq (target ≤ 1.5)': [2.321, 4.457, 2.888],
          'workers-hit: w2 / w1, CPU µs/query of the process tree (1.0 = no per-query cost from the second worker)': [0.9, 1.1, 1.0],
          'cache-hit: raw-mmsg (C floor) / raw-dgram, by CPU µs/query': [2.0],
          'cache-hit: heimdall / raw-native, by CPU µs/query (what the default chain costs over the bare native path)': [0.7],
          'cache-hit: heimdall / dnsmasq, by CPU µs/query (target ≥ 0.75)': [1.4],
          'never measured': [null, null],
        },
      },
      true,
    );
    expect(r.get('cache-hit: heimdall / raw-dgram, by CPU µs/query (target ≥ 1.6)')).toEqual({ value: 1.306, lowerBetter: false, gate: true });
    expect(r.get('cache-hit: heimdall / raw-dgram, QPS (target ≥ 1.6)')).toMatchObject({
      value: 1.33,
      lowerBetter: false,
      gate: false,
      why: expect.stringMatching(/only the app's cache-hit CPU/),
    });
    expect(r.get('p99 at 10k QPS: heimdall / dnsmasq (target ≤ 1.5)')).toMatchObject({ value: 2.888, lowerBetter: true, gate: false });
    expect(r.get('workers-hit: w2 / w1, CPU µs/query of the process tree (1.0 = no per-query cost from the second worker)')?.lowerBetter).toBe(true);
    expect(r.get('cache-hit: raw-mmsg (C floor) / raw-dgram, by CPU µs/query')?.gate).toBe(false);
    expect(r.get('cache-hit: heimdall / raw-native, by CPU µs/query (what the default chain costs over the bare native path)')?.gate).toBe(true);
    expect(r.get('cache-hit: heimdall / dnsmasq, by CPU µs/query (target ≥ 0.75)')?.gate).toBe(false);
    expect(r.has('never measured')).toBe(false);
  });

  it('reads peer / ours ratios (codec, pipeline, upstream) as higher is better: a slower codec must look worse, not better', () => {
    const codec = { better: 'higher', results: [{ name: 'decode response, 2 A + OPT', ratio: 9 }] };
    const r = ratiosOf(codec).get('decode response, 2 A + OPT')!;
    expect(r.lowerBetter).toBe(false);
    // 9x dns-packet → 6x: 50 % worse.
    expect(changeOf(r.value, 6, r.lowerBetter)).toBeCloseTo(0.5);
    // A results file from before the field: its note says so.
    expect(ratiosOf({ note: 'ratio = koa-compose / heimdall (higher is better).', results: [{ name: 'x', ratio: 2 }] }).get('x')?.lowerBetter).toBe(false);
    expect(ratiosOf({ note: 'ratio = heimdall avg / peer avg (lower is better)', results: [{ name: 'x', ratio: 2 }] }).get('x')?.lowerBetter).toBe(true);
  });

  it("every committed micro-benchmark results file's ratio direction is the one its note states", () => {
    const dir = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../results');
    const seen: string[] = [];
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('load') && f !== 'baseline.json')) {
      const json = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
      const note = String(json.note ?? '');
      if (/higher is better/.test(note)) {
        expect(higherBetter(json), f).toBe(true);
        seen.push(f);
      } else expect(higherBetter(json), f).toBe(false);
    }
    expect(seen.sort()).toEqual(['codec.json', 'pipeline.json', 'upstream.json']);
  });

  it('does not gate a micro-benchmark whose own side runs in under 5 ns (optimised nearly away)', () => {
    const r = ratiosOf({
      better: 'higher',
      results: [
        { name: 'chain of 1', avgNs: 1.7, ratio: 77.3 },
        { name: 'chain of 6', avgNs: 79.2, ratio: 2.7 },
      ],
    });
    expect(r.get('chain of 1')?.gate).toBe(false);
    expect(r.get('chain of 6')?.gate).toBe(true);
  });

  it('says how much worse a ratio got, either way round', () => {
    expect(changeOf(1, 1.2, true)).toBeCloseTo(0.2);
    expect(changeOf(1.5, 1.2, false)).toBeCloseTo(0.25);
    expect(changeOf(1.2, 1.5, false)).toBeLessThan(0);
  });
});

describe('the multi-run baseline (npm run bench -- --baseline)', () => {
  const amd = { cpu: 'AMD EPYC', node: 20 };
  const entry = (machine: { cpu: string; node: number }, v: number) => ({ machine, date: 'd', commit: 'c', runs: 3, ratios: { blocking: { a: [v] } } });

  it('holds a new ratio against the worst of the baseline runs, so their own spread is not a regression', () => {
    // blocking's "hash table: not listed" on 2026-12-01: 0.064 in the baseline, then 0.076 (median of 0.378, 0.076, 0.066)
    // on unchanged code, flagged as +19 % against a single-run baseline.
    const runs = [0.064, 0.071, 0.07];
    expect(changeOf(referenceOf(runs, true), 0.076, true)).toBeLessThan(0.1);
    expect(changeOf(referenceOf(runs, true), 0.08, true)).toBeGreaterThan(0.1);
    expect(referenceOf([1.3, 1.2, 1.4], false)).toBe(1.2);
    expect(spreadOf([0.064, 0.071, 0.07])).toBeCloseTo(0.109, 3);
  });

  it('does not gate a ratio whose baseline runs spread by more than 20 %: its peer moves, not our code', () => {
    // blocking's "hash table: not listed" in the baseline of 2026-12-01: the peer took 1.36, 1.07, 2.88 µs.
    expect(gatedBy([0.132, 0.177, 0.066])).toBe(false);
    expect(gatedBy([1.48, 1.44, 1.54])).toBe(true);
    expect(gatedBy([5])).toBe(true);
  });

  it('keeps one entry per CPU model and Node major, and finds only the matching one', () => {
    let b = withBaseline(null, entry(amd, 1));
    b = withBaseline(b, entry({ cpu: 'Intel Xeon', node: 20 }, 2));
    b = withBaseline(b, entry(amd, 3));
    expect(b.machines).toHaveLength(2);
    expect(baselineFor(b, amd)?.ratios.blocking?.a).toEqual([3]);
    expect(baselineFor(b, { cpu: 'AMD EPYC', node: 22 })).toBeNull();
    expect(baselineFor(null, amd)).toBeNull();
  });
});

describe('verdictOf: one ratio against its reference', () => {
  const micro = { value: 0.064, lowerBetter: true, gate: true };
  it('fails a gated ratio more than 10 % worse than the worst baseline run, and says why it does not otherwise', () => {
    expect(verdictOf(micro, [0.064, 0.07], 0.079)).toMatchObject({ reference: 0.07, fails: true, why: null });
    expect(verdictOf(micro, [0.064, 0.07], 0.076).fails).toBe(false);
    // The same worsening, not gated: a noisy baseline, another machine, a ratio printed only.
    expect(verdictOf(micro, [0.064, 0.09], 0.2)).toMatchObject({ fails: false, why: expect.stringMatching(/spread 41 %/) });
    expect(verdictOf(micro, [0.064], 0.2, true)).toMatchObject({ fails: false, why: expect.stringMatching(/another machine/) });
    const tiny = ratiosOf({ results: [{ name: 'chain of 1', avgNs: 1.7, ratio: 77.3 }], better: 'higher' }).get('chain of 1')!;
    expect(verdictOf(tiny, [77.3], 60)).toMatchObject({ fails: false, why: 'ours runs in under 5 ns' });
    // Higher is better: a fall is worse.
    expect(verdictOf({ value: 1.3, lowerBetter: false, gate: true }, [1.3, 1.2], 1.05).fails).toBe(true);
  });
});

describe('benchArgs (--runs N, the benchmarks named)', () => {
  it('reads --runs directly or as npm passes it, defaults to 3, and refuses counts outside 2..20', () => {
    expect(benchArgs(['--baseline'], {})).toEqual({ runs: 3, only: [] });
    expect(benchArgs(['--baseline', '--runs', '5', 'cache'], {})).toEqual({ runs: 5, only: ['cache'] });
    // `npm run bench -- --baseline --runs 5 cache`: npm keeps `--runs` as its config (true) and passes 5 on.
    expect(benchArgs(['5', 'cache'], { npm_config_runs: 'true' })).toEqual({ runs: 5, only: ['cache'] });
    expect(benchArgs([], { npm_config_runs: '4' })).toEqual({ runs: 4, only: [] });
    expect(() => benchArgs(['--runs', '1'], {})).toThrow(/from 2 to 20/);
    expect(() => benchArgs(['--runs', '21'], {})).toThrow(/from 2 to 20/);
    expect(() => benchArgs(['--runs', 'x'], {})).toThrow(/from 2 to 20/);
  });
});
