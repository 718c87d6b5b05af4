import { describe, expect, it } from 'vitest';
import { attribute, parseSchedScript } from './sched-trace.js';

/** A `perf script -F cpu,time,trace` line: at `sec` core `cpu` switches to `comm`/`pid`. */
const sw = (cpu: number, sec: number, comm: string, pid: number): string =>
  `[${String(cpu).padStart(3, '0')}]  ${sec.toFixed(6)}: prev_comm=x prev_pid=1 prev_prio=120 prev_state=S ==> next_comm=${comm} next_pid=${pid} next_prio=120`;

// Core 0: idle, the server (pid 100) 10.000100–10.000300, kdamond 10.000300–10.002300,
// the server 10.002300–10.002600, a V8 helper (tid 101) 10.002600–10.002700, idle after.
// Core 1: the client's core, kdamond there too at 10.005000–10.006000.
const script = [
  sw(0, 10.0, 'swapper/0', 0),
  sw(0, 10.0001, 'node', 100),
  '[000]  10.000200: comm=node pid=100 runtime=1000 [ns]',
  sw(0, 10.0003, 'kdamond.0', 72),
  sw(0, 10.0023, 'node', 100),
  sw(0, 10.0026, 'node', 101),
  sw(0, 10.0027, 'swapper/0', 0),
  sw(0, 10.01, 'swapper/0', 0),
  sw(1, 10.0, 'batchperf', 200),
  sw(1, 10.005, 'kdamond.0', 72),
  sw(1, 10.006, 'batchperf', 200),
].join('\n');

describe('tail attribution', () => {
  it('splits each slow window by what ran on the server core, GC apart', () => {
    const tls = parseSchedScript(script);
    expect(tls.get(0)).toHaveLength(7);
    // Start 10 s; answer A sent at +200 µs, answered 2.5 ms later (over the kdamond run);
    // answer B sent at +2550 µs, answered 200 µs later (server, then its helper thread).
    const slow = ['t 10000000', 'a 200 2500', 'a 2550 200'].join('\n');
    const gc = 'minor 10002350 100\nincremental 10002000 5000\n';
    const a = attribute(tls, slow, 1000, 0, 100, new Set([100, 101]), gc, (tid) => `helper/${tid}`);
    expect(a.answers).toBe(2);
    expect(a.windowUs).toBe(2700);
    // A: 100 µs server (10.0002–.0003), 2000 kdamond, 300 server of which 100 GC (minor only), 100 helper.
    // B: 50 server (no GC: the pause ended at .00245), 100 helper, 50 idle.
    expect(a.inSlow.get('kdamond.0')).toBeCloseTo(2000, 0);
    expect(a.inSlow.get('server main, GC')).toBeCloseTo(100, 0);
    expect(a.inSlow.get('server main, other')).toBeCloseTo(100 + 200 + 50, 0);
    expect(a.inSlow.get('server thread helper/101')).toBeCloseTo(200, 0);
    expect(a.inSlow.get('idle')).toBeCloseTo(50, 0);
    expect(a.dominated.get('kdamond.0')).toBe(1);
    expect(a.dominated.get('server thread helper/101')).toBe(1);
    // The platform: two kdamond runs (one per core), 3 ms in all, longest 2 ms; A overlapped one.
    expect(a.platformRuns).toBe(2);
    expect(a.platformUs).toBeCloseTo(3000, 0);
    expect(a.platformMaxUs).toBeCloseTo(2000, 0);
    expect(a.platformAnswers).toBe(1);
  });

  it('p99 from the slow log, with and without the answers a platform stall overlapped', () => {
    const tls = parseSchedScript(script);
    // 200 answers: the three slowest logged; the top 1 % is two answers, so p99 is the third slowest.
    const slow = ['t 10000000', 'a 200 2500', 'a 4900 1500', 'a 8000 300'].join('\n');
    const a = attribute(tls, slow, 200, 0, 100, new Set([100]));
    expect(a.p99Us).toBe(300);
    // Without the two kdamond overlaps (A on core 0, the 4.9–6.4 ms one on core 1): 198 answers,
    // one logged; the 99th percentile falls among the fast ones, under the threshold.
    expect(a.platformAnswers).toBe(2);
    expect(a.p99WithoutPlatformUs).toBeNull();
    const more = attribute(tls, `${slow}\na 9000 250\na 9100 200`, 200, 0, 100, new Set([100]));
    expect(more.p99WithoutPlatformUs).toBe(250);
  });

  it('refuses a slow log without its start line', () => {
    expect(() => attribute(parseSchedScript(script), 'a 1 200', 10, 0, 100, new Set([100]))).toThrow(/start line/);
  });
});
