/**
 * Runs every mitata micro-benchmark in bench/*.bench.ts, one after another,
 * each in its own Node process (so one benchmark's heap and JIT state cannot
 * colour the next one's figures). Each benchmark writes bench/results/<name>.json.
 *
 *   npm run bench                  # all of them
 *   npm run bench -- codec cache   # only these
 *   npm run bench -- --compare     # all of them and the native load scenarios, then
 *                                  # compare with the committed results (below)
 *
 * `--compare` (issue 14, regression watch): before running, reads the
 * committed results (`git show HEAD:bench/results/<name>.json`); runs the
 * benchmarks and `load/native.ts` (under the machine's load lock,
 * `flock /tmp/heimdall-load.lock`); then compares every ratio to an in-run
 * peer — micro-benchmarks: `results[].ratio` (ours / peer, lower is better);
 * load: `ratios` of load-native.json (higher is better, p99 ratios lower is
 * better) — with the committed one. A ratio that worsens by more than 10 %
 * is reported and the command exits 1. Ratios to a peer measured in the same
 * run keep this meaningful on a noisy, shared machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsxEnv } from './lib/tsx-env.js';

const here = dirname(fileURLToPath(import.meta.url));
// `npm run bench -- --compare` reaches here as npm's config `compare` (the root script runs `npm run bench -w …`).
const compare = process.argv.includes('--compare') || process.env.npm_config_compare === 'true';
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(f.replace('.bench.ts', '')))
  .sort();
const TOLERANCE = 0.1;

type Json = Record<string, unknown>;
function committed(name: string): Json | null {
  const r = spawnSync('git', ['show', `HEAD:bench/results/${name}.json`], { cwd: here, encoding: 'utf8' });
  if (r.status === 0) return JSON.parse(r.stdout) as Json;
  const f = join(here, 'results', `${name}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Json) : null;
}
/** name → [ratio, lower is better] of one results file. */
export function ratiosOf(json: Json | null): Map<string, [number, boolean]> {
  const out = new Map<string, [number, boolean]>();
  if (json === null) return out;
  for (const r of (Array.isArray(json.results) ? json.results : []) as Json[]) {
    if (typeof r?.name === 'string' && typeof r.ratio === 'number' && r.ratio > 0) out.set(r.name, [r.ratio, true]);
  }
  for (const [k, v] of Object.entries((json.ratios ?? {}) as Json)) {
    if (typeof v === 'number' && v > 0) out.set(k, [v, /p99/.test(k)]);
  }
  return out;
}
const names = [...files.map((f) => f.replace('.bench.ts', '')), ...(compare && only.length === 0 ? ['load-native'] : [])];
const before = new Map(compare ? names.map((n) => [n, committed(n)] as const) : []);

let failed = 0;
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, file)], {
    cwd: join(here, '..'),
    env: tsxEnv(),
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    failed++;
    console.error(`${file} exited with ${r.status ?? r.signal}`);
  }
}
if (compare && only.length === 0) {
  console.log('\n=== load/native.ts (under flock /tmp/heimdall-load.lock) ===');
  const r = spawnSync('flock', ['/tmp/heimdall-load.lock', process.execPath, '--import', 'tsx', join(here, 'load/native.ts'), '--seconds', '5'], {
    cwd: here,
    stdio: 'inherit',
  });
  if (r.status !== 0) failed++;
}
if (compare) {
  const worse: string[] = [];
  console.log('\n=== compare with the committed results (ratio to the in-run peer) ===');
  for (const name of names) {
    const old = ratiosOf(before.get(name) ?? null);
    const f = join(here, 'results', `${name}.json`);
    const now = ratiosOf(existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Json) : null);
    for (const [key, [was, lowerBetter]] of old) {
      const is = now.get(key)?.[0];
      if (is === undefined) continue;
      const change = lowerBetter ? is / was - 1 : was / is - 1; // > 0: worse
      const line = `${name}: ${key}: ${was} → ${is} (${change > 0 ? '+' : ''}${(change * 100).toFixed(1)} % ${change > 0 ? 'worse' : 'better'})`;
      if (change > TOLERANCE) worse.push(line);
      console.log(`  ${change > TOLERANCE ? '✗' : '·'} ${line}`);
    }
  }
  if (worse.length > 0) {
    console.error(
      `\n${worse.length} hot path(s) worsened by more than ${TOLERANCE * 100} % against the committed results:\n${worse.map((w) => `  ${w}`).join('\n')}`,
    );
    process.exit(1);
  }
  console.log('\nno ratio worsened by more than 10 %');
}
if (failed > 0) process.exit(1);
