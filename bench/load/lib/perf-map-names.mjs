/**
 * Names the JIT addresses of `callgrind_annotate` lines (stdin) from V8's
 * perf map (`node --perf-basic-prof` writes /tmp/perf-<pid>.map) and prints
 * each line's count divided by the number of queries:
 *   callgrind_annotate cg | … | node perf-map-names.mjs /tmp/perf-123.map 20000
 */
import { readFileSync } from 'node:fs';

const [mapFile, queries] = process.argv.slice(2);
const n = Number(queries);
const map = readFileSync(mapFile, 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .filter((p) => p.length >= 3)
  .map(([a, size, ...name]) => ({ start: Number.parseInt(a, 16), end: Number.parseInt(a, 16) + Number.parseInt(size, 16), name: name.join(' ') }));

/** The newest map entry holding `addr` (V8 reuses the space of collected code, and the map only grows), or undefined. */
function lookup(addr) {
  for (let i = map.length - 1; i >= 0; i--) if (map[i].start <= addr && addr < map[i].end) return map[i];
  return undefined;
}

for (const line of readFileSync(0, 'utf8').split('\n')) {
  const m = /^\s*([0-9,]+) \(\s*([0-9.]+)%\)\s+(.*)$/.exec(line);
  if (m === null) continue;
  const count = Number(m[1].replaceAll(',', ''));
  const jit = /\?\?\?:0x([0-9a-f]+)/.exec(m[3]);
  const name = jit === null ? m[3].replace(/^\?\?\?:/, '') : (lookup(Number.parseInt(jit[1], 16))?.name ?? m[3]);
  console.log(`${String(Math.round(count / n)).padStart(7)}  ${m[2].padStart(5)} %  ${name.replace(/file:\/\/\/\S*?\/(packages|plugins|apps)\//, '$1/')}`);
}
