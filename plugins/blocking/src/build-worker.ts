/**
 * Worker entry point: builds the engine from `workerData` and posts the
 * result back, transferring the typed arrays (no copy).
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type BuildInput, buildEngine } from './build.js';

// On Linux, niceness is per thread: lower this build thread's priority so the
// thread that answers queries wins the CPU while a big list is being built
// (the machine may have fewer cores than busy threads). Best effort.
try {
  setPriority(19);
} catch {
  // not permitted on this platform: build at normal priority
}

const input = workerData as BuildInput;
try {
  const out = await buildEngine(input);
  parentPort!.postMessage({ ok: true, out }, [out.slots.buffer as ArrayBuffer, out.palette.buffer as ArrayBuffer, out.filter.buffer as ArrayBuffer]);
} catch (err) {
  parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) });
}
