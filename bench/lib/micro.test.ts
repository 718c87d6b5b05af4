import { describe, expect, it } from 'vitest';
import { bestOfInterleaved, resultRows } from './micro.js';

const run = {
  benchmarks: [
    { runs: [{ name: 'ours', stats: { avg: 300, p50: 280, p75: 310, p99: 900 } }] },
    { runs: [{ name: 'peer', stats: { avg: 100, p50: 95, p75: 105, p99: 400 } }] },
  ],
};

describe('resultRows', () => {
  it("takes a row's ratio from mitata's averages, or from tight-loop figures when both sides have one", () => {
    expect(resultRows(run).row('x', 'ours', 'peer').ratio).toBe(3);
    const r = resultRows(run, { tight: { ours: 150, peer: 100 } }).row('x', 'ours', 'peer');
    expect(r).toMatchObject({ ratio: 1.5, tightNs: 150, peerTightNs: 100, avgNs: 300, peerAvgNs: 100 });
    // Only one side measured in tight loops: the averages decide.
    expect(resultRows(run, { tight: { ours: 150 } }).row('x', 'ours', 'peer').ratio).toBe(3);
  });
});

describe('bestOfInterleaved', () => {
  it('gives each case its best round, in ns per call, the cases taking turns', () => {
    const order: string[] = [];
    let spin = 0;
    const best = bestOfInterleaved(
      {
        light: () => {
          order.push('a');
          return spin++;
        },
        heavy: () => {
          order.push('b');
          for (let i = 0; i < 2000; i++) spin = (spin * 31 + i) | 0;
          return spin;
        },
      },
      50,
      3,
    );
    expect(best.heavy).toBeGreaterThan(best.light!);
    expect(order.length).toBe(300);
    // a's 50 calls, b's 50, a's 50 …: three turns each.
    expect(order.slice(45, 55).join('')).toBe('aaaaabbbbb');
    expect(order.slice(95, 105).join('')).toBe('bbbbbaaaaa');
  });
});
