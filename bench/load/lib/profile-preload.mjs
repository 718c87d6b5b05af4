/**
 * `node --import bench/load/lib/profile-preload.mjs …`: with
 * `HEIMDALL_PROFILE_DIR` set, SIGUSR2 starts the V8 CPU profiler in this
 * process and the next SIGUSR2 writes `<pid>-<time>.cpuprofile` there, so a
 * profile covers a measured window only (not start-up or warm-up).
 * With `HEIMDALL_PROFILE_HEAP=1` it samples allocations instead (every 1 KiB,
 * objects later collected by either GC included: where the per-query garbage
 * comes from) and writes `<pid>-<time>.heapprofile`.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.HEIMDALL_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let on = false;
  const heap = process.env.HEIMDALL_PROFILE_HEAP === '1';
  process.on('SIGUSR2', () => {
    if (heap) {
      if (!on) {
        on = true;
        session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
        return;
      }
      on = false;
      session.post('HeapProfiler.stopSampling', (err, r) => {
        if (err) console.error(err);
        else writeFileSync(join(dir, `${process.pid}-${Date.now()}.heapprofile`), JSON.stringify(r.profile));
      });
      return;
    }
    if (!on) {
      on = true;
      session.post('Profiler.setSamplingInterval', { interval: 200 }, () => session.post('Profiler.enable', () => session.post('Profiler.start')));
      return;
    }
    on = false;
    session.post('Profiler.stop', (err, r) => {
      if (err) console.error(err);
      else writeFileSync(join(dir, `${process.pid}-${Date.now()}.cpuprofile`), JSON.stringify(r.profile));
    });
  });
}
