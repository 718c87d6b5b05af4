/**
 * Query files for dnsperf (`name TYPE` per line) and the 100k-entry
 * blocklist, generated into the run's temp dir. Names are deterministic so
 * two runs query the same data.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/** Writes `count` lines produced by `line(i)` to `path`. */
export async function writeLines(path: string, count: number, line: (i: number) => string): Promise<string> {
  const out = createWriteStream(path);
  let chunk = '';
  for (let i = 0; i < count; i++) {
    chunk += line(i) + '\n';
    if (chunk.length > 65536) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  return path;
}

/** `count` distinct A queries under `prefix` (e.g. `hit` → `h12.hit.bench.example A`). */
export function nameFile(path: string, prefix: string, count: number): Promise<string> {
  return writeLines(path, count, (i) => `n${i.toString(36)}.${prefix}.bench.example A`);
}

/** A hosts-format blocklist with `count` distinct domains (none of them queried by the hit/miss files). */
export function blocklistFile(path: string, count: number): Promise<string> {
  return writeLines(path, count, (i) => `0.0.0.0 ads${i.toString(36)}.tracker${i % 97}.example`);
}
