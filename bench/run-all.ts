/**
 * Runs every mitata micro-benchmark in bench/*.bench.ts, one after another,
 * each in its own Node process (so one benchmark's heap and JIT state cannot
 * colour the next one's figures). Each benchmark writes bench/results/<name>.json.
 *
 *   npm run bench                  # all of them
 *   npm run bench -- codec cache   # only these
 *   npm run bench -- --compare     # all of them and the native load scenarios, then
 *                                  # compare with the committed results (below)
 *   npm run bench -- --compare instructions  # only the callgrind count below (two minutes)
 *   npm run bench -- --baseline    # all of them 3 times (--runs N), interleaved: each ratio's
 *                                  # runs go to bench/results/baseline.json for this machine
 *
 * `--compare` (issue 14, regression watch): before running, reads the
 * committed results (`git show HEAD:bench/results/<name>.json`); runs the
 * benchmarks and `load/native.ts` (under the machine's load lock,
 * `flock /tmp/heimdall-load.lock`); then compares every ratio to an in-run
 * peer — micro-benchmarks: `results[].ratio` (ours / peer, lower is better);
 * load: `ratios` of load-native.json, the median of each ratio's rounds
 * (higher is better, p99 ratios lower is better) — with the committed one.
 * A ratio that worsens by more than 10 % is reported and the command exits 1
 * (lib/compare.ts): every micro-benchmark ratio, and of the load ratios the
 * app's cache-hit CPU per query against the bare JavaScript servers
 * (`raw-dgram`, `raw-native`), when the committed load results come from
 * the same machine (the kernel's share of a query moves with it); and the
 * instructions per cache hit through the default chain over those of a
 * one-step resolver (callgrind: `instructions.json`, same CPU model and Node
 * major). The p99,
 * workers, dnsmasq and QPS ratios are printed, not gated: too noisy for a
 * 10 % rule. Ratios to a peer measured in the same
 * run keep this meaningful on a noisy, shared machine; even so one run's
 * ratio moves by more than 10 % there, so a micro-benchmark that looks worse
 * runs twice more and the median of its three ratios decides.
 *
 * A micro-benchmark ratio is held against the committed multi-run baseline
 * (`bench/results/baseline.json`, from `--baseline`) when it holds one for
 * this CPU model and Node major: the worst of the baseline's runs is the
 * reference, so a ratio's own run-to-run spread is not called a regression
 * (lib/compare.ts `referenceOf`), and a ratio whose baseline runs spread by
 * more than 20 % is printed, not gated (`gatedBy`: its peer moves too much
 * for a 10 % rule). Without a baseline, the committed results file's single
 * run is the reference. Each micro-benchmark runs under the load
 * lock, pinned to CPU 0 (when flock and taskset exist).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Baseline, baselineFor, benchArgs, median, type Ratio, ratiosOf, spreadOf, TOLERANCE, verdictOf, withBaseline } from './lib/compare.js';
import { tsxEnv } from './lib/tsx-env.js';

const here = dirname(fileURLToPath(import.meta.url));
// `npm run bench -- --compare` reaches here as npm's config `compare` (the root script runs `npm run bench -w …`).
const compare = process.argv.includes('--compare') || process.env.npm_config_compare === 'true';
const baselineMode = process.argv.includes('--baseline') || process.env.npm_config_baseline === 'true';
const { runs: baselineRuns, only } = benchArgs(process.argv.slice(2), process.env);
if (compare && baselineMode) throw new Error('--compare and --baseline are separate runs');
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(f.replace('.bench.ts', '')))
  .sort();
/** Extra runs of a micro-benchmark whose first run looks worse than the committed results. */
const CONFIRM_RUNS = 2;

