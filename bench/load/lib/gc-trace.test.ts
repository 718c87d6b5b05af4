import { describe, expect, it } from 'vitest';
import { gcSummary } from './gc-trace.js';

// Lines as Node 20 prints them with --trace-gc (cut after the pause); 0x7f… is a worker thread's isolate.
const trace = [
  '[8567:0xb070fa0]     5095 ms: Scavenge 44.2 (50.3) -> 41.0 (50.6) MB, 0.44 / 0.00 ms  (average mu = 0.997, current mu = 0.997) allocation failure;',
  '[8567:0xb070fa0]     5551 ms: Scavenge 44.7 (50.8) -> 41.5 (51.1) MB, 0.21 / 0.00 ms  (average mu = 0.997, current mu = 0.997) allocation failure;',
  '[8567:0x7fee90000f00]     8142 ms: Mark-Compact (reduce) 6.6 (10.1) -> 3.7 (6.4) MB, 3.90 / 0.01 ms  (+ 3.3 ms in 58 steps since start of marking)',
  '{"level":40,"msg":"a log line in between"}',
  '[8567:0xb070fa0]     7034 ms: Mark-Compact 67.5 (76.8) -> 16.7 (38.3) MB, 8.03 / 0.03 ms  (+ 0.7 ms in 19 steps since start of marking)',
  '[8567:0xb070fa0]     7100 ms: Scavenge 20.0 (38.3) -> 16.8 (38.3) MB, 0.12 / 0.00 ms  (average mu = 0.998, current mu = 0.998) allocation failure;',
  '[8567:0xb070fa0]     7200 ms: Scavenge 20.0 (38.3) -> 17.3 (38.3) MB, 0.12 / 0.00 ms  (average mu = 0.998, current mu = 0.998) allocation failure;',
].join('\n');

describe('gcSummary', () => {
  it("counts the main isolate's collections, growth per scavenge and mark-compact pauses", () => {
    const s = gcSummary(trace);
    expect(s.scavenges).toBe(4);
    expect(s.markCompacts).toBe(1);
    expect(s.pausesMs).toEqual([8.03]);
    // Steps: 41.0→41.5 (+0.5), 41.5→16.8 (a collection: left out), 16.8→17.3 (+0.5).
    expect(s.growthKBPerScavenge).toBeCloseTo(512, 0);
  });

  it('reports nothing for output without collections', () => {
    expect(gcSummary('listening\n')).toEqual({ scavenges: 0, markCompacts: 0, growthKBPerScavenge: 0, pausesMs: [] });
  });
});
