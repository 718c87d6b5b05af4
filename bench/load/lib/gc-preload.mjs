/**
 * `node --import bench/load/lib/gc-preload.mjs …`: with `HEIMDALL_GC_LOG_DIR`
 * set, every V8 garbage collection of this process is appended to
 * `<dir>/<pid>.gc` as `<kind> <start µs> <duration µs>` on CLOCK_MONOTONIC
 * (the clock `perf record -k CLOCK_MONOTONIC` and batchperf's slow log use),
 * so a tail attribution can tell GC pauses from other work on the main
 * thread (lib/sched-trace.ts). A handful of lines per second: no effect on
 * what is measured beyond one small write per collection.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';

const dir = process.env.HEIMDALL_GC_LOG_DIR;
if (dir) {
  const file = join(dir, `${process.pid}.gc`);
  // performance.now() and process.hrtime() share CLOCK_MONOTONIC: one offset lines them up.
  const offsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
  const kinds = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
  };
  new PerformanceObserver((list) => {
    let lines = '';
    for (const e of list.getEntries()) {
      const kind = kinds[e.detail?.kind ?? e.kind] ?? 'gc';
      lines += `${kind} ${Math.round(offsetUs + e.startTime * 1000)} ${Math.round(e.duration * 1000)}\n`;
    }
    appendFileSync(file, lines);
  }).observe({ entryTypes: ['gc'] });
}
