/**
 * Runs every mitata micro-benchmark in bench/*.bench.ts, one after another,
 * each in its own Node process (so one benchmark's heap and JIT state cannot
 * colour the next one's figures). Each benchmark writes bench/results/<name>.json.
 *
 *   npm run bench                  # all of them
 *   npm run bench -- codec cache   # only these
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(f.replace('.bench.ts', '')))
  .sort();

let failed = 0;
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, file)], {
    cwd: join(here, '..'),
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    failed++;
    console.error(`${file} exited with ${r.status ?? r.signal}`);
  }
}
if (failed > 0) process.exit(1);
