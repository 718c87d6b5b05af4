/**
 * Worker entry point: builds the engine from `workerData` and posts the
 * result back, transferring the typed arrays (no copy).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type BuildInput, buildEngine } from './build.js';

const input = workerData as BuildInput;
try {
  const out = await buildEngine(input);
  parentPort!.postMessage({ ok: true, out }, [out.slots.buffer as ArrayBuffer, out.palette.buffer as ArrayBuffer, out.filter.buffer as ArrayBuffer]);
} catch (err) {
  parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) });
}