type Json = Record<string, unknown>;
function committed(name: string): Json | null {
  const r = spawnSync('git', ['show', `HEAD:bench/results/${name}.json`], { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  if (r.status === 0) return JSON.parse(r.stdout) as Json;
  const f = join(here, 'results', `${name}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Json) : null;
}
/** What the micro-benchmark baseline is valid for. */
const machine = { cpu: os.cpus()[0]?.model.trim() ?? 'unknown', node: Number(process.versions.node.split('.')[0]) };
const baselineFile = join(here, 'results', 'baseline.json');
/** The callgrind count (measureInstructions): in every --compare, or when named (`npm run bench -- --compare instructions`: two minutes, no timing noise). */
const wantInstructions = only.length === 0 ? compare : only.includes('instructions');
const names = [
  ...files.map((f) => f.replace('.bench.ts', '')),
  ...(wantInstructions ? ['instructions'] : []),
  ...(compare && only.length === 0 ? ['load-native'] : []),
];
const before = new Map(compare ? names.map((n) => [n, committed(n)] as const) : []);

/** Each micro-benchmark under the machine's load lock, pinned to one core, when flock and taskset exist. */
const hasTool = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
const wrap = hasTool('flock') && hasTool('taskset') ? ['flock', '/tmp/heimdall-load.lock', 'taskset', '-c', '0'] : [];

/** Runs one `<name>.bench.ts` in its own process; false when it failed. */
function runBench(file: string): boolean {
  const argv = [...wrap, process.execPath, '--expose-gc', '--import', 'tsx', join(here, file)];
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: join(here, '..'), env: tsxEnv(), stdio: 'inherit' });
  if (r.status !== 0) console.error(`${file} exited with ${r.status ?? r.signal}`);
  return r.status === 0;
}

/** The ratios of the results file a run just wrote. */
function current(name: string): Map<string, Ratio> {
  const f = join(here, 'results', `${name}.json`);
  return ratiosOf(existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Json) : null, name === 'load-native');
}

/**
 * `bench/results/instructions.json`: instructions per cache hit through the
 * app's default chain, and per query through a resolver whose only step
 * answers with precomputed bytes (the peer), counted by callgrind (`load/chain-instructions.sh`).
 * Instructions, not time: runs agree to about 1 % whatever else the
 * machine does, so this ratio is the steady gate on the hot path that the
 * chain micro-benchmark's timing cannot be on a shared VM. The counts move
 * with V8 and the CPU (its code paths), so they are compared only with a
 * file from the same CPU model and Node major.
 */
function measureInstructions(): boolean {
  const count = (env: Record<string, string>): number | null => {
    const r = spawnSync('flock', ['/tmp/heimdall-load.lock', 'bash', join(here, 'load/chain-instructions.sh')], {
      cwd: here,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.stdout.write(r.stdout);
    const m = /: (\d+) instructions per query/.exec(r.stdout ?? '');
    return r.status === 0 && m !== null ? Number(m[1]) : null;
  };
  const chain = count({});
  // No plugin of the default chain: the resolver and one step answering with precomputed bytes.
  const peer = count({ ONLY: 'none', FIXED: '1' });
  if (chain === null || peer === null) return false;
  const key = 'default chain, cache hit / one answering step: instructions per query (callgrind)';
  const out = { date: new Date().toISOString(), machine, chain, peer, ratios: { [key]: Number((chain / peer).toFixed(3)) } };
  writeFileSync(join(here, 'results', 'instructions.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`  ${key}: ${chain} / ${peer} = ${out.ratios[key]}`);
  return true;
}

let failed = 0;
if (baselineMode) {
  // Interleaved (A B C … A B C …): a slow minute of the machine lands on every benchmark, not all runs of one.
  const ratios: Record<string, Record<string, number[]>> = {};
  for (let run = 1; run <= baselineRuns; run++) {
    for (const file of files) {
      console.log(`\n=== ${file} (baseline run ${run} of ${baselineRuns}) ===`);
      if (!runBench(file)) {
        failed++;
        continue;
      }
      const name = file.replace('.bench.ts', '');
      for (const [k, r] of current(name)) ((ratios[name] ??= {})[k] ??= []).push(r.value);
    }
  }
  if (failed > 0) {
    console.error(`${failed} benchmark run(s) failed: baseline not written`);
    process.exit(1);
  }
  // `+changes`: measured on a working tree with uncommitted changes outside bench/results.
  const dirty = spawnSync('git', ['status', '--porcelain', '--', '.', ':!results', '../packages', '../plugins', '../apps'], {
    cwd: here,
    encoding: 'utf8',
  }).stdout.trim();
  const commit = `${spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).stdout.trim()}${dirty === '' ? '' : '+changes'}`;
  const old = existsSync(baselineFile) ? (JSON.parse(readFileSync(baselineFile, 'utf8')) as Baseline) : null;
  // A subset run (`-- --baseline cache`) replaces only those benchmarks' entries.
  const prev = only.length > 0 ? baselineFor(old, machine) : null;
  const date = new Date().toISOString();
  const measured = { ...(prev?.measured ?? {}) };
  for (const name of Object.keys(ratios)) measured[name] = { date, commit };
  const entry = { machine, date, commit, runs: baselineRuns, ratios: { ...(prev?.ratios ?? {}), ...ratios }, measured };
  writeFileSync(baselineFile, `${JSON.stringify(withBaseline(old, entry), null, 2)}\n`);
  console.log(`\n=== baseline (${baselineRuns} runs, ${machine.cpu}, Node ${machine.node}) → bench/results/baseline.json ===`);
  for (const [name, keys] of Object.entries(ratios))
    for (const [k, runs] of Object.entries(keys)) console.log(`  ${name}: ${k}: ${runs.join(', ')} (spread ${(spreadOf(runs) * 100).toFixed(1)} %)`);
  process.exit(0);
}
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  if (!runBench(file)) failed++;
}
if (compare && only.length === 0) {
  console.log('\n=== load/native.ts (under flock /tmp/heimdall-load.lock) ===');
  const r = spawnSync('flock', ['/tmp/heimdall-load.lock', process.execPath, '--import', 'tsx', join(here, 'load/native.ts'), '--seconds', '5'], {
    cwd: here,
    stdio: 'inherit',
  });
  if (r.status !== 0) failed++;
}
if (wantInstructions) {
  console.log('\n=== instructions per cache hit (callgrind, under flock /tmp/heimdall-load.lock) ===');
  if (!measureInstructions()) failed++;
}
if (compare) {
  const committedBaseline = spawnSync('git', ['show', 'HEAD:bench/results/baseline.json'], {
    cwd: here,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const base = baselineFor(committedBaseline.status === 0 ? (JSON.parse(committedBaseline.stdout) as Baseline) : null, machine);
  console.log(
    base !== null
      ? `\n(micro-benchmarks: against the committed ${base.runs}-run baseline of ${base.date.slice(0, 16)}, ${base.commit}, the worst of its runs)`
      : `\n(micro-benchmarks: no committed baseline for ${machine.cpu}, Node ${machine.node}: against the committed results' single run; \`npm run bench -- --baseline\` makes one)`,
  );
  /** The runs a committed ratio is held against: the baseline's for this machine, else the results file's one value. */
  const refRuns = (name: string, key: string, was: number): number[] => (name === 'load-native' ? undefined : base?.ratios[name]?.[key]) ?? [was];
  /** name → key → the ratio of each run of that benchmark (one, or three when a regression is being confirmed). */
  const runs = new Map<string, Map<string, number[]>>(names.map((n) => [n, new Map([...current(n)].map(([k, r]) => [k, [r.value]]))]));
  // One run's ratio to its peer moves by more than 10 % on a shared machine: a micro-benchmark
  // that looks worse runs twice more, and the median of its three ratios decides.
  const suspects = names.filter(
    (name) =>
      name !== 'load-native' &&
      name !== 'instructions' &&
      [...ratiosOf(before.get(name) ?? null, name === 'load-native')].some(([key, ratio]) => {
        const is = runs.get(name)?.get(key)?.[0];
        return is !== undefined && verdictOf(ratio, refRuns(name, key, ratio.value), is).fails;
      }),
  );
  for (const name of suspects) {
    for (let i = 0; i < CONFIRM_RUNS; i++) {
      console.log(`\n=== ${name}.bench.ts again (confirming, ${i + 2} of ${CONFIRM_RUNS + 1}) ===`);
      if (!runBench(`${name}.bench.ts`)) failed++;
      for (const [k, r] of current(name)) runs.get(name)!.get(k)?.push(r.value);
    }
  }
  const worse: string[] = [];
  console.log('\n=== compare with the committed results (ratio to the in-run peer) ===');
  for (const name of names) {
    // A load scenario's ratios to a peer whose cost is mostly the kernel's move with the machine: compared
    // with results from another machine (CPU model, cores, kernel, Node), they are printed, not gated.
    const thenMachine = before.get(name)?.machine;
    // instructions.json is compared on the same CPU model and Node major (its `machine` is the baseline's kind).
    const machineBound = name === 'load-native' || name === 'instructions';
    const nowFile = join(here, 'results', `${name}.json`);
    const nowMachine = machineBound && existsSync(nowFile) ? (JSON.parse(readFileSync(nowFile, 'utf8')) as Json).machine : undefined;
    const otherMachine = machineBound && JSON.stringify(thenMachine) !== JSON.stringify(nowMachine);
    if (otherMachine) console.log(`  (${name}: the committed results come from another machine, ${JSON.stringify(thenMachine)}: not gated)`);
    for (const [key, ratio] of ratiosOf(before.get(name) ?? null, name === 'load-native')) {
      const all = runs.get(name)?.get(key);
      if (all === undefined || all.length === 0) continue;
      const is = median(all);
      const ref = refRuns(name, key, ratio.value);
      const { reference, change, fails, why } = verdictOf(ratio, ref, is, otherMachine);
      const of = all.length > 1 ? ` (median of ${all.join(', ')})` : '';
      const from = ref.length > 1 ? `${reference} (worst of ${ref.join(', ')})` : `${reference}`;
      const line = `${name}: ${key}: ${from} → ${is}${of} (${change > 0 ? '+' : ''}${(change * 100).toFixed(1)} % ${change > 0 ? 'worse' : 'better'})`;
      if (fails) worse.push(line);
      console.log(`  ${fails ? '✗' : change > TOLERANCE ? '○' : '·'} ${line}${change > TOLERANCE && !fails ? ` (not gated: ${why})` : ''}`);
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
