import { describe, expect, it } from 'vitest';
import { changeOf, ratiosOf } from './compare.js';

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
    expect(r.get('cache-hit: heimdall / raw-dgram, QPS (target ≥ 1.6)')).toEqual({ value: 1.33, lowerBetter: false, gate: false });
    expect(r.get('p99 at 10k QPS: heimdall / dnsmasq (target ≤ 1.5)')).toEqual({ value: 2.888, lowerBetter: true, gate: false });
    expect(r.get('workers-hit: w2 / w1, CPU µs/query of the process tree (1.0 = no per-query cost from the second worker)')?.lowerBetter).toBe(true);
    expect(r.get('cache-hit: raw-mmsg (C floor) / raw-dgram, by CPU µs/query')?.gate).toBe(false);
    expect(r.get('cache-hit: heimdall / raw-native, by CPU µs/query (what the default chain costs over the bare native path)')?.gate).toBe(true);
    expect(r.get('cache-hit: heimdall / dnsmasq, by CPU µs/query (target ≥ 0.75)')?.gate).toBe(false);
    expect(r.has('never measured')).toBe(false);
  });

  it('says how much worse a ratio got, either way round', () => {
    expect(changeOf(1, 1.2, true)).toBeCloseTo(0.2);
    expect(changeOf(1.5, 1.2, false)).toBeCloseTo(0.25);
    expect(changeOf(1.2, 1.5, false)).toBeLessThan(0);
  });
});
