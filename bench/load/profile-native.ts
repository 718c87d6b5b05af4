/**
 * Profiles the reference app's cache-hit path on the batched native UDP path
 * (issue 14): the app (default chain: metrics, stats, special-use, blocking
 * with a 100k-entry list, cache, dedup, upstream; the app adds its default
 * `localOnly` acl) pinned to CPU 0 under the batched client on CPU 1, the V8
 * CPU profiler running over the measured window only (SIGUSR2 through
 * lib/profile-preload.mjs). Prints QPS, server CPU µs/query, and the top
 * frames by self and by total time; keeps the `.cpuprofile` in `--out`.
 *
 * With `--perf`, `perf record -g` samples the server process instead (the
 * app runs with `--perf-basic-prof` so JavaScript frames are named) and the
 * split of its CPU by object (kernel, node, libc, JIT code, the addon) and
 * the top symbols are printed.
 *
 * With `--heap`, V8's sampling heap profiler runs over the window instead
 * (every 1 KiB allocated, objects the GC collected later included) and the
 * allocation sites are printed in bytes per answered query: the per-query
 * garbage that sets how often the young generation is scavenged.
 *
 *   flock /tmp/heimdall-load.lock npx tsx bench/load/profile-native.ts [--seconds 10] [--qps 10000] [--out DIR] [--native false] [--no-profile] [--perf] [--heap] [--node-flags '--no-turbo-inlining']
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBatchperf } from './lib/batchperf.js';
import { summarizeProfile } from './lib/cpuprofile.js';
import { dnsmasqUpstream } from './lib/peers.js';
import { cpuMicros, freePort, sleep, startPinned, waitForDns, runMain } from './lib/proc.js';
import { appConfig, defaultChain, flag } from './lib/harness.js';
import { ensureTools } from './lib/packages.js';
import { blocklistFile, nameFile } from './lib/queries.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const seconds = Number(flag('seconds', '10'));
const outDir = resolve(flag('out', join(os.tmpdir(), 'heimdall-profile')));
const native = flag('native', 'auto');
const usePerf = process.argv.includes('--perf');
/** `--qps N`: profile a fixed-rate run (the tail's regime: one query per wakeup) instead of a saturating one. */
const fixedQps = flag('qps', '') === '' ? undefined : Number(flag('qps', ''));
const useHeap = process.argv.includes('--heap');
const profile = !process.argv.includes('--no-profile') && !usePerf;

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Top frames by total (inclusive) time: each frame counted once per sample even when recursive. */
export function totalFrames(file: string, top = 25): string[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const key = (n: Node): string =>
    `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url === '' ? '' : `${n.callFrame.url.startsWith('node:') ? n.callFrame.url : basename(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`}`.trim();
  const total = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    let n = byId.get(p.samples[i]!);
    if (n === undefined || n.callFrame.functionName === '(idle)') continue;
    busy += dt;
    const seen = new Set<string>();
    while (n !== undefined) {
      const k = key(n);
      if (!seen.has(k)) {
        seen.add(k);
        total.set(k, (total.get(k) ?? 0) + dt);
      }
      const up = parent.get(n.id);
      n = up === undefined ? undefined : byId.get(up);
    }
  }
  return [...total]
    .filter(([k]) => k !== '(root)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** Allocation sites of a sampling heap profile by self bytes, with their two callers, as bytes per query. */
export function heapSites(file: string, queries: number, top = 25): string[] {
  const root = (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head;
  const name = (n: HeapNode): string =>
    `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url === '' ? '' : `${basename(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`}`.trim();
  const sites = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, path: string[]): void => {
    if (n.selfSize > 0) {
      const k = [name(n), ...path.slice(-2).reverse()].join(' < ');
      sites.set(k, (sites.get(k) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c, [...path, name(n)]);
  };
  walk(root, []);
  return [
    `  total ${(total / queries).toFixed(0)} B/query`,
    ...[...sites]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, b]) => `  ${(b / queries).toFixed(1).padStart(7)}  ${k}`),
  ];
}

async function main(): Promise<void> {
  // The upstream is dnsmasq, installed from Debian's packages when missing (as load:native does).
  ensureTools(['dnsmasq']);
  mkdirSync(outDir, { recursive: true });
  const tmp = mkdtempSync(join(os.tmpdir(), 'heimdall-prof-'));
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const upPort = await freePort();
  const up = startPinned('upstream', 1, dnsmasqUpstream(upPort).command, dnsmasqUpstream(upPort).args);
  await waitForDns(upPort, '127.0.0.1', 'probe.example');
  const hit = await nameFile(join(tmp, 'hit.txt'), 'hit', 1000);
  const blocklist = await blocklistFile(join(tmp, 'blocklist.txt'), 100_000);
  const port = await freePort();
  const config = join(tmp, 'heimdall.json');
  writeFileSync(
    config,
    JSON.stringify(appConfig(port, { udp: { native: native === 'auto' ? 'auto' : native === 'true' }, plugins: defaultChain(blocklist, upPort) })),
  );
  const server = startPinned(
    'heimdall',
    0,
    process.execPath,
    // --perf-basic-prof also turns on V8's isolate logs: kept in the temp dir, not the working directory.
    [
      ...(usePerf ? ['--perf-basic-prof', `--logfile=${join(tmp, 'v8.log')}`, '--no-logfile-per-isolate'] : []),
      '--max-semi-space-size=4',
      ...(flag('node-flags', '') === '' ? [] : flag('node-flags', '').split(' ')),
      '--import',
      join(here, 'lib/profile-preload.mjs'),
      join(repo, 'apps/heimdall/dist/cli.js'),
      '--config',
      config,
    ],
    { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072', HEIMDALL_PROFILE_DIR: outDir, ...(useHeap ? { HEIMDALL_PROFILE_HEAP: '1' } : {}) },
  );
  try {
    await waitForDns(port, '127.0.0.1', 'probe.bench.example', 20000, () => server.child.exitCode === null);
    await runBatchperf({ port, queryFile: hit, maxRuns: 2, seconds: 30, core: 1, tmpDir: tmp });
    await runBatchperf({ port, queryFile: hit, seconds: 2, core: 1, tmpDir: tmp });
    const before = new Set(readdirSync(outDir));
    if (profile) server.child.kill('SIGUSR2');
    const perfData = join(outDir, `perf-${server.pid}.data`);
    const perf = usePerf
      ? spawn('perf', ['record', '-g', '-F', '2000', '-p', String(server.pid), '-o', perfData, '--', 'sleep', String(seconds)], { stdio: 'ignore' })
      : null;
    const c0 = cpuMicros(server.pid);
    const r = await runBatchperf({ port, queryFile: hit, seconds, core: 1, tmpDir: tmp, ...(fixedQps === undefined ? {} : { qps: fixedQps }) });
    const c1 = cpuMicros(server.pid);
    if (perf !== null) await new Promise((done) => perf.once('exit', done));
    console.log(
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(
          ' ',
        )}; native ${native}; ${Math.round(r.qps)} qps, ${((c1 - c0) / r.completed).toFixed(2)} µs CPU/query, lost ${r.lost}, rcodes ${JSON.stringify(r.rcodes)}`,
    );
    if (perf !== null) {
      const report = (args: string[]) =>
        spawnSync('perf', ['report', '-i', perfData, '--stdio', '--no-children', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
      const lines = (text: string, n: number) =>
        text
          .split('\n')
          .filter((l) => /^\s+\d/.test(l))
          .slice(0, n)
          .join('\n');
      console.log(
        `\n${perfData}\nby object (self):\n${lines(report(['--sort', 'dso', '-g', 'none']), 12)}\ntop symbols (self):\n${lines(report(['--sort', 'dso,sym', '-g', 'none']), 40)}`,
      );
      return;
    }
    if (!profile) return;
    server.child.kill('SIGUSR2');
    let file: string | undefined;
    for (let i = 0; i < 300 && file === undefined; i++) {
      await sleep(100);
      file = readdirSync(outDir).find((f) => (f.endsWith('.cpuprofile') || f.endsWith('.heapprofile')) && !before.has(f));
    }
    if (file === undefined) throw new Error('no profile written');
    if (useHeap) {
      console.log(`\n${join(outDir, file)}\nallocation sites, bytes per answered query:\n${heapSites(join(outDir, file), r.completed).join('\n')}`);
      return;
    }
    console.log(
      `\n${join(outDir, file)}\n${summarizeProfile(join(outDir, file), 30).join('\n')}\ntop 30 frames by total time:\n${totalFrames(join(outDir, file), 30).join('\n')}`,
    );
  } finally {
    await server.stop();
    await up.stop();
  }
}

runMain(main);
